"""Bloch sums H(k), S(k) of an :class:`interfaces.hsdata.HSData`, dense and sparse.

Convention (``docs/conventions.md`` section 6.3)::

    H(k) = sum_R H(R) exp(+2 pi i k.R),   S(k) = sum_R S(R) exp(+2 pi i k.R)

with k in reduced (fractional) reciprocal coordinates and no intra-cell phase
("lattice" gauge).  Both matrices are symmetrised, ``X <- (X + X^dagger) / 2``.

Matrix layout: spinless orbitals in atom order (``hs.orbital_offsets``); spinor
data is spin-major, row ``a * n_orbitals + mu`` for spin ``a`` (0 up, 1 down),
and its overlap is ``kron(eye(2), S(k))``.

The index maps from flat block values to matrix positions are built once per
``HSData`` object (vectorised over :meth:`HSData.shape_groups`) and cached
weakly, so repeated k-points cost one scatter-add each.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from interfaces.hsdata import HSData

__all__ = [
    "BlochMatrices",
    "SparseBloch",
    "bloch_matrices",
    "bloch_sparse",
    "dense_positions",
    "matrix_dimension",
    "phases",
]

#: Largest number of float64 entries of the per-R dense stack before switching
#: to one scatter per k-point.
_DENSE_R_BUDGET = 2**25


@dataclass(frozen=True)
class BlochMatrices:
    """Dense Bloch matrices at many k-points.

    Attributes
    ----------
    kpts : ndarray, shape (nk, 3)
        Fractional k-points.
    h : ndarray or None, shape (n_channels, nk, n, n)
        H(k) in eV; ``n_channels`` is 2 for collinear data, else 1; ``n`` is
        ``n_orbitals`` (``2 * n_orbitals`` for spinors). Hermitian; complex128,
        or float64 (real symmetric) when every k-point has real phases (Gamma,
        zone-boundary TRIM points) and the data is not spinor.
    s : ndarray or None, shape (nk, n, n)
        S(k), dimensionless (spinor: ``kron(eye(2), S(k))``); same dtype rule.
    spin : str
        Spin kind of the source data.
    """

    kpts: np.ndarray
    h: np.ndarray | None
    s: np.ndarray | None
    spin: str


@dataclass(frozen=True)
class SparseBloch:
    """Sparse (CSR) Bloch matrices at one k-point.

    Attributes
    ----------
    kpt : ndarray, shape (3,)
        Fractional k-point.
    h : tuple of scipy.sparse.csr_matrix
        One (n, n) H(k) per spin channel, eV. float64 when k is time-reversal
        invariant (all phases real) and the data is not spinor, else complex128.
    s : scipy.sparse.csr_matrix or None
        (n, n) S(k) with the same dtype rule; spinor: ``kron(eye(2), S(k))``.
    real : bool
        Whether the matrices are real symmetric.
    """

    kpt: np.ndarray
    h: tuple
    s: sp.csr_matrix | None
    real: bool


@dataclass(frozen=True)
class _Layout:
    """Where every flat value lands: dense position (``lin``) or CSR slot (``pos``)."""

    n: int  # matrix dimension
    sizes: np.ndarray  # [n_edges] values per block
    lin: np.ndarray | None  # [n_vals] row * n + col (dense layouts only)
    pos: np.ndarray | None  # [n_vals] slot in the CSR data array (sparse layouts only)
    indices: np.ndarray | None  # [nnz] CSR column indices (int32 when possible)
    indptr: np.ndarray | None  # [n + 1] CSR row pointers


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_CHUNK_VALUES = 2**22  # values per vectorised chunk while building a layout


def matrix_dimension(hs: HSData) -> int:
    """Dimension of H(k): ``n_orbitals``, or ``2 * n_orbitals`` for spinor data."""
    return hs.n_orbitals * (2 if hs.spin == "spinor" else 1)


def phases(kpts: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Return ``exp(+2 pi i k.R)``, shape (nk, n_R), for fractional ``kpts`` (nk, 3)."""
    kpts = np.atleast_2d(np.asarray(kpts, dtype=np.float64))
    return np.exp(2j * np.pi * (kpts @ np.asarray(shifts, dtype=np.float64).T))


def _layout(hs: HSData, spinor: bool, sparse: bool) -> _Layout:
    per_hs = _CACHE.setdefault(hs, {})
    key = (spinor, sparse)
    if key not in per_hs:
        per_hs[key] = _build_sparse(hs, spinor) if sparse else _build_dense(hs, spinor)
    return per_hs[key]


def dense_positions(hs: HSData) -> np.ndarray:
    """Position ``row * n + col`` in the dense spinless H(k) of every flat value, [n_values]."""
    return _layout(hs, False, sparse=False).lin


def pair_row_offsets(pi: np.ndarray, pj: np.ndarray, norbs: np.ndarray,
                     n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Column layout of sorted atom pairs (i, j) in the rows of atom i.

    Returns each pair's first column inside its row, relative to the row's first pair
    [n_pairs], and the total width of each atom's pairs [n_atoms].
    """
    width = norbs[pj]  # [n_pairs] columns contributed by each pair
    total = np.bincount(pi, weights=width, minlength=n_atoms).astype(np.int64)  # [n_atoms]
    cum = np.cumsum(width) - width  # exclusive cumsum over all pairs
    first = np.searchsorted(pi, np.arange(n_atoms))  # first pair of each atom
    first_cum = np.where(first < len(pi), cum[np.minimum(first, len(pi) - 1)], 0)
    return cum - first_cum[pi], total


def _csr_frame(hs: HSData, f: int):
    """Pair bookkeeping: per edge the column offset inside its row, and CSR row pointers."""
    i, j = hs.edge_index
    norbs = hs.norbs
    upairs, pinv = np.unique(i * hs.n_atoms + j, return_inverse=True)  # sorted by (i, j)
    pi, pj = np.divmod(upairs, hs.n_atoms)
    offsets, half = pair_row_offsets(pi, pj, norbs, hs.n_atoms)
    colofs = offsets[pinv.reshape(-1)]  # [n_edges] offset within the row
    atom_of_orb = np.repeat(np.arange(hs.n_atoms), norbs)
    rowlen = np.tile(f * half[atom_of_orb], f)  # [f * n_orb]
    indptr = np.concatenate([[0], np.cumsum(rowlen)])
    return colofs, half, indptr


def _chunks(hs: HSData, spinor: bool):
    """Yield (edges, flat value indices, global rows, global cols, local col spin/index)."""
    f = 2 if spinor else 1
    n_orb, off = hs.n_orbitals, hs.orbital_offsets
    for group in hs.shape_groups():
        per_block = f * f * int(hs.norbs[hs.edge_index[0, group[0]]])
        per_block *= int(hs.norbs[hs.edge_index[1, group[0]]])
        n_split = max(1, -(-len(group) * per_block // _CHUNK_VALUES))
        for g in np.array_split(group, n_split):
            idx = hs.block_index(g, spinor=spinor)  # [n_sel, f*ni, f*nj]
            ni, nj = idx.shape[1] // f, idx.shape[2] // f
            a, r = np.divmod(np.arange(f * ni), ni)
            b, c = np.divmod(np.arange(f * nj), nj)
            ei, ej = hs.edge_index[0, g], hs.edge_index[1, g]
            grow = (a * n_orb)[None, :] + off[ei][:, None] + r[None, :]  # [n_sel, f*ni]
            gcol = (b * n_orb)[None, :] + off[ej][:, None] + c[None, :]  # [n_sel, f*nj]
            yield g, idx, grow, gcol, b, c


def _build_dense(hs: HSData, spinor: bool) -> _Layout:
    f = 2 if spinor else 1
    n = f * hs.n_orbitals
    sizes = f * f * np.diff(hs.block_ptr)
    lin = np.empty(int(sizes.sum()), dtype=np.int64)
    for _, idx, grow, gcol, _, _ in _chunks(hs, spinor):
        lin[idx] = grow[:, :, None] * n + gcol[:, None, :]
    return _Layout(n, sizes, lin, None, None, None)


def _build_sparse(hs: HSData, spinor: bool) -> _Layout:
    f = 2 if spinor else 1
    n = f * hs.n_orbitals
    sizes = f * f * np.diff(hs.block_ptr)
    colofs, half, indptr = _csr_frame(hs, f)
    nnz = int(indptr[-1])
    itype = np.int32 if max(nnz, n) < 2**31 - 1 else np.int64
    pos = np.empty(int(sizes.sum()), dtype=np.int64)
    indices = np.empty(nnz, dtype=itype)
    for g, idx, grow, gcol, b, c in _chunks(hs, spinor):
        ei = hs.edge_index[0, g]
        slot = b[None, :] * half[ei][:, None] + colofs[g][:, None] + c[None, :]  # [n_sel, f*nj]
        p = indptr[grow][:, :, None] + slot[:, None, :]
        pos[idx] = p
        indices[p] = np.broadcast_to(gcol[:, None, :], p.shape)
    return _Layout(n, sizes, None, pos, indices, indptr.astype(itype))


def _channels(hs: HSData, which: str) -> list[np.ndarray]:
    if which == "s":
        if hs.s is None:
            raise ValueError("this HSData holds no overlap S")
        return [hs.s]
    if hs.h is None:
        raise ValueError("this HSData holds no Hamiltonian H")
    return list(hs.h)


def _dense_one(values: np.ndarray, lay: _Layout, ph_vals: np.ndarray) -> np.ndarray:
    """One dense matrix from per-value phases (scatter-add); real if both inputs are real."""
    w = values * ph_vals
    n2 = lay.n * lay.n
    out = np.bincount(lay.lin, weights=w.real, minlength=n2)
    if np.iscomplexobj(w):
        out = out + 1j * np.bincount(lay.lin, weights=w.imag, minlength=n2)
    return out.reshape(lay.n, lay.n)


def _real_phases(ph: np.ndarray) -> bool:
    return bool(np.all(np.abs(ph.imag) < 1e-12))


def _dense_stack(hs: HSData, values: np.ndarray, lay: _Layout, kpts: np.ndarray) -> np.ndarray:
    """Dense X(k) for all k: (nk, n, n), not yet symmetrised (float64 if all phases are real)."""
    ushift, rinv = np.unique(hs.cell_shift, axis=0, return_inverse=True)
    rinv = rinv.reshape(-1)
    ph = phases(kpts, ushift)  # [nk, n_R]
    ph = ph.real if _real_phases(ph) else ph
    n2 = lay.n * lay.n
    if len(ushift) * n2 <= _DENSE_R_BUDGET:
        key = np.repeat(rinv, lay.sizes) * n2 + lay.lin
        if np.iscomplexobj(values):
            xr = np.bincount(key, values.real, len(ushift) * n2)
            xr = xr + 1j * np.bincount(key, values.imag, len(ushift) * n2)
        else:
            xr = np.bincount(key, values, len(ushift) * n2)
        return (ph @ xr.reshape(len(ushift), n2)).reshape(len(kpts), lay.n, lay.n)
    dtype = np.float64 if not (np.iscomplexobj(ph) or np.iscomplexobj(values)) else complex
    out = np.empty((len(kpts), lay.n, lay.n), dtype=dtype)
    for q in range(len(kpts)):
        out[q] = _dense_one(values, lay, np.repeat(ph[q][rinv], lay.sizes))
    return out


def _hermitize(x: np.ndarray) -> np.ndarray:
    xt = np.swapaxes(x, -1, -2)
    return 0.5 * (x + (np.conj(xt) if np.iscomplexobj(x) else xt))


def bloch_matrices(hs: HSData, kpts, which=("h", "s"), symmetrize: bool = True) -> BlochMatrices:
    """Dense H(k) and S(k) at many fractional k-points at once.

    Per unique lattice vector R the real-space matrices are assembled once and
    contracted with the phases ``exp(+2 pi i k.R)`` by one matrix product
    (falls back to one scatter per k when the per-R stack would be large).

    Parameters
    ----------
    hs : HSData
        Source data.
    kpts : array_like, shape (nk, 3) or (3,)
        Fractional k-points.
    which : sequence of {"h", "s"}
        Matrices to build.
    symmetrize : bool
        Apply ``X <- (X + X^dagger) / 2``.

    Returns
    -------
    BlochMatrices
        ``h`` shape (n_channels, nk, n, n), ``s`` shape (nk, n, n).
    """
    kpts = np.atleast_2d(np.asarray(kpts, dtype=np.float64))
    h = s = None
    if "h" in which:
        lay = _layout(hs, hs.spin == "spinor", sparse=False)
        h = np.stack([_dense_stack(hs, v, lay, kpts) for v in _channels(hs, "h")])
        h = _hermitize(h) if symmetrize else h
    if "s" in which:
        s = _dense_stack(hs, _channels(hs, "s")[0], _layout(hs, False, sparse=False), kpts)
        s = _hermitize(s) if symmetrize else s
        if hs.spin == "spinor":
            n = hs.n_orbitals
            s2 = np.zeros((len(kpts), 2 * n, 2 * n), dtype=s.dtype)
            s2[:, :n, :n] = s
            s2[:, n:, n:] = s
            s = s2
    return BlochMatrices(kpts=kpts, h=h, s=s, spin=hs.spin)


def _sparse_one(values: np.ndarray, lay: _Layout, ph_vals: np.ndarray, real: bool):
    nnz = len(lay.indices)
    w = values * ph_vals
    data = np.bincount(lay.pos, weights=w.real, minlength=nnz)
    if not real:
        data = data + 1j * np.bincount(lay.pos, weights=w.imag, minlength=nnz)
    return sp.csr_matrix((data, lay.indices, lay.indptr), shape=(lay.n, lay.n))


def _sym_sparse(x: sp.csr_matrix) -> sp.csr_matrix:
    out = (0.5 * (x + x.conj().T)).tocsr()
    out.sort_indices()
    return out


def bloch_sparse(hs: HSData, kpt, which=("h", "s"), symmetrize: bool = True) -> SparseBloch:
    """Sparse CSR H(k) and S(k) at one k-point, never forming a dense matrix.

    The CSR pattern (int32 indices when possible) and the slot of every block
    value are cached per ``HSData`` object; each call costs one weighted
    ``bincount`` over the flat values.

    Parameters
    ----------
    hs : HSData
        Source data.
    kpt : array_like, shape (3,)
        Fractional k-point.
    which : sequence of {"h", "s"}
        Matrices to build.
    symmetrize : bool
        Apply ``X <- (X + X^dagger) / 2``.

    Returns
    -------
    SparseBloch
        Real symmetric matrices when all phases are real and the data is not
        spinor (e.g. at Gamma or the zone-boundary TRIM points), else complex
        Hermitian.
    """
    kpt = np.asarray(kpt, dtype=np.float64).reshape(3)
    ph = phases(kpt[None], hs.cell_shift)[0]  # [n_edges]
    real_k = bool(np.all(np.abs(ph.imag) < 1e-12))
    if real_k:
        ph = ph.real
    real = real_k and hs.spin != "spinor"
    h_list: list = []
    s = None
    if "h" in which:
        lay = _layout(hs, hs.spin == "spinor", sparse=True)
        ph_vals = np.repeat(ph, lay.sizes)
        for v in _channels(hs, "h"):
            m = _sparse_one(v, lay, ph_vals, real)
            h_list.append(_sym_sparse(m) if symmetrize else m)
    if "s" in which:
        lay = _layout(hs, False, sparse=True)
        s = _sparse_one(_channels(hs, "s")[0], lay, np.repeat(ph, lay.sizes), real_k)
        s = _sym_sparse(s) if symmetrize else s
        if hs.spin == "spinor":
            s = sp.kron(sp.identity(2, format="csr"), s, format="csr").astype(np.complex128)
    return SparseBloch(kpt=kpt, h=tuple(h_list), s=s, real=real)
