"""File-level workflows behind the ``bands``, ``dos`` and ``predict`` verbs.

An *input* is a DFT run or file that :func:`interfaces.read` recognises, an ase-deeph
HDF5 file, or (with a model) any structure file ASE can read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

import interfaces
from ase_deeph import solvers
from ase_deeph.solvers.conditioning import OverlapPolicy, check_spectrum
from interfaces import HSData, kspacing
from interfaces.errors import ConfigError

__all__ = ["load_input", "solve_on_mesh", "bands_file", "dos_file", "predict_file"]


def load_input(path: str | os.PathLike, model=None) -> tuple[HSData, OverlapPolicy]:
    """Return H(R), S(R) of a DFT run / HSData file, or predict them for a structure file.

    The second value is how solves must treat near-null S(k) directions: exact for DFT
    data, the model's policy for a prediction (the one rule of every solve path).
    """
    path = Path(path)
    import ase.io

    if model is None:
        try:
            return interfaces.read(path), OverlapPolicy(kind="exact")
        except interfaces.FormatError as exc:
            try:
                ase.io.read(path)
            except Exception:  # not a structure either: the reader's message stands
                raise exc from None
            raise interfaces.FormatError(
                path, "is a structure file, not a DFT Hamiltonian: pass -m MODEL (e.g. "
                "-m default) to predict H and S for it") from None

    from ase_deeph.inference.provider import resolve_provider

    provider = resolve_provider(model, device="auto", overlap="auto")
    atoms = ase.io.read(path)
    provider.check_structure(atoms)
    return provider(atoms), provider.policy


def _sampled(atoms):
    """``atoms`` with ``pbc`` False along vacuum, the rule of ``learn`` (gap > 6 Angstrom).

    Structure files without periodicity flags (VASP, xyz with a cell) mark a slab's vacuum
    axis periodic; sampling it with more than one k-point only costs time.
    """
    from ase_deeph.learn.structure import vacuum_axes

    out, vacuum = atoms.copy(), vacuum_axes(atoms)
    out.pbc = [bool(p) and i not in vacuum for i, p in enumerate(atoms.pbc)]
    return out


def solve_on_mesh(hs: HSData, policy: OverlapPolicy, kmesh=None, return_vectors=False):
    """Solve ``hs`` on a mesh under ``policy``: the dense path of every CLI verb.

    Returns ``(hs_solve, threshold, mesh, solution, fermi_level)``: the data as solved
    (``policy.prepare``), the S projection threshold, the k-mesh, the solution and E_F from
    the electron count (else the file's value, else NaN). States more than 100 eV from E_F
    are reported (:func:`~ase_deeph.solvers.conditioning.check_spectrum`). The default
    mesh is the one k-mesh rule at the solve spacing,
    :data:`interfaces.kspacing.KSPACING_SOLVE` (2 pi / 25 1/Angstrom), with one k-point
    along vacuum (:func:`_sampled`).
    """
    hs_solve = policy.prepare(hs)
    mesh = solvers.kmesh(hs.atoms, kmesh or kspacing.default_kmesh(
        _sampled(hs.atoms), kspacing.KSPACING_SOLVE))
    thr = policy.dense_threshold(hs_solve, mesh.kpts)
    sol = solvers.solve(hs_solve, mesh.kpts, return_vectors=return_vectors, ill_threshold=thr)
    ef = hs.fermi_level
    if math.isfinite(hs.n_electrons):
        ef = solvers.fermi_level(sol.eigenvalues, hs.n_electrons, mesh.weights,
                                 solvers.spin_degeneracy(hs.spin)).fermi_level
    check_spectrum(sol.eigenvalues, ef, hs.atoms.get_chemical_formula(),
                   known=policy.known_range)
    return hs_solve, thr, mesh, sol, ef


def bands_file(src, output, path: str | None = None, npoints: int = 120, model=None,
               emin: float = -6.0, emax: float = 6.0) -> dict:
    """Plot the band structure of ``src`` to the PNG ``output``; return a JSON-able summary."""
    hs, policy = load_input(src, model)
    if not hs.atoms.pbc.any():
        raise ConfigError(f"{src}: a band structure needs a periodic structure; "
                         "use 'ase-deeph dos' for a molecule")
    hs_solve, thr, _, _, ef = solve_on_mesh(hs, policy)
    bs = solvers.band_structure(hs_solve, path, npoints,
                                fermi_level=ef if math.isfinite(ef) else None, ill_threshold=thr)
    check_spectrum(bs.energies, ef, f"{src} band path", known=policy.known_range)
    solvers.plot_bands(bs, output, emin=emin, emax=emax, title=hs.atoms.get_chemical_formula(),
                       fermi_known=math.isfinite(ef))
    return {"input": str(src), "output": str(output), "fermi_level_eV": _num(ef),
            "path": bs.path.path, "n_kpoints": int(len(bs.path.kpts)),
            "n_bands": int(bs.energies.shape[-1]), "s_projection_threshold": thr,
            "energy_range_eV": [_num(np.nanmin(bs.energies)), _num(np.nanmax(bs.energies))]}


def dos_file(src, output, kmesh=None, width: float = 0.1, model=None) -> dict:
    """Plot the Mulliken-projected DOS of ``src`` to the PNG ``output``; return a summary."""
    hs, policy = load_input(src, model)
    hs_solve, thr, mesh, sol, ef = solve_on_mesh(hs, policy, kmesh, return_vectors=True)
    pdos = solvers.projected_dos(hs_solve, sol, mesh.weights, width=width, fermi_level=ef)
    solvers.plot_dos(pdos, output, by="element", emin=-15.0, emax=10.0,
                     title=hs.atoms.get_chemical_formula())
    return {"input": str(src), "output": str(output), "fermi_level_eV": _num(ef),
            "kmesh": list(mesh.size), "n_irreducible_k": int(mesh.nk),
            "s_projection_threshold": thr}


def predict_file(structure, model, output, to_code: str = "hsdata",
                 force: bool = False) -> str:
    """Predict H (and S) of a structure file and write it in the format ``to_code``.

    An existing HDF5 ``output`` is replaced only with ``force`` (FileExistsError otherwise).
    """
    hs, _ = load_input(structure, model or "default")
    if to_code == "hsdata":
        interfaces.save(hs, output, overwrite=force)
    else:
        interfaces.write(hs, output, to_code)
    return str(output)


def _num(x: float):
    return float(x) if x is not None and math.isfinite(x) else None

