"""Flat bands of a large twisted bilayer graphene cell with the sparse solvers (issue 15).

Predicts H(R) with the default model and S(R) from its basis, then, never forming a dense
matrix (:mod:`ase_deeph.solvers.pencil`: upper triangles of H(k) and S(k) on one sparse
pattern; :mod:`ase_deeph.solvers.factor`: MKL PARDISO when ``ase-deeph[large]`` is
installed, else SuperLU):

1. E_F at Gamma by inertia counting (:func:`ase_deeph.solvers.fermi_level_sparse`),
   starting from the E_F of the smallest commensurate cell (1, 2) predicted by the same
   model (a moire cell's E_F is within tens of meV of it); each factorisation gives the
   count *and* the states nearest its energy, so the states around E_F at Gamma come with
   the last one (kept in ``OUT/fermi.json`` for a rerun on the same H);
2. the states nearest E_F at M and K (or along K-Gamma-M-K with ``--path N``), one
   factorisation per k-point, checkpointed per k-point in ``OUT/bands.npz`` (a rerun
   resumes), with a progress bar and ETA;
3. the width of the central (flat) bands, ``OUT/summary.json`` and ``OUT/bands.png``;
4. with ``--dense-check`` (cells up to ~10,000 orbitals), the same E_F and states at
   Gamma from a dense solve, and their largest differences.

The time and peak memory of each stage are printed::

    python examples/05_large_twisted_bilayer.py --m 6 --n 7        # 508 atoms, 5.09 deg
    python examples/05_large_twisted_bilayer.py --m 13 --n 14      # 2,188 atoms, 2.45 deg
    python examples/05_large_twisted_bilayer.py --m 30 --n 31 --compact \
        --backend pardiso-single --complex-backend pardiso-single-ooc   # 11,164 atoms, 1.08 deg

On a 24 GB machine the last one needs those options (H and S in float32, single-precision
factors, the complex one at K in files): 60 min and 16.6 GiB peak on two cores.

Measurements (this machine, with the commands above) are kept in ``docs/solvers.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from ase_deeph import solvers
from ase_deeph.calculator import DeepHCalculator
from ase_deeph.generation.structures import twisted_bilayer_graphene
from ase_deeph.inference.provider import ModelProvider
from ase_deeph.solvers.factor import default_backend
from ase_deeph.solvers.sparse_path import fingerprint, sparse_bands
from interfaces.atomic import atomic_path

POINTS = {"G": (0.0, 0.0, 0.0), "M": (0.5, 0.0, 0.0), "K": (1 / 3, 1 / 3, 0.0)}


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _small_cell_fermi() -> float:
    """E_F of the (1, 2) cell (28 atoms) on a 6x6x1 mesh, from the calculator: the start."""
    small = twisted_bilayer_graphene(1, 2)
    small.calc = DeepHCalculator(kpts=(6, 6, 1))
    return small.calc.get_fermi_level()


def _fermi(hs, guess: float, window: int, checkpoint: Path) -> solvers.SparseFermi:
    """:func:`solvers.fermi_level_sparse`, kept in ``checkpoint`` for a rerun on the same H."""
    key = fingerprint(hs, text=f"fermi/{window}")
    if checkpoint.is_file():
        old = json.loads(checkpoint.read_text())
        if old.pop("key") == key:
            print("  (E_F from the checkpoint of an earlier run on the same H)")
            nearby = None if old["nearby"] is None else np.array(old["nearby"])
            return solvers.SparseFermi(**{**old, "nearby": nearby})
    fermi = solvers.fermi_level_sparse(hs, guess=guess, window=window)
    with atomic_path(checkpoint) as tmp:
        Path(tmp).write_text(json.dumps({**dataclasses.asdict(fermi), "key": key,
                                         "nearby": None if fermi.nearby is None
                                         else fermi.nearby.tolist()}))
    return fermi


def _path(atoms, n: int) -> tuple[np.ndarray, list]:
    """M and K (``n`` = 0) or ``n`` points along K-Gamma-M-K (Gamma left out: it comes
    from the E_F search)."""
    if n == 0:
        return np.array([POINTS["M"], POINTS["K"]]), ["M", "K"]
    kpts = atoms.cell.bandpath("KGMK", npoints=n).kpts
    keep = np.linalg.norm(kpts, axis=1) > 1e-9
    return kpts[keep], [f"k{i}" for i in np.flatnonzero(keep)]


def _central_width(e_gamma: np.ndarray, bands: np.ndarray, ef: float, n_central: int) -> dict:
    """Width of the ``n_central`` states nearest E_F followed over the k-points (eV)."""
    per_k = [np.sort(e[np.argsort(np.abs(e - ef))[:n_central]]) for e in [e_gamma, *bands]]
    stack = np.array(per_k)  # [nk, n_central]
    return {"n_central": n_central, "width_meV": 1e3 * float(stack.max() - stack.min()),
            "per_band_width_meV": (1e3 * (stack.max(0) - stack.min(0))).tolist()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=6)
    parser.add_argument("--n", type=int, default=7)
    parser.add_argument("--bands", type=int, default=8, help="states per k-point")
    parser.add_argument("--path", type=int, default=0,
                        help="points along K-Gamma-M-K (0: just M and K)")
    parser.add_argument("-o", "--out", default=None, help="output folder (default tbg_M_N)")
    parser.add_argument("--window", type=int, default=24,
                        help="states computed around each trial E of the E_F search")
    parser.add_argument("--backend", default=None,
                        help="sparse factorisation backend (solvers.factor), e.g. pardiso-single")
    parser.add_argument("--complex-backend", default=None,
                        help="backend at complex k (twice the memory of real k), e.g. "
                             "pardiso-single-ooc")
    parser.add_argument("--compact", action="store_true",
                        help="keep the predicted H and S in float32 (half their memory)")
    parser.add_argument("--dense-check", action="store_true",
                        help="compare E_F and the Gamma states with a dense solve")
    args = parser.parse_args()
    if args.backend:
        os.environ["ASE_DEEPH_SPARSE_BACKEND"] = args.backend
    if args.complex_backend:
        os.environ["ASE_DEEPH_SPARSE_BACKEND_COMPLEX"] = args.complex_backend
    out = Path(args.out or f"tbg_{args.m}_{args.n}")
    out.mkdir(parents=True, exist_ok=True)

    atoms = twisted_bilayer_graphene(args.m, args.n)
    print(f"({args.m}, {args.n}): {len(atoms)} atoms, {atoms.info['twist_angle']:.3f} deg, "
          f"sparse backend {default_backend()}", flush=True)
    provider = ModelProvider.from_any("default")
    rows = []

    def stage(name, fn):
        t0 = time.perf_counter()
        value = fn()
        rows.append((name, time.perf_counter() - t0, _peak_gb()))
        print(f"  {name}: {rows[-1][1]:.1f} s, peak RSS {rows[-1][2]:.2f} GB", flush=True)
        return value

    guess = stage("E_F of the (1, 2) cell (start)", _small_cell_fermi)
    hs = stage("predict H + overlap S", lambda: provider(atoms))
    if args.compact:  # float32 values: the pencils are still assembled in float64
        hs = hs.replace(h=hs.h.astype(np.float32), s=hs.s.astype(np.float32))
    hs = stage("near-null S check (ghost penalty if prone)", lambda: provider.solvable(hs))
    fermi = stage("E_F at Gamma by inertia counting",
                  lambda: _fermi(hs, guess, args.window, out / "fermi.json"))
    e_gamma = np.sort(fermi.nearby[np.argsort(np.abs(fermi.nearby - fermi.fermi_level))
                                   [:args.bands]])
    kpts, labels = _path(atoms, args.path)
    res = stage(f"{args.bands} states at {len(kpts)} more k-points",
                lambda: sparse_bands(hs, kpts, sigma=fermi.fermi_level, n_bands=args.bands,
                                     checkpoint=out / "bands.npz", progress=True))
    width = _central_width(e_gamma, res.energies[0], fermi.fermi_level, 4)
    summary = {
        "cell": [args.m, args.n], "n_atoms": len(atoms),
        "twist_angle_deg": atoms.info["twist_angle"], "n_orbitals": hs.n_orbitals,
        "backend": default_backend(), "backend_complex": default_backend(complex_=True),
        "fermi_level_eV": fermi.fermi_level,
        "gap_gamma_eV": fermi.gap, "n_factorizations_fermi": fermi.n_factorizations,
        "gamma_rel_eV": (e_gamma - fermi.fermi_level).tolist(),
        "kpts": kpts.tolist(), "labels": labels,
        "bands_rel_eV": (res.energies[0] - fermi.fermi_level).tolist(),
        "seconds_per_k": res.seconds.tolist(), "central_bands": width,
        "stages": [{"stage": n, "seconds": s, "peak_rss_gb": m} for n, s, m in rows],
    }
    if args.dense_check:
        summary["dense_check"] = stage("dense check at Gamma",
                                       lambda: _dense_check(provider, hs, fermi, e_gamma))
        print("dense check:", summary["dense_check"])
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    _plot(out / "bands.png", e_gamma, res.energies[0], labels, fermi.fermi_level,
          f"TBG {atoms.info['twist_angle']:.2f} deg, {len(atoms)} atoms")
    print(f"{hs.n_orbitals} orbitals; E_F = {fermi.fermi_level:.4f} eV "
          f"({fermi.n_factorizations} factorisations); central 4 bands: width "
          f"{width['width_meV']:.1f} meV over Gamma + {len(kpts)} k-points")
    print("states at Gamma relative to E_F (eV):", np.round(e_gamma - fermi.fermi_level, 4))
    print(f"{'stage':44s} {'time (s)':>9s} {'peak RSS (GB)':>14s}")
    for name, sec, mem in rows:
        print(f"{name:44s} {sec:9.1f} {mem:14.2f}")


def _dense_check(provider: ModelProvider, hs, fermi, e_gamma: np.ndarray) -> dict:
    """E_F (mid-gap at Gamma) and the states near it from one dense solve, vs sparse."""
    gamma = np.zeros((1, 3))
    thr = provider.policy.dense_threshold(hs, gamma)
    e = solvers.eigenvalues(hs, gamma, ill_threshold=thr)[0, 0]
    e = e[np.isfinite(e)]
    n = int(round(hs.n_electrons)) // 2
    ef = 0.5 * (e[n - 1] + e[n])
    near = np.sort(e[np.argsort(np.abs(e - ef))[:len(e_gamma)]])
    return {"ill_threshold": thr, "dense_fermi_eV": float(ef),
            "fermi_diff_meV": 1e3 * float(fermi.fermi_level - ef),
            "states_max_diff_meV": 1e3 * float(np.abs(near - e_gamma).max())}


def _plot(path: Path, e_gamma, bands, labels, ef: float, title: str) -> None:
    from ase_deeph.solvers.bands import new_figure, save_figure

    fig = new_figure()
    ax = fig.add_subplot()
    names = ["G", *labels]
    for x, e in enumerate([e_gamma, *bands]):
        ax.plot(np.full(len(e), x), 1e3 * (np.asarray(e) - ef), "o", color="C0", ms=4)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("E - E_F (meV)")
    ax.set_title(title)
    save_figure(fig, path)


main()
