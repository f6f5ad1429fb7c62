"""``ase-deeph epc CONFIG.toml``: thin driver around :mod:`ase_deeph.epc`.

Reads an :class:`ase_deeph.epc.config.EPCConfig`, builds phonons (phonopy yaml, force
constants, or an ASE calculator), an H/S provider ("toy", "pyscf" or a trained model file),
runs finite differences, g along a q path and (optionally) the Eliashberg quantities, and
writes ``epc.h5``, ``epc.json``, ``g_path.png`` and ``a2f.png`` atomically into the output
folder. Only the model provider imports torch, lazily.
"""

from __future__ import annotations

import json
import time
from functools import partial
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms

from ase_deeph.epc import (
    coupling,
    derivatives,
    eliashberg,
    onsite_d_nao,
    onsite_d_pyscf,
    phonon_modes,
    phonopy_forces,
    phonopy_from_atoms,
    tersoff_carbon,
    tersoff_si,
)
from ase_deeph.epc.config import EPCConfig, from_toml
from interfaces.atomic import atomic_path, write_text
from interfaces.errors import ConfigError

__all__ = ["run_epc_config", "build_inputs", "model_provider", "plot_lines"]

_CALCULATORS = {"tersoff-si": tersoff_si, "tersoff-c": tersoff_carbon}


def _structure(cfg: EPCConfig, ph=None) -> Atoms:
    if cfg.structure_file:
        from ase.io import read

        return read(cfg.structure_file)
    if cfg.bulk:
        from ase.build import bulk

        return bulk(cfg.bulk, cfg.crystal, a=cfg.a)
    if cfg.build is not None:
        return _build(cfg)
    if ph is None:
        raise ConfigError("no [structure] given and no phonopy_yaml to take it from")
    p = ph.primitive
    return Atoms(p.symbols, cell=p.cell, scaled_positions=p.scaled_positions, pbc=True,
                 masses=p.masses)


def _build(cfg: EPCConfig) -> Atoms:
    """``[structure] build``: "graphene" (``ase.build.graphene``, a and vacuum in A)."""
    if cfg.build != "graphene":
        raise ConfigError(f"[structure] build must be 'graphene', got {cfg.build!r}")
    from ase.build import graphene

    atoms = graphene(a=2.46 if cfg.a is None else cfg.a,
                     vacuum=9.0 if cfg.vacuum is None else cfg.vacuum)
    atoms.pbc = True
    return atoms


def _phonons(cfg: EPCConfig):
    """(atoms, Phonopy with force constants)."""
    if cfg.phonopy_yaml:
        import phonopy

        ph = phonopy.load(cfg.phonopy_yaml, produce_fc=True)
        return _structure(cfg, ph), ph
    atoms = _structure(cfg)
    ph = phonopy_from_atoms(atoms, np.diag(cfg.supercell), cfg.displacement)
    if cfg.force_constants:
        from phonopy.file_IO import parse_FORCE_CONSTANTS

        ph.force_constants = parse_FORCE_CONSTANTS(cfg.force_constants)
    elif cfg.calculator in _CALCULATORS:
        phonopy_forces(ph, _CALCULATORS[cfg.calculator])
    else:
        raise ConfigError(f"[phonons] needs phonopy_yaml, force_constants or calculator in "
                         f"{sorted(_CALCULATORS)}")
    return atoms, ph


def model_provider(path: str):
    """Return (provider, onsite_d) for a trained model file.

    The provider predicts H in float64 and attaches the exact S of the training basis
    (:class:`ase_deeph.inference.provider.ModelProvider`); ``onsite_d`` is the exact on-site
    <d phi | phi> block when that basis can be evaluated (PySCF bases, embedded NAO
    files) and None otherwise (a learned overlap: quasi-elastic form, reported).
    """
    from ase_deeph.inference.provider import ModelProvider

    prov = ModelProvider.from_any(path, device="cpu")
    prov.model = prov.model.double()
    source = prov.meta.get("overlap_source") or {}
    onsite = None
    if source.get("kind") == "pyscf":
        onsite = onsite_d_pyscf(source["basis"])
    elif source.get("kind") == "nao" and source.get("files"):
        from interfaces.nao.overlap import bases_from_metadata

        onsite = onsite_d_nao(bases_from_metadata(source))
    return prov, onsite


def _provider(cfg: EPCConfig):
    """Return (provider, onsite_d callable or None)."""
    if cfg.provider == "toy":
        from ase_deeph.inference.toy import toy_hs

        prov, onsite = partial(toy_hs, seed=cfg.toy_seed), None
    elif cfg.provider == "pyscf":
        from interfaces.pyscf.generator import run

        prov = partial(run, basis=cfg.pyscf_basis, kmesh=cfg.pyscf_kmesh)
        onsite = onsite_d_pyscf(cfg.pyscf_basis)
    elif cfg.provider == "model":
        prov, onsite = model_provider(cfg.model)
    else:
        raise ConfigError(f"[hs] provider must be 'toy', 'pyscf' or 'model' (or a model file), "
                         f"got {cfg.provider!r}")
    if cfg.onsite_d == "none":
        onsite = None
    elif cfg.onsite_d != "auto":
        raise ConfigError(f"[hs] onsite_d must be 'auto' or 'none', got {cfg.onsite_d!r}")
    return prov, onsite


def build_inputs(cfg: EPCConfig):
    """(atoms, phonopy, provider, onsite_d) from a config."""
    atoms, ph = _phonons(cfg)
    prov, onsite = _provider(cfg)
    return atoms, ph, prov, onsite


def _write_h5(path: Path, arrays: dict) -> None:
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for key, value in arrays.items():
                f.create_dataset(key, data=np.asarray(value))


def _write_text(path: Path, text: str) -> None:
    write_text(path, text)


def plot_lines(path: Path, x, y, xlabel: str, ylabel: str, ticks=None) -> None:
    """Write a PNG of the columns of ``y`` against ``x`` (atomic); ``ticks`` = (pos, labels)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    ax.plot(x, y, lw=1.2)
    if ticks is not None:
        ax.set_xticks(ticks[0], ticks[1])
        for t in ticks[0]:
            ax.axvline(t, color="0.7", lw=0.5)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _path_coupling(cfg, atoms, ph, derivs, out, arrays, summary):
    bp = atoms.cell.bandpath(cfg.qpath, npoints=cfg.npoints)
    modes = phonon_modes(ph, bp.kpts, atoms, cfg.soft_cutoff, cfg.imag_tol)
    res = coupling(derivs, modes, cfg.kpoints, bands=cfg.bands, form=cfg.form,
                   mask_unstable=cfg.mask_unstable)
    g_mode = np.sqrt(np.mean(res.g_avg[:, 0] ** 2, axis=(-1, -2)))  # [nq, n_modes] meV
    x, xt, labels = bp.get_linear_kpoint_axis()
    arrays.update({"path/qpoints": bp.kpts, "path/x": x, "path/g_avg": res.g_avg,
                   "path/omega_meV": modes.energies_mev, "path/kpoints": res.kpoints,
                   "path/bands": res.bands, "path/masked": res.masked})
    finite = res.g_avg[np.isfinite(res.g_avg)]
    summary["path"] = {"qpath": cfg.qpath, "form": res.form, "onsite_d": res.onsite_d,
                       "g_units": "meV", "max_g_meV": float(finite.max()) if finite.size else None,
                       "mask_unstable": cfg.mask_unstable,
                       "n_masked_modes": int(res.masked.sum()),
                       "n_unstable_modes": int(modes.unstable.sum())}
    plot_lines(out / "g_path.png", x, g_mode, "q", "|g| (meV), rms over bands, k = first k",
          (xt, [r"$\Gamma$" if s == "G" else s for s in labels]))


def _mesh(cfg, ph, derivs, out, arrays, summary):
    res = eliashberg(derivs, ph, k_mesh=cfg.k_mesh, q_mesh=cfg.q_mesh or cfg.k_mesh,
                     sigma_el=cfg.sigma_el, sigma_ph=cfg.sigma_ph,
                     fermi_level=cfg.fermi_level, form=cfg.form, soft_cutoff=cfg.soft_cutoff,
                     imag_tol=cfg.imag_tol)
    arrays.update({"mesh/qpoints": res.modes.qpoints, "mesh/lambda_qnu": res.lambda_qnu,
                   "mesh/gamma_qnu_meV": res.gamma_qnu, "mesh/omega_meV": res.modes.energies_mev,
                   "mesh/omega_grid_meV": res.omega_grid, "mesh/a2f": res.a2f})
    summary["eliashberg"] = {
        "lambda": res.lam, "omega_log_meV": res.omega_log, "omega_2_meV": res.omega_2,
        "n_f_per_spin_per_eV": res.n_f, "fermi_level_eV": res.fermi_level,
        "fermi_level_given": cfg.fermi_level is not None, "fermi_in_gap": res.fermi_in_gap,
        "n_unstable_modes": res.n_unstable,
        "sigma_el_eV": res.sigma_el, "sigma_ph_meV": res.sigma_ph, "k_mesh": res.k_mesh,
        "q_mesh": res.q_mesh, "n_soft_modes_skipped": res.n_soft, "form": res.form,
        "onsite_d": res.onsite_d,
        "tc_K": {f"mu*={m:g}": {"mcmillan": res.tc(m), "allen-dynes": res.tc(m, "allen-dynes")}
                 for m in cfg.mu_star}}
    plot_lines(out / "a2f.png", res.omega_grid, res.a2f, "omega (meV)", r"$\alpha^2F(\omega)$")


def run_epc_config(config_path, out_dir) -> dict:
    """Run the EPC workflow of a TOML config; write results into ``out_dir``; return summary."""
    cfg = from_toml(config_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    atoms, ph, prov, onsite = build_inputs(cfg)
    derivs = derivatives(prov, atoms, n_box=cfg.n_box, delta=cfg.delta, scheme=cfg.scheme,
                         symmetry=cfg.symmetry,
                         onsite_d=onsite)
    arrays = {"derivatives/cell_pairs": derivs.cell_pairs}
    summary = {"config": str(config_path), "provider": cfg.provider, "model": cfg.model,
               "onsite_d": derivs.onsite_d,
               "delta_A": derivs.delta, "scheme": derivs.scheme, "n_box": derivs.n_box}
    if cfg.qpath:
        _path_coupling(cfg, atoms, ph, derivs, out, arrays, summary)
    if cfg.k_mesh is not None:
        _mesh(cfg, ph, derivs, out, arrays, summary)
    summary["seconds"] = time.perf_counter() - t0
    _write_h5(out / "epc.h5", arrays)
    _write_text(out / "epc.json", json.dumps(summary, indent=1))
    return summary
