"""k-point meshes (Monkhorst-Pack, Gamma-centred), spglib irreducible reduction, band paths.

All k-points are fractional (reduced reciprocal) coordinates, shape (nk, 3).
Directions with ``pbc = False`` always get a single k-point (k = 0). The mesh size of a
k-point spacing is :func:`interfaces.kspacing.default_kmesh` (the package's one rule).

The Gamma-centring switch is spelled ``gamma_centred``; the keyword ``gamma_centered``
is still accepted by :func:`mesh_points` and :func:`kmesh` (existing callers).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import spglib
from ase import Atoms
from ase.dft.kpoints import BandPath

__all__ = ["KMesh", "bandpath", "kmesh", "mesh_points"]


@dataclass(frozen=True)
class KMesh:
    """A k-point mesh and its irreducible part.

    Attributes
    ----------
    size : tuple of int
        Mesh divisions (n1, n2, n3).
    gamma_centred : bool
        Gamma-centred (True) or Monkhorst-Pack (False) mesh.
    kpts : ndarray, shape (nk, 3)
        Irreducible (or all, without symmetry) fractional k-points.
    weights : ndarray, shape (nk,)
        Weights summing to 1.
    full_kpts : ndarray, shape (n1 * n2 * n3, 3)
        Every mesh point.
    mapping : ndarray, shape (n1 * n2 * n3,), int
        Index into ``kpts`` of the irreducible point equivalent to each full point.
    """

    size: tuple[int, int, int]
    gamma_centred: bool
    kpts: np.ndarray
    weights: np.ndarray
    full_kpts: np.ndarray
    mapping: np.ndarray

    @property
    def nk(self) -> int:
        """Number of (irreducible) k-points."""
        return len(self.kpts)


def _size(size, pbc) -> tuple[int, int, int]:
    size = np.broadcast_to(np.asarray(size, dtype=np.int64), (3,)).copy()
    if np.any(size < 1):
        raise ValueError(f"k-mesh divisions must be >= 1, got {tuple(size)}")
    size[~np.asarray(pbc, dtype=bool)] = 1
    return tuple(int(x) for x in size)


def _centred(gamma_centred: bool, gamma_centered: bool | None) -> bool:
    """Resolve the ``gamma_centred`` switch and its old spelling ``gamma_centered``."""
    if gamma_centered is None:
        return bool(gamma_centred)
    if gamma_centred and not gamma_centered:
        raise TypeError("gamma_centred=True contradicts gamma_centered=False")
    return bool(gamma_centered)


def _shift(size, gamma_centred: bool) -> np.ndarray:
    """Return the spglib half-step shift: Monkhorst-Pack meshes are shifted along even divisions."""
    size = np.asarray(size)
    return np.zeros(3, int) if gamma_centred else ((size + 1) % 2).astype(int)


def mesh_points(size, gamma_centred: bool = False, *,
                gamma_centered: bool | None = None) -> np.ndarray:
    """All points of a mesh, shape (n1 * n2 * n3, 3), fractional, folded into [-0.5, 0.5).

    Monkhorst-Pack: ``k_i = (2 r - n - 1) / (2 n)``, r = 1..n (contains Gamma only for
    odd n). Gamma-centred (``gamma_centred``, old spelling ``gamma_centered``):
    ``k_i = r / n``.
    """
    centred = _centred(gamma_centred, gamma_centered)
    axes = []
    for n in np.broadcast_to(np.asarray(size, dtype=np.int64), (3,)):
        r = np.arange(n)
        k = r / n if centred else (2 * r - n + 1) / (2 * n)
        axes.append(k - np.floor(k + 0.5))
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1)


def kmesh(atoms: Atoms, size, gamma_centred: bool = False, symmetry: bool = True,
          time_reversal: bool = True, symprec: float = 1e-5, *,
          gamma_centered: bool | None = None) -> KMesh:
    """Build a k-mesh and reduce it to the irreducible wedge with spglib.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (cell, positions, numbers, pbc); magnetic moments are ignored.
    size : int or sequence of 3 int
        Divisions; forced to 1 along non-periodic directions.
    gamma_centred : bool
        Gamma-centred instead of Monkhorst-Pack.
    symmetry : bool
        Reduce with the crystal point group (``spglib.get_ir_reciprocal_mesh``).
    time_reversal : bool
        Also use k -> -k (valid without spin-orbit magnetism).
    symprec : float
        spglib tolerance, Angstrom.
    gamma_centered : bool, optional
        Old spelling of ``gamma_centred`` (keyword only).

    Returns
    -------
    KMesh
        Irreducible k-points with weights summing to 1.
    """
    centred = _centred(gamma_centred, gamma_centered)
    size = _size(size, atoms.pbc)
    shift = _shift(size, centred)
    if not symmetry or not any(atoms.pbc):  # molecules: Gamma only, no spglib needed
        full = mesh_points(size, centred)
        n = len(full)
        return KMesh(size, centred, full, np.full(n, 1.0 / n), full, np.arange(n))
    cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib 2.x deprecation noise about its error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        mapping, grid = spglib.get_ir_reciprocal_mesh(
            np.array(size), cell, is_shift=shift, is_time_reversal=time_reversal, symprec=symprec
        ) or (None, None)
    if mapping is None:
        raise RuntimeError(f"spglib could not reduce the {size} k-mesh (symmetry search failed)")
    full = (grid + 0.5 * shift) / np.array(size)  # [n_full, 3]
    full = full - np.floor(full + 0.5)
    irr, inverse, counts = np.unique(mapping, return_inverse=True, return_counts=True)
    kpts = full[irr]
    return KMesh(size, centred, kpts, counts / counts.sum(), full,
                 inverse.reshape(-1).astype(np.int64))


def bandpath(atoms: Atoms, path: str | BandPath | None = None, npoints: int = 100) -> BandPath:
    """Band path through special points: ``atoms.cell.bandpath(path, npoints, pbc)``.

    ``path`` may already be an :class:`ase.dft.kpoints.BandPath` (returned as is);
    ``None`` picks ASE's default path for the lattice. ``bandpath(...).kpts`` is
    the (nk, 3) fractional array.
    """
    if isinstance(path, BandPath):
        return path
    return atoms.cell.bandpath(path, npoints=npoints, pbc=atoms.pbc)
