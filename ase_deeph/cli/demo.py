"""``ase-deeph demo``: the one-command tour on shipped inputs.

With the shipped default model: build a twisted bilayer graphene cell, predict H(R) with
the model and S(R) from the basis, plot bands (K-Gamma-M-K) and DOS, and compare with a
PySCF reference computed once for the same cell. Without a default model installed, run
the same analysis on the shipped real SIESTA silicon Hamiltonian and compare with
SIESTA's own printed eigenvalues.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

import interfaces
from ase_deeph import solvers
from interfaces import HSData
from interfaces.atomic import write_text

__all__ = ["run_demo", "compare_bands"]

#: Half-width (eV) of the band plots around E_F; the comparison covers all of it too.
PLOT_WINDOW = 4.0


def _data(name: str) -> Path:
    return Path(str(resources.files("ase_deeph") / "data" / name))


def compare_bands(ours: np.ndarray, ref: np.ndarray, ef_ours: float, ef_ref: float,
                  window: float = 2.0) -> dict:
    """Band errors (eV) within ``window`` eV of E_F after aligning the Fermi levels.

    Parameters
    ----------
    ours, ref : ndarray, shape (nk, nbands)
        Band energies at the same k-points; only the lowest common bands are compared.
    ef_ours, ef_ref : float
        Fermi levels used to align the two sets (a rigid shift is a gauge, not an error).

    Returns
    -------
    dict
        ``rigid_shift_eV`` (ef_ours - ef_ref), ``mae_meV``, ``max_meV`` and ``n_states``.
    """
    nb = min(ours.shape[-1], ref.shape[-1])
    a, b = ours[..., :nb] - ef_ours, ref[..., :nb] - ef_ref
    sel = solvers.fermi_window(b, 0.0, window) & np.isfinite(a)  # projected-out: NaN
    err = np.abs(a - b)[sel]
    return {"rigid_shift_eV": float(ef_ours - ef_ref), "window_eV": window,
            "mae_meV": float(1e3 * err.mean()), "max_meV": float(1e3 * err.max()),
            "n_states": int(sel.sum())}


def _analyse(hs: HSData, out: Path, path: str, kmesh, npoints: int, title: str,
             ill_threshold: float = solvers.eigen.ILL_THRESHOLD) -> dict:
    mesh = solvers.kmesh(hs.atoms, kmesh)
    sol = solvers.solve(hs, mesh.kpts, return_vectors=True, ill_threshold=ill_threshold)
    fermi = solvers.fermi_level(sol.eigenvalues, hs.n_electrons, mesh.weights,
                                solvers.spin_degeneracy(hs.spin))
    bs = solvers.band_structure(hs, path, npoints, fermi_level=fermi.fermi_level,
                                ill_threshold=ill_threshold)
    solvers.plot_bands(bs, out / "bands.png", emin=-PLOT_WINDOW, emax=PLOT_WINDOW, title=title)
    pdos = solvers.projected_dos(hs, sol, mesh.weights, width=0.1,
                                 fermi_level=fermi.fermi_level)
    solvers.plot_dos(pdos, out / "dos.png", by="l", emin=-10.0, emax=6.0, title=title)
    return {"fermi_level_eV": fermi.fermi_level, "gap_eV": _num(fermi.gap),
            "kmesh": list(mesh.size), "path": path, "n_orbitals": hs.n_orbitals,
            "n_blocks": hs.n_edges, "bands_png": str(out / "bands.png"),
            "dos_png": str(out / "dos.png")}


def _siesta_demo(out: Path, quick: bool) -> dict:
    run = _data("si_pdos_k")
    hs = interfaces.read(run)
    summary = {"mode": "SIESTA silicon (no default model installed)", "input": str(run)}
    summary.update(_analyse(hs, out, "LGXUKG", (4, 4, 4) if quick else (8, 8, 8),
                            40 if quick else 150, "Si (SIESTA SZP, real DFT data)"))
    kp = interfaces.siesta.reader.read_kp(run / "Si_pdos.KP")
    eig = interfaces.siesta.reader.read_eig(next(run.glob("Si_pdos.EIG*")))
    ours = solvers.eigenvalues(hs, kp.fractional(hs.atoms.cell))[0]
    printed = eig.eigenvalues.reshape(len(eig.eigenvalues), -1)
    err = np.abs(ours - printed)
    summary["vs_printed_eigenvalues"] = {"n_kpoints": len(printed), "max_meV": 1e3 * err.max(),
                                         "mae_meV": 1e3 * err.mean()}
    return summary


def _model_demo(out: Path, quick: bool, model) -> dict:
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider

    provider = ModelProvider.from_any(model)
    ref_file = _data("tbg_1_2_pyscf.npz")
    atoms = twisted_bilayer_graphene(1, 2, distance=3.35)
    t0 = time.perf_counter()
    hs = provider(atoms)
    t_predict = time.perf_counter() - t0
    summary = {"mode": "default model on twisted bilayer graphene",
               "twist_angle_deg": atoms.info["twist_angle"], "n_atoms": len(atoms),
               "predict_s": t_predict}
    hs = provider.policy.prepare(hs)  # the one near-null S rule (solvers.conditioning)
    thr = provider.policy.dense_threshold(hs, solvers.kmesh(atoms, (6, 6, 1)).kpts)
    summary["s_projection"] = {"ill_threshold": thr, "note": "S(k) directions below the "
                               "threshold are projected out (ase_deeph.solvers.conditioning: "
                               "1e-2 for a ghost-prone basis, else 1e-6)"}
    summary.update(_analyse(hs, out, "KGMK", (3, 3, 1) if quick else (9, 9, 1),
                            30 if quick else 90, f"TBG {atoms.info['twist_angle']:.2f} deg",
                            ill_threshold=thr))
    basis = (provider.meta.get("overlap_source") or {}).get("basis")
    ref = np.load(ref_file) if ref_file.exists() else None
    if ref is not None and f"'basis': '{basis}'" not in str(ref["settings"]):
        summary["vs_pyscf"] = f"the shipped reference {ref_file.name} is not in the model's " \
                              f"basis {basis}: not compared"
    elif ref is not None:
        ours = solvers.eigenvalues(hs, ref["kpts"], ill_threshold=thr)[0]
        mesh = solvers.kmesh(atoms, (6, 6, 1))  # the reference's E_F mesh
        ef = solvers.fermi_level(solvers.eigenvalues(hs, mesh.kpts, ill_threshold=thr),
                                 hs.n_electrons, mesh.weights).fermi_level
        ef_ref = float(ref["fermi_level"])
        summary["vs_pyscf"] = compare_bands(ours, ref["bands"], ef, ef_ref)
        # every band the plots show (E_F +- PLOT_WINDOW), and Gamma alone (the sigma band)
        summary["vs_pyscf_plotted"] = compare_bands(ours, ref["bands"], ef, ef_ref,
                                                    window=PLOT_WINDOW)
        gamma = np.all(np.abs(ref["kpts"]) < 1e-9, axis=1)
        summary["vs_pyscf_gamma"] = compare_bands(ours[gamma], ref["bands"][gamma], ef, ef_ref,
                                                  window=PLOT_WINDOW)
        summary["vs_pyscf"]["reference_seconds"] = float(ref["seconds"])
        summary["comparison_png"] = _plot_comparison(
            atoms, ref["kpts"], ours - ef, ref["bands"] - float(ref["fermi_level"]),
            out / "bands_vs_pyscf.png")
    else:
        summary["vs_pyscf"] = f"no reference file {ref_file.name} shipped"
    return summary


def _plot_comparison(atoms, kpts, ours: np.ndarray, ref: np.ndarray, path: Path) -> str:
    """Model bands (lines) over the PySCF reference (dots), both relative to their E_F."""
    from ase.dft.kpoints import BandPath

    from ase_deeph.solvers.bands import new_figure, save_figure

    bp = BandPath(atoms.cell, kpts=kpts, special_points=atoms.cell.bandpath("KGMK").special_points)
    x, xt, labels = bp.get_linear_kpoint_axis()
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(x, ours, color="tab:blue", lw=1.0)
    ax.plot(x, ref, ".", color="k", ms=2.5)
    ax.plot([], [], color="tab:blue", label="ase-deeph default model")
    ax.plot([], [], ".", color="k", label="PySCF (PBE, same basis)")
    ax.set_xticks(xt, ["Γ" if lab == "G" else lab for lab in labels])
    ax.set(xlim=(x[0], x[-1]), ylim=(-PLOT_WINDOW, PLOT_WINDOW), ylabel=r"$E - E_\mathrm{F}$ (eV)",
           title=f"TBG {atoms.info['twist_angle']:.2f} deg, 28 atoms")
    ax.legend(loc="lower right", fontsize="small")
    fig.tight_layout()
    return save_figure(fig, path)


def run_demo(output: str | os.PathLike = "demo_out", quick: bool = False,
             model="default") -> dict:
    """Run the demo, write ``bands.png``, ``dos.png`` and ``summary.json`` to ``output``.

    Returns the summary (also printed by the CLI).
    """
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        from ase_deeph.inference.provider import default_model_path

        has_model = model != "default" or default_model_path().exists()
    except (FileNotFoundError, ImportError):
        has_model = False
    with warnings.catch_warnings():
        # the S projection of predicted H is intended here; it is reported in the summary
        warnings.filterwarnings("ignore", message="S\\(k\\) is ill-conditioned")
        summary = _model_demo(out, quick, model) if has_model else _siesta_demo(out, quick)
    summary["wall_time_s"] = time.perf_counter() - t0
    write_text(out / "summary.json", json.dumps(summary, indent=1, default=float))
    return summary


def _num(x: float):
    return float(x) if x is not None and math.isfinite(x) else None
