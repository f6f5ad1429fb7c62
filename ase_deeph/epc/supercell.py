"""Supercell bookkeeping of the finite differences (``docs/epc.md`` 3.2).

The (2N+1)^3 supercell of the primitive cell, the differences of H and S between displaced
supercells, the mapping of each supercell block (I, J, S) onto the primitive-cell pair
(a, R_m; b, R_n) with image weights, and the assembly of the dense derivative arrays.
:func:`ase_deeph.epc.derivatives.derivatives` drives these steps.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from ase import Atoms

from interfaces.hsdata import HSData

__all__ = ["box_size", "supercell_map", "displacement_records", "assemble"]

Provider = Callable[[Atoms], HSData]
OnsiteD = Callable[[str], np.ndarray]


def box_size(n_box) -> np.ndarray:
    """N per axis, int64 [3], from an int (the same along a, b, c) or three ints."""
    n = np.broadcast_to(np.asarray(n_box, dtype=np.int64), (3,)).copy()
    if np.any(n < 0):
        raise ValueError(f"n_box must be >= 0 along every axis, got {n_box!r}")
    return n


def supercell_map(atoms: Atoms, n_box) -> tuple[Atoms, np.ndarray, np.ndarray]:
    """(2N+1) cells per axis; return (supercell, kappa of each atom, cell R in [-N, N])."""
    n = box_size(n_box)
    m = 2 * n + 1  # [3]
    rngs = [np.arange(-x, x + 1) for x in n]
    cells = np.stack(np.meshgrid(*rngs, indexing="ij"), -1).reshape(-1, 3)  # [prod(m), 3]
    n_uc = len(atoms)
    kappa = np.tile(np.arange(n_uc), len(cells))
    cell_of = np.repeat(cells, n_uc, axis=0)  # [n_sc, 3]
    pos = atoms.positions[kappa] + cell_of @ np.asarray(atoms.cell)
    sc = Atoms(numbers=atoms.numbers[kappa], positions=pos,
               cell=m[:, None] * np.asarray(atoms.cell), pbc=True)
    return sc, kappa, cell_of


def _image_weights(atoms: Atoms, n_box, a, ra, b, rb, x0: np.ndarray):
    """Image shifts L (in supercell vectors) closest to x0 and their weights, per block."""
    m = 2 * box_size(n_box) + 1  # [3]
    cell = np.asarray(atoms.cell)
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    xa = atoms.positions[a] + ra @ cell  # [n, 3]
    xb = atoms.positions[b] + rb @ cell
    t = (m * shifts) @ cell  # [27, 3]
    dist = (np.linalg.norm(xa[:, None] + t[None] - x0, axis=-1)
            + np.linalg.norm(xb[:, None] + t[None] - x0, axis=-1))  # [n, 27]
    best = dist <= dist.min(axis=1, keepdims=True) + 1e-6
    weight = best / best.sum(axis=1, keepdims=True)
    return shifts, weight


def _common_edges(a: HSData, b: HSData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, R) blocks present in both HSData and their indices in a and b.

    A block that crosses a hard cutoff between the two geometries has no finite difference
    (its value jumps); it is dropped, i.e. its derivative is taken as zero.
    """
    keys = np.column_stack([a.edge_index.T, a.cell_shift])  # [n, 5]
    i, j, shift = keys[:, 0], keys[:, 1], keys[:, 2:]
    eb = b.find_edges(i, j, shift)
    both = eb >= 0
    return keys[both], np.flatnonzero(both), eb[both]


def _gather(hs: HSData, edges: np.ndarray, which: str) -> np.ndarray:
    """Blocks of equally shaped ``edges``, [n, ni, nj]."""
    values = hs.s if which == "s" else hs.h[0]
    return values[hs.block_index(edges)]


def _differences(plus: HSData, ref: HSData, scale: float, prune: float):
    """Yield (keys [n, 5], dH [n, ni, nj], dS) per element pair: (X+ - X_ref) / scale."""
    keys, ep, er = _common_edges(plus, ref)
    z = plus.atoms.numbers
    pair = z[keys[:, 0]].astype(np.int64) * 1000 + z[keys[:, 1]]
    for code in np.unique(pair):
        sel = np.flatnonzero(pair == code)
        dh = (_gather(plus, ep[sel], "h") - _gather(ref, er[sel], "h")) / scale
        ds = (_gather(plus, ep[sel], "s") - _gather(ref, er[sel], "s")) / scale
        big = np.maximum(np.abs(dh).max(axis=(1, 2)), np.abs(ds).max(axis=(1, 2))) > prune
        if big.any():
            yield keys[sel[big]], dh[big], ds[big]


def _displaced(sc: Atoms, index: int, alpha: int, step: float) -> Atoms:
    out = sc.copy()
    out.positions[index, alpha] += step
    return out


def _to_primitive(keys: np.ndarray, geometry: tuple):
    """Weighted images of supercell blocks: (record row, pair6 [m, 6], a, b, weight)."""
    atoms, n_box, kappa, cell_of, x0 = geometry
    m = 2 * box_size(n_box) + 1  # [3]
    i, j, s = keys[:, 0], keys[:, 1], keys[:, 2:]
    a, b = kappa[i], kappa[j]
    ra, rb = cell_of[i], cell_of[j] + m * s
    shifts, weight = _image_weights(atoms, n_box, a, ra, b, rb, x0)
    row, img = np.nonzero(weight)
    sh = m * shifts[img]
    pair6 = np.concatenate([ra[row] + sh, rb[row] + sh], axis=1)
    return row, pair6, a[row], b[row], weight[row, img]


def _records(plus: HSData, ref: HSData, scale: float, geometry: tuple, prune: float) -> list:
    """Per element pair: (pair6, a, b, weighted dH blocks, weighted dS blocks)."""
    out = []
    for keys, dh, ds in _differences(plus, ref, scale, prune):
        row, pair6, a, b, w = _to_primitive(keys, geometry)
        out.append((pair6, a, b, w[:, None, None] * dh[row], w[:, None, None] * ds[row]))
    return out


def assemble(records: dict, hs0: HSData, onsite: OnsiteD | None):
    """Dense (P, N_uc, 3, n_orb, n_orb) arrays from per-(kappa, alpha) records.

    Parameters
    ----------
    records : dict
        ``{(kappa, alpha): records}`` of :func:`displacement_records` (or completed by
        :func:`ase_deeph.epc.symmetry.complete_records`).
    hs0 : HSData
        The undisplaced primitive structure (orbital offsets, chemical symbols).
    onsite : callable or None
        ``onsite(symbol) -> (3, n, n)`` on-site block of D; None leaves it zero.

    Returns
    -------
    cell_pairs : ndarray, shape (P, 2, 3), int64
    dh, ds, d : ndarray, shape (P, N_uc, 3, n_orb, n_orb)
    """
    all_pairs = [r[0] for recs in records.values() for r in recs] + [np.zeros((1, 6), int)]
    pairs, inverse = np.unique(np.concatenate(all_pairs), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    home = int(np.flatnonzero(~pairs.any(axis=1))[0])
    off = hs0.orbital_offsets
    n_uc, n_orb = hs0.n_atoms, hs0.n_orbitals
    shape = (len(pairs), n_uc, 3, n_orb, n_orb)
    dh, ds, d = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    start = 0
    for (kap, alpha), recs in records.items():
        for pair6, a, b, xh, xs in recs:
            p = inverse[start:start + len(pair6)]
            start += len(pair6)
            rows = off[a][:, None, None] + np.arange(xh.shape[1])[None, :, None]
            cols = off[b][:, None, None] + np.arange(xh.shape[2])[None, None, :]
            idx = (p[:, None, None], kap, alpha, rows, cols)
            np.add.at(dh, idx, xh)
            np.add.at(ds, idx, xs)
            # off-site D: the rows of dS on the displaced atom (kappa in cell 0)
            row_d = (a == kap) & ~pair6[:, :3].any(axis=1)
            row_d &= ~((b == kap) & ~pair6[:, 3:].any(axis=1))
            np.add.at(d, (p[row_d, None, None], kap, alpha, rows[row_d], cols[row_d]), xs[row_d])
    if onsite is not None:
        for kap, sym in enumerate(hs0.atoms.get_chemical_symbols()):
            blk = np.asarray(onsite(sym), dtype=np.float64)  # [3, n, n]
            d[home, kap, :, off[kap]:off[kap + 1], off[kap]:off[kap + 1]] = blk
    return pairs.reshape(-1, 2, 3).astype(np.int64), dh, ds, d


def displacement_records(provider: Provider, atoms: Atoms, n_box, delta: float, scheme: str,
                         displaced, prune: float) -> dict:
    """Displace the ``displaced`` atoms; return ``{(kappa, alpha): records}`` (:func:`_records`).

    Parameters
    ----------
    provider : callable
        ``provider(atoms) -> HSData`` (spinless H and S), called on the displaced supercells
        (and once on the undisplaced one with ``scheme="forward"``).
    atoms : ase.Atoms
        Primitive cell.
    n_box : int or tuple of int
        Box of 2 n_box + 1 cells per axis (:func:`box_size`).
    delta : float
        Displacement step, Angstrom.
    scheme : {"central", "forward"}
        Finite-difference scheme.
    displaced : iterable of int
        Primitive atoms kappa to displace (in cell 0) along x, y and z.
    prune : float
        Drop supercell blocks whose derivatives are all below this.

    Returns
    -------
    dict
        ``{(kappa, alpha): [(pair6 [m, 6], a [m], b [m], dH [m, ni, nj], dS [m, ni, nj]), ...]}``,
        one tuple per element pair, image weights applied.
    """
    sc, kappa, cell_of = supercell_map(atoms, n_box)
    base = provider(sc) if scheme == "forward" else None
    records = {}
    for kap in displaced:
        index = int(np.flatnonzero((kappa == kap) & ~cell_of.any(axis=1))[0])
        geometry = (atoms, n_box, kappa, cell_of, sc.positions[index])
        for alpha in range(3):
            plus = provider(_displaced(sc, index, alpha, delta))
            if base is None:
                ref, scale = provider(_displaced(sc, index, alpha, -delta)), 2.0 * delta
            else:
                ref, scale = base, delta
            records[kap, alpha] = _records(plus, ref, scale, geometry, prune)
    return records
