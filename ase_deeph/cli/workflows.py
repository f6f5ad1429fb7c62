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
from interfaces import HSData
from interfaces.errors import ConfigError

__all__ = ["load_input", "bands_file", "dos_file", "predict_file", "default_kmesh"]


def load_input(path: str | os.PathLike, model=None) -> HSData:
    """Return H(R), S(R) of a DFT run / HSData file, or predict them for a structure file."""
    path = Path(path)
    import ase.io

    if model is None:
        try:
            return interfaces.read(path)
        except interfaces.FormatError as exc:
            try:
                ase.io.read(path)
            except Exception:  # not a structure either: the reader's message stands
                raise exc from None
            raise interfaces.FormatError(
                path, "is a structure file, not a DFT Hamiltonian: pass -m MODEL (e.g. "
                "-m default) to predict H and S for it") from None

    from ase_deeph.calculator import _resolve_provider

    return _resolve_provider(model, device="auto", overlap="auto")(ase.io.read(path))


def default_kmesh(atoms, density: float = 25.0) -> tuple[int, int, int]:
    """Mesh with about ``density`` points per inverse Angstrom along each periodic direction."""
    if not atoms.pbc.any():
        return (1, 1, 1)
    rec = np.linalg.norm(atoms.cell.reciprocal(), axis=1) if atoms.cell.rank == 3 else np.ones(3)
    n = np.maximum(1, np.ceil(density * rec).astype(int))
    return tuple(int(x) if p else 1 for x, p in zip(n, atoms.pbc, strict=True))


def _fermi(hs: HSData, kmesh=None) -> tuple[float, solvers.KMesh | None]:
    """Fermi level from the electron count on a mesh, else the file's value, else NaN."""
    if not math.isfinite(hs.n_electrons):
        return hs.fermi_level, None
    mesh = solvers.kmesh(hs.atoms, kmesh or default_kmesh(hs.atoms))
    sol = solvers.solve(hs, mesh.kpts)
    res = solvers.fermi_level(sol.eigenvalues, hs.n_electrons, mesh.weights,
                              solvers.spin_degeneracy(hs.spin))
    return res.fermi_level, mesh


def bands_file(src, output, path: str | None = None, npoints: int = 120, model=None,
               emin: float = -6.0, emax: float = 6.0) -> dict:
    """Plot the band structure of ``src`` to the PNG ``output``; return a JSON-able summary."""
    hs = load_input(src, model)
    if not hs.atoms.pbc.any():
        raise ConfigError(f"{src}: a band structure needs a periodic structure; "
                         "use 'ase-deeph dos' for a molecule")
    ef, _ = _fermi(hs)
    bs = solvers.band_structure(hs, path, npoints, fermi_level=ef if math.isfinite(ef) else None)
    solvers.plot_bands(bs, output, emin=emin, emax=emax, title=hs.atoms.get_chemical_formula(),
                       fermi_known=math.isfinite(ef))
    return {"input": str(src), "output": str(output), "fermi_level_eV": _num(ef),
            "path": bs.path.path, "n_kpoints": int(len(bs.path.kpts)),
            "n_bands": int(bs.energies.shape[-1])}


def dos_file(src, output, kmesh=None, width: float = 0.1, model=None) -> dict:
    """Plot the Mulliken-projected DOS of ``src`` to the PNG ``output``; return a summary."""
    hs = load_input(src, model)
    mesh = solvers.kmesh(hs.atoms, kmesh or default_kmesh(hs.atoms))
    sol = solvers.solve(hs, mesh.kpts, return_vectors=True)
    ef = hs.fermi_level
    if math.isfinite(hs.n_electrons):
        ef = solvers.fermi_level(sol.eigenvalues, hs.n_electrons, mesh.weights,
                                 solvers.spin_degeneracy(hs.spin)).fermi_level
    pdos = solvers.projected_dos(hs, sol, mesh.weights, width=width, fermi_level=ef)
    solvers.plot_dos(pdos, output, by="element", emin=-15.0, emax=10.0,
                     title=hs.atoms.get_chemical_formula())
    return {"input": str(src), "output": str(output), "fermi_level_eV": _num(ef),
            "kmesh": list(mesh.size), "n_irreducible_k": int(mesh.nk)}


def predict_file(structure, model, output, to_code: str = "hsdata",
                 force: bool = False) -> str:
    """Predict H (and S) of a structure file and write it in the format ``to_code``.

    An existing HDF5 ``output`` is replaced only with ``force`` (FileExistsError otherwise).
    """
    hs = load_input(structure, model or "default")
    if to_code == "hsdata":
        interfaces.save(hs, output, overwrite=force)
    else:
        interfaces.write(hs, output, to_code)
    return str(output)


def _num(x: float):
    return float(x) if x is not None and math.isfinite(x) else None

