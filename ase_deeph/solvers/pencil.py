"""The pencil (H(k), S(k)) of a large cell as upper triangles sharing one sparse pattern.

At 10^4 atoms and more the matrices, not the factor, decide whether a solve fits in
memory. :func:`upper_pencil` builds ``H(k)`` and ``S(k)`` straight from the blocks, upper
triangle only (what symmetric/Hermitian factorisations read), with one CSR pattern
(32-bit indices) shared by H, S and every ``H - E S``:

* blocks (i, j, R) with atom i < j fill whole blocks of the triangle; blocks (i, i, R)
  fill their upper part (on-site and self-images); blocks with i > j are the
  transposes that ``H_ji(-R) = H_ij(R)^dagger`` already implies and are not read;
* values are accumulated edge chunk by edge chunk (bounded temporaries), never a full
  H(k), a copy of it for Hermitisation, or a per-value index array;
* matrix-vector products of the full Hermitian matrices come from the triangle
  (``U x + U^H x - diag(U) x``), for shift-invert Lanczos.

Spinor data takes the general route (:func:`pencil_of`: the full matrices of
:func:`~.bloch.bloch_sparse`, then their upper triangles on one pattern).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ase_deeph.solvers.bloch import bloch_sparse, pair_row_offsets, phases
from ase_deeph.solvers.factor import full_from_upper, hermitian_matvec, upper_with_diagonal
from interfaces.hsdata import HSData, value_dtype

__all__ = ["UpperPencil", "upper_pencil", "pencil_of"]

_CHUNK_VALUES = 2**22  # block values per vectorised chunk


@dataclass(frozen=True)
class UpperPencil:
    """Upper triangles of H(k) (per spin channel) and S(k) on one CSR pattern.

    Attributes
    ----------
    kpt : ndarray, shape (3,)
        Fractional k-point.
    n : int
        Matrix dimension (orbitals).
    indptr : ndarray, shape (n + 1,)
        CSR row pointers of the upper triangle (diagonal stored first in each row).
    indices : ndarray, shape (nnz,)
        Column indices, int32 when they fit.
    h : tuple of ndarray, each shape (nnz,)
        H(k) values per spin channel, eV (float64 when k is time-reversal invariant,
        else complex128; float32 / complex64 when H and S are stored in float32, the
        ``--compact`` form of the largest cells: products with them are still taken in
        double precision, :func:`~.factor.hermitian_matvec`).
    s : ndarray, shape (nnz,)
        S(k) values.
    """

    kpt: np.ndarray
    n: int
    indptr: np.ndarray
    indices: np.ndarray
    h: tuple
    s: np.ndarray

    @property
    def real(self) -> bool:
        """True when the matrices are real symmetric."""
        return not np.iscomplexobj(self.s)

    @property
    def nnz(self) -> int:
        """Stored entries of one triangle."""
        return len(self.indices)

    def upper(self, data: np.ndarray) -> sp.csr_matrix:
        """CSR upper triangle with ``data`` on the shared pattern (no copy of it)."""
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(self.n, self.n),
                             copy=False)

    def shifted(self, energy: float, channel: int = 0) -> sp.csr_matrix:
        """Upper triangle of ``H - energy S`` (one new value array)."""
        data = self.h[channel] - energy * self.s
        return self.upper(data)

    def operator(self, which: str, channel: int = 0) -> spla.LinearOperator:
        """Full Hermitian ``H`` (``which="h"``) or ``S`` as a LinearOperator."""
        upper = self.upper(self.h[channel] if which == "h" else self.s)
        dtype = np.result_type(upper.dtype, np.float64)  # products in double precision
        diag = upper.data[self.indptr[:-1]].real  # stored first in every row

        def mv(x):
            return hermitian_matvec(upper, x, diag)

        return spla.LinearOperator((self.n, self.n), matvec=mv, matmat=mv, dtype=dtype)

    def full(self, which: str, channel: int = 0) -> sp.csr_matrix:
        """Full CSR matrix (a copy; for checks and small cells)."""
        return full_from_upper(self.upper(self.h[channel] if which == "h" else self.s))


def _pattern(hs: HSData, norbs: np.ndarray, off: np.ndarray):
    """Row pointers, column indices and the in-row offset of every atom pair (i < j)."""
    n_atoms = hs.n_atoms
    i, j = hs.edge_index
    keep = i < j
    keys = np.unique(i[keep] * n_atoms + j[keep])  # sorted (i, j), i < j
    pi, pj = np.divmod(keys, n_atoms)
    pair_ofs, off_width = pair_row_offsets(pi, pj, norbs, n_atoms)  # columns after the diagonal
    atom = np.repeat(np.arange(n_atoms), norbs)  # [n]
    r = np.arange(len(atom)) - off[atom]
    rowlen = (norbs[atom] - r) + off_width[atom]
    indptr = np.concatenate([[0], np.cumsum(rowlen)])
    nnz = int(indptr[-1])
    itype = np.int32 if max(nnz, len(atom)) < 2**31 - 1 else np.int64
    indices = np.empty(nnz, dtype=itype)
    for el_n in np.unique(norbs):  # diagonal blocks, upper part, one element size at a time
        atoms_n = np.flatnonzero(norbs == el_n)
        rr, cc = np.triu_indices(el_n)
        p = indptr[off[atoms_n][:, None] + rr[None, :]] + (cc - rr)[None, :]
        indices[p] = off[atoms_n][:, None] + cc[None, :]
    for sel in _pair_chunks(norbs[pi] * norbs[pj]):
        for ni in np.unique(norbs[pi[sel]]):
            for nj in np.unique(norbs[pj[sel]]):
                g = sel[(norbs[pi[sel]] == ni) & (norbs[pj[sel]] == nj)]
                if len(g):
                    rows = off[pi[g]][:, None] + np.arange(ni)[None, :]  # [n_g, ni]
                    start = indptr[rows] + (ni - np.arange(ni))[None, :] + pair_ofs[g][:, None]
                    p = start[:, :, None] + np.arange(nj)[None, None, :]
                    indices[p] = (off[pj[g]][:, None] + np.arange(nj)[None, :])[:, None, :]
    return indptr.astype(itype), indices, keys, pair_ofs


def _pair_chunks(sizes: np.ndarray):
    """Index arrays of consecutive items whose ``sizes`` sum to about one chunk."""
    labels = np.cumsum(sizes) // _CHUNK_VALUES
    yield from np.split(np.arange(len(sizes)), np.flatnonzero(np.diff(labels)) + 1)


def upper_pencil(hs: HSData, kpt, channels=None) -> UpperPencil:
    """Upper triangles of H(k) and S(k) of spinless or collinear data at one k-point.

    Parameters
    ----------
    hs : HSData
        Data with S and H (``spin`` "none" or "collinear"); without H only S is built.
    kpt : array_like, shape (3,)
        Fractional k-point.
    channels : sequence of int, optional
        Spin channels of H to build (default all).

    Returns
    -------
    UpperPencil
        Real when every Bloch phase is real (Gamma and the other time-reversal-invariant
        points), else complex Hermitian.
    """
    if hs.spin == "spinor":
        raise NotImplementedError("spinor data: use pencil_of")
    if hs.s is None:
        raise ValueError("the pencil needs S")
    kpt = np.asarray(kpt, dtype=np.float64).reshape(3)
    ph = phases(kpt[None], hs.cell_shift)[0]  # [n_edges]
    real = bool(np.all(np.abs(ph.imag) < 1e-12))
    norbs, off = hs.norbs, hs.orbital_offsets
    indptr, indices, keys, pair_ofs = _pattern(hs, norbs, off)
    if hs.h is None:  # S alone (e.g. the overlap's own inertia)
        channels = ()
    channels = range(len(hs.h)) if channels is None else channels
    sources = [hs.h[c] for c in channels] + [hs.s]
    single = all(src.dtype == np.float32 for src in sources)  # compact data: compact pencil
    dtype = value_dtype(not real, single)
    out = [np.zeros(len(indices), dtype=dtype) for _ in sources]
    i, j = hs.edge_index
    for g in _edge_chunks(hs, i <= j):
        ni, nj = int(norbs[i[g[0]]]), int(norbs[j[g[0]]])
        rr, cc = np.meshgrid(np.arange(ni), np.arange(nj), indexing="ij")
        if i[g[0]] == j[g[0]]:  # on-site and self-image blocks: the upper part
            mask = (cc >= rr).ravel()
            p = indptr[off[i[g]][:, None] + rr.ravel()[mask]] + (cc - rr).ravel()[mask]
        else:
            pair = np.searchsorted(keys, i[g] * hs.n_atoms + j[g])
            start = indptr[off[i[g]][:, None] + rr.ravel()] + (ni - rr.ravel())
            p = start + pair_ofs[pair][:, None] + cc.ravel()
            mask = slice(None)
        vals_idx = hs.block_ptr[g][:, None] + np.arange(ni * nj)[None, :]
        w = ph[g].real if real else ph[g]
        for dst, src in zip(out, sources, strict=True):
            np.add.at(dst, p.ravel(), (src[vals_idx][:, mask] * w[:, None]).ravel())
    if not real:  # the diagonal of a Hermitian matrix is real (exactly, for the factors)
        for dst in out:
            dst[indptr[:-1]] = dst[indptr[:-1]].real
    return UpperPencil(kpt, len(indptr) - 1, indptr, indices, tuple(out[:-1]), out[-1])


def _edge_chunks(hs: HSData, keep: np.ndarray):
    """Edge index arrays of one shape and one kind (i == j or i < j), chunk sized."""
    i, j = hs.edge_index
    for group in hs.shape_groups():
        group = group[keep[group]]
        for same in (group[i[group] == j[group]], group[i[group] != j[group]]):
            if len(same):
                per = int(hs.norbs[i[same[0]]] * hs.norbs[j[same[0]]])
                yield from np.array_split(same, max(1, -(-len(same) * per // _CHUNK_VALUES)))


def pencil_of(hs: HSData, kpt) -> UpperPencil:
    """Build the pencil at ``kpt`` (every spin kind).

    :func:`upper_pencil` for spinless and collinear data; for spinor data the upper
    triangles of :func:`~.bloch.bloch_sparse`'s full matrices, moved onto one pattern.
    """
    if hs.spin != "spinor":
        return upper_pencil(hs, kpt)
    sb = bloch_sparse(hs, kpt)
    uppers = [upper_with_diagonal(m) for m in (*sb.h, sb.s)]
    n = uppers[0].shape[0]
    keys = [np.repeat(np.arange(n, dtype=np.int64), np.diff(u.indptr)) * n + u.indices
            for u in uppers]
    union = np.unique(np.concatenate(keys))  # sorted row-major: a canonical CSR pattern
    rows, cols = np.divmod(union, n)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    data = []
    for u, k in zip(uppers, keys, strict=True):
        d = np.zeros(len(union), dtype=u.dtype)
        d[np.searchsorted(union, k)] = u.data
        data.append(d)
    return UpperPencil(np.asarray(kpt, float).reshape(3), n, indptr, cols.astype(np.int32),
                       tuple(data[:-1]), data[-1])
