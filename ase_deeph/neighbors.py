"""Directed neighbour lists with integer cell shifts (numpy/ase only, no torch).

One function, :func:`neighbor_list`, used by the toy model and by the model graph.
It returns every directed pair (i, j, R) with

    |tau_j + R @ cell - tau_i| < r_cut

(``cell`` rows are lattice vectors, R integer), on-site pairs (i, i, 0) included
on request, sorted by (i, j, R). Time and memory are linear in the number of atoms:
the search is ASE's binned ``primitive_neighbor_list`` (which also handles cells
smaller than the cutoff, i.e. many periodic images), fed with a bounding box in
the non-periodic directions so that molecules and slabs stay linear too.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import primitive_neighbor_list

__all__ = ["neighbor_list"]


def _search_cell(
    cell: np.ndarray, pbc: np.ndarray, positions: np.ndarray, r_cut: float
) -> tuple[np.ndarray, np.ndarray]:
    """Replace non-periodic cell vectors by a bounding box; return (cell, positions).

    Non-periodic shift components are always zero, so the vectors of those
    directions never enter a bond vector and may be chosen freely: orthonormal
    complements of the periodic vectors, as long as the atoms' extent plus margin.
    Positions are translated (pairs and shifts do not depend on a global shift).
    """
    periodic = cell[pbc]  # [n_periodic, 3]
    if len(periodic) and np.any(np.linalg.norm(periodic, axis=1) < 1e-12):
        raise ValueError("a periodic direction has a zero-length cell vector")
    if len(periodic) == 3:
        return cell, positions
    if len(periodic):
        _, sv, vt = np.linalg.svd(periodic)
        if sv.min() < 1e-12 * sv.max():
            raise ValueError("the periodic cell vectors are linearly dependent")
        complement = vt[len(periodic):]  # [3 - n_periodic, 3] orthonormal
    else:
        complement = np.eye(3)
    proj = positions @ complement.T  # [n_atoms, n_free]
    lo = proj.min(axis=0) - 1.0
    span = proj.max(axis=0) - lo + 1.0 + r_cut
    new_cell = cell.copy()
    new_cell[~pbc] = complement * span[:, None]
    return new_cell, positions - lo @ complement


def neighbor_list(
    atoms: Atoms, r_cut: float, self_interaction: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs within ``r_cut``, with integer cell shifts.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure; any mix of periodic and non-periodic directions. Cell rows are
        lattice vectors (Angstrom); non-periodic cell vectors may be zero.
    r_cut : float
        Cutoff radius in Angstrom (strict: pairs with distance < r_cut).
    self_interaction : bool
        Include the on-site pairs (i, i, R = 0).

    Returns
    -------
    i, j : ndarray, shape (n_pairs,), int64
        0-based atoms; the bond vector is ``positions[j] + shift @ cell - positions[i]``.
    shift : ndarray, shape (n_pairs, 3), int64
        Integer lattice translation R of atom j (zero in non-periodic directions).

    Notes
    -----
    Both (i, j, R) and (j, i, -R) are returned. The output is sorted
    lexicographically by (i, j, R[0], R[1], R[2]), so it is deterministic.
    """
    if r_cut <= 0:
        raise ValueError(f"r_cut must be positive, got {r_cut}")
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell, dtype=np.float64)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if len(atoms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    search_cell, search_pos = _search_cell(cell, pbc, positions, r_cut)
    i, j, shift = primitive_neighbor_list(
        "ijS", pbc, search_cell, search_pos, float(r_cut), self_interaction=self_interaction
    )
    i, j, shift = i.astype(np.int64), j.astype(np.int64), shift.astype(np.int64)
    # exact re-check with the caller's positions and cell (the search used translated ones)
    vec = positions[j] - positions[i] + shift @ cell  # [n_pairs, 3]
    keep = np.einsum("nc,nc->n", vec, vec) < r_cut * r_cut
    i, j, shift = i[keep], j[keep], shift[keep]
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], j, i))
    return i[order], j[order], shift[order]
