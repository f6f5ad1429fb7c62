"""Directed neighbour lists with integer cell shifts (numpy/scipy only, no torch).

One function, :func:`neighbor_list`, used by the toy model. It returns every directed
pair (i, j, R) with

    |tau_j + R @ cell - tau_i| < r_cut

(``cell`` rows are lattice vectors, R integer), on-site pairs (i, i, 0) included on
request, sorted by (i, j, R). The search is the k-d tree pair search of
:func:`interfaces.nao.overlap.overlap_edges` (also used by the model graph): linear in
the number of atoms, any mix of periodic and non-periodic directions, cells smaller than
the cutoff (many images) included.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from interfaces.nao.overlap import overlap_edges

__all__ = ["neighbor_list"]


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
    if len(atoms) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell, dtype=np.float64)
    if np.any(np.linalg.norm(cell[pbc], axis=1) < 1e-12):
        raise ValueError("a periodic direction has a zero-length cell vector")
    edge_index, shift = overlap_edges(atoms, {}, r_cut=float(r_cut))
    i, j = edge_index
    if not self_interaction:
        keep = (i != j) | np.any(shift != 0, axis=1)
        i, j, shift = i[keep], j[keep], shift[keep]
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], j, i))
    return i[order], j[order], shift[order]
