"""The one neighbour-list builder: directed pairs (i, j, R) with integer cell shifts.

Every (i, j, R) list of the package comes from :func:`radius_pairs`, so label blocks and
model graphs agree by construction:

* :func:`neighbour_list` (uniform cutoff, sorted by (i, j, R)): the model graph
  (:func:`ase_deeph.model.graph.build_graph`), the toy model's blocks, the PySCF blocks
  (:func:`interfaces.pyscf.overlap`, and the Wigner-Seitz images of
  :func:`interfaces.pyscf.fold.fold`);
* :func:`radius_pairs` with per-atom radii: the blocks of numerical-orbital overlaps
  (:func:`interfaces.nao.overlap.overlap_edges`, ``|d| < rc_i + rc_j``) and the pairs
  sharing a non-local projector (:func:`interfaces.nao.overlap.nonlocal_pairs`).

A pair is kept when

    |tau_j + R @ cell - tau_i| < radii[i] + radii_b[j]

(``cell`` rows are lattice vectors, R integer, zero along non-periodic directions),
tested exactly with the caller's positions, so (i, j, R) and (j, i, -R) are kept
together. The search is a k-d tree over the atoms and the images of the cell within
reach: linear in the number of atoms, any mix of periodic and non-periodic directions,
cells smaller than the cutoff (many images) and atoms outside the cell included.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

__all__ = ["neighbour_list", "neighbor_list", "radius_pairs", "sort_edges", "cell_frame"]


def cell_frame(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Return a full-rank cell and the periodicity of ``atoms``.

    Returns
    -------
    cell : ndarray, shape (3, 3)
        ``atoms.cell`` with its non-periodic rows replaced by an orthonormal complement
        of the periodic ones.
    pbc : ndarray, shape (3,), bool
        Periodic directions.

    Raises
    ------
    ValueError
        When a periodic cell vector is zero or the periodic vectors are dependent.
    """
    cell = np.array(atoms.cell, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if np.any(np.linalg.norm(cell[pbc], axis=1) < 1e-12):
        raise ValueError("a periodic direction has a zero-length cell vector")
    if not pbc.all():
        per = cell[pbc]
        cell[~pbc] = np.linalg.svd(per)[2][len(per):] if len(per) else np.eye(3)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the periodic cell vectors are zero or linearly dependent")
    return cell, pbc


def radius_pairs(atoms: Atoms, radii: np.ndarray, radii_b: np.ndarray | None = None,
                 self_interaction: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed pairs (i, j, R) with ``|tau_j + R @ cell - tau_i| < radii[i] + radii_b[j]``.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom).
    radii : ndarray, shape (n_atoms,)
        Radius of each atom as the first member i, Angstrom.
    radii_b : ndarray, shape (n_atoms,), optional
        Radius of each atom as the second member j; default ``radii`` (a symmetric
        criterion, so (j, i, -R) is kept with (i, j, R)).
    self_interaction : bool
        Append the on-site pairs (i, i, 0) of every atom.

    Returns
    -------
    i, j : ndarray, shape (n_pairs,), int64
        Atoms; the bond vector is ``positions[j] + shift @ cell - positions[i]``.
    shift : ndarray, shape (n_pairs, 3), int64
        Lattice translation R of atom j. Pairs are unsorted (use :func:`sort_edges`).
    """
    n = len(atoms)
    radii = np.asarray(radii, dtype=np.float64)  # [n_atoms]
    radii_b = radii if radii_b is None else np.asarray(radii_b, dtype=np.float64)
    if n == 0:
        i = j = np.zeros(0, np.int64)
        shift = np.zeros((0, 3), np.int64)
    else:
        i, j, shift = _search(atoms, radii, radii_b)
    if self_interaction:
        i = np.concatenate([i, np.arange(n)])
        j = np.concatenate([j, np.arange(n)])
        shift = np.concatenate([shift, np.zeros((n, 3), np.int64)])
    return i.astype(np.int64), j.astype(np.int64), shift.astype(np.int64)


def _search(atoms: Atoms, radii: np.ndarray, radii_b: np.ndarray):
    """k-d tree search of :func:`radius_pairs` without on-site pairs (n_atoms > 0)."""
    r_max = radii.max() + radii_b.max()
    cell, pbc = cell_frame(atoms)
    frac = atoms.positions @ np.linalg.inv(cell)  # [n_atoms, 3]
    wrap = np.where(pbc, np.floor(frac), 0).astype(np.int64)  # atoms moved into the cell
    pos = atoms.positions - wrap @ cell
    margin = np.where(pbc, r_max * np.linalg.norm(np.linalg.inv(cell), axis=0), 0.0)
    n_img = np.ceil(margin).astype(np.int64)
    shifts = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in n_img], indexing="ij"),
                      axis=-1).reshape(-1, 3)  # [n_shift, 3]
    img = (frac - wrap)[None] + shifts[:, None]  # [n_shift, n_atoms, 3]
    bound = np.where(pbc, margin, np.inf)
    s_idx, a_idx = np.nonzero(np.all((img > -bound) & (img < 1 + bound), axis=2))
    found = cKDTree(pos).sparse_distance_matrix(  # slightly wider: exact test below
        cKDTree(pos[a_idx] + shifts[s_idx] @ cell), r_max * (1 + 1e-9) + 1e-9,
        output_type="ndarray")
    i, k = found["i"].astype(np.int64), found["j"].astype(np.int64)
    j = a_idx[k]
    shift = shifts[s_idx[k]] - wrap[j] + wrap[i]  # [n_found, 3]
    # exact, reversal-symmetric test with the caller's positions
    vec = atoms.positions[j] - atoms.positions[i] + shift @ np.asarray(atoms.cell)  # [n, 3]
    ok = (np.einsum("nc,nc->n", vec, vec) < (radii[i] + radii_b[j]) ** 2) & (
        (i != j) | np.any(shift != 0, axis=1))
    return i[ok], j[ok], shift[ok]


def sort_edges(edge_index: np.ndarray, cell_shift: np.ndarray) -> np.ndarray:
    """Canonical order of blocks: by i, then j, then R (lexicographic).

    Parameters
    ----------
    edge_index : ndarray, shape (2, n_edges)
        (i, j) of each block.
    cell_shift : ndarray, shape (n_edges, 3)
        R of each block.

    Returns
    -------
    ndarray, shape (n_edges,), int
        Permutation that sorts the blocks.
    """
    r = np.asarray(cell_shift).reshape(-1, 3)
    return np.lexsort((r[:, 2], r[:, 1], r[:, 0], edge_index[1], edge_index[0]))


def neighbour_list(
    atoms: Atoms, r_cut: float, self_interaction: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs within ``r_cut``, with integer cell shifts, sorted by (i, j, R).

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
    radii = np.full(len(atoms), 0.5 * float(r_cut))  # [n_atoms]: |d| < r_cut / 2 + r_cut / 2
    i, j, shift = radius_pairs(atoms, radii, self_interaction=self_interaction)
    order = sort_edges(np.stack([i, j]), shift)
    return i[order], j[order], shift[order]


#: American spelling of :func:`neighbour_list`, kept for existing callers
#: (:mod:`ase_deeph.inference.toy` and its tests).
neighbor_list = neighbour_list
