"""Structure -> graph: directed edges (i, j, R) within a cutoff, and the map to target blocks.

Edges are every pair with ``|tau_j + R @ cell - tau_i| < r_cut`` except the on-site
(i, i, 0), from the one neighbour-list builder of the package,
:func:`interfaces.neighbours.neighbour_list` (a k-d tree search, 10-50x faster than ASE's
binned neighbour list at 10^2-10^4 atoms; same edge set), which also gives the blocks of
the labels (toy model, PySCF, numerical-orbital overlaps), so a graph and the label blocks
of the same cutoff agree by construction. Predictions live in *rows*: row ``i < n_atoms``
is the on-site block of atom i, row ``n_atoms + e`` the block of edge e. Both directions of
every pair are edges, so ``reverse`` maps (i, j, R) to (j, i, -R).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from interfaces.hsdata import HSData
from interfaces.neighbours import neighbour_list

__all__ = ["Graph", "build_graph", "target_rows", "reverse_rows"]


@dataclass(frozen=True)
class Graph:
    """Edges of one structure.

    Attributes
    ----------
    n_atoms : int
        Number of atoms (on-site rows).
    edge_index : ndarray, shape (2, n_edges), int64
        (i, j) of each off-site edge (i receives the message of j).
    cell_shift : ndarray, shape (n_edges, 3), int64
        Lattice translation R of atom j.
    vectors : ndarray, shape (n_edges, 3), float64
        Bond vectors ``tau_j + R @ cell - tau_i``, Angstrom.
    reverse : ndarray, shape (n_edges,), int64
        Index of the edge (j, i, -R).
    """

    n_atoms: int
    edge_index: np.ndarray
    cell_shift: np.ndarray
    vectors: np.ndarray
    reverse: np.ndarray

    @property
    def n_edges(self) -> int:
        """Number of directed off-site edges."""
        return self.edge_index.shape[1]


def _keys(i: np.ndarray, j: np.ndarray, shift: np.ndarray, n_atoms: int) -> np.ndarray:
    r = np.asarray(shift, dtype=np.int64) + 1024
    if r.size and (r.min() < 0 or r.max() >= 2048):
        raise ValueError("cell shifts beyond |R| < 1024 are not supported")
    pair = np.asarray(i, dtype=np.int64) * n_atoms + np.asarray(j, dtype=np.int64)
    return ((pair * 2048 + r[:, 0]) * 2048 + r[:, 1]) * 2048 + r[:, 2]


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions of ``query`` in ``keys`` (-1 where absent)."""
    order = np.argsort(keys, kind="stable")
    pos = np.clip(np.searchsorted(keys[order], query), 0, max(len(keys) - 1, 0))
    if not len(keys):
        return np.full(query.shape, -1, dtype=np.int64)
    return np.where(keys[order][pos] == query, order[pos], -1)


def build_graph(atoms: Atoms, r_cut: float) -> Graph:
    """Directed off-site edges of ``atoms`` within ``r_cut`` Angstrom.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom); any mix of periodic and non-periodic directions.
    r_cut : float
        Cutoff radius, Angstrom (strict).

    Returns
    -------
    Graph
        Edges of :func:`interfaces.neighbours.neighbour_list` without the on-site pairs,
        sorted by (i, j, R).
    """
    i, j, shift = neighbour_list(atoms, float(r_cut), self_interaction=False)  # [n_edges]
    pos = np.asarray(atoms.positions, dtype=np.float64)
    vec = pos[j] - pos[i] + shift @ np.asarray(atoms.cell, dtype=np.float64)  # [n_edges, 3]
    n = len(atoms)
    reverse = _lookup(_keys(i, j, shift, n), _keys(j, i, -shift, n))
    if np.any(reverse < 0):
        raise RuntimeError("neighbour list is not symmetric")
    return Graph(n, np.stack([i, j]), shift, vec, reverse)


def reverse_rows(graph: Graph) -> np.ndarray:
    """Row of the transposed partner of every row (on-site rows map to themselves)."""
    return np.concatenate([np.arange(graph.n_atoms), graph.n_atoms + graph.reverse])


def target_rows(graph: Graph, hs: HSData) -> np.ndarray:
    """Row of every block of ``hs`` (on-site -> atom row, off-site -> edge row).

    Raises
    ------
    ValueError
        When a target block has no graph edge (its bond is not shorter than r_cut);
        the message names the first missing (i, j, R) and their distances.
    """
    i, j = hs.edge_index
    onsite = (i == j) & np.all(hs.cell_shift == 0, axis=1)
    rows = _lookup(_keys(*graph.edge_index, graph.cell_shift, graph.n_atoms),
                   _keys(i, j, hs.cell_shift, graph.n_atoms))
    rows = np.where(onsite, i, graph.n_atoms + rows)
    missing = np.flatnonzero(~onsite & (rows == graph.n_atoms - 1))
    if len(missing):
        dist = np.linalg.norm(hs.edge_vectors()[missing], axis=1)
        sym = hs.atoms.get_chemical_symbols()
        shown = ", ".join(f"({i[e]}{sym[i[e]]}, {j[e]}{sym[j[e]]}, R={hs.cell_shift[e].tolist()}, "
                          f"{d:.3f} A)" for e, d in zip(missing[:5], dist[:5], strict=True))
        raise ValueError(f"{len(missing)} target blocks are not graph edges (r_cut too small, "
                         f"max missing distance {dist.max():.3f} A): {shown}")
    return rows
