"""Dense generalised eigenproblem H(k) C = e S(k) C at many k-points.

The overlap is diagonalised first (``S = U s U^dagger``, batched over k) which
gives min eig S(k) for free; the problem is then reduced with the canonical
orthogonalisation ``X = U s^{-1/2}`` to the ordinary Hermitian problem
``(X^dagger H X) Y = e Y`` and ``C = X Y`` (so ``C^dagger S C = 1``).

Ill-conditioned overlaps (DeepH-pack ``ill_project``): at a k-point where
``min eig S(k) < ill_threshold`` the S eigenvectors below the threshold are
dropped from X.  That k-point then has fewer bands; the missing ones are NaN
and sit at the top of the band list (``np.sort`` order).  The number of dropped
directions per k is stored in the result, and a :class:`RuntimeWarning` is
issued.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ase_deeph.solvers.bloch import bloch_matrices, matrix_dimension
from interfaces.hsdata import HSData

__all__ = ["Solution", "eigenvalues", "solve", "spin_degeneracy"]

#: Default threshold on the eigenvalues of S(k) below which directions are dropped.
ILL_THRESHOLD = 1e-6
_CHUNK_BYTES = 2**28


@dataclass(frozen=True)
class Solution:
    """Eigenpairs at a set of k-points.

    Attributes
    ----------
    kpts : ndarray, shape (nk, 3)
        Fractional k-points.
    eigenvalues : ndarray, shape (nspins, nk, nbands)
        Band energies in eV, ascending. ``nspins`` is 2 for collinear data and
        1 otherwise; ``nbands`` is ``n_orbitals`` (``2 * n_orbitals`` for
        spinors). Bands lost to ill-conditioning are NaN (at the end).
    eigenvectors : ndarray or None, shape (nspins, nk, n, nbands)
        Column ``[..., :, b]`` is the S-orthonormal coefficient vector of band
        b (``C^dagger S(k) C = 1``); zero columns for dropped bands. complex128.
    min_overlap_eig : ndarray, shape (nk,)
        Smallest eigenvalue of S(k) (dimensionless).
    n_dropped : ndarray, shape (nk,), int
        Number of S directions projected out at each k.
    spin : str
        Spin kind of the data.
    ill_threshold : float
        Threshold used on eig S(k).
    """

    kpts: np.ndarray
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None
    min_overlap_eig: np.ndarray
    n_dropped: np.ndarray
    spin: str
    ill_threshold: float

    @property
    def spin_degeneracy(self) -> int:
        """Electrons per state: 2 for spinless data, 1 for collinear and spinor data."""
        return 2 if self.spin == "none" else 1


def spin_degeneracy(spin: str) -> int:
    """Electrons per band state: 2 for spin ``"none"``, 1 for ``"collinear"``/``"spinor"``."""
    return 2 if spin == "none" else 1


def _reduce(h: np.ndarray, x: np.ndarray, vectors: bool):
    """Solve (X^H H X) Y = e Y for a batch; returns e and C = X Y (or None)."""
    hp = np.conj(np.swapaxes(x, -1, -2)) @ h @ x
    hp = 0.5 * (hp + np.conj(np.swapaxes(hp, -1, -2)))
    if not vectors:
        return np.linalg.eigvalsh(hp), None
    e, y = np.linalg.eigh(hp)
    return e, x @ y


def _solve_chunk(h, s, thr: float, vectors: bool):
    """Eigenpairs for one chunk: h (nc, nkc, n, n), s (nkc, n, n)."""
    nc, nkc, n, _ = h.shape
    sval, u = np.linalg.eigh(s)  # [nkc, n], [nkc, n, n]
    keep = sval >= thr  # [nkc, n]
    evals = np.full((nc, nkc, n), np.nan)
    evecs = np.zeros((nc, nkc, n, n), dtype=np.complex128) if vectors else None
    good = np.all(keep, axis=1)
    if np.any(good):
        x = u[good] / np.sqrt(sval[good])[:, None, :]
        for c in range(nc):
            e, cv = _reduce(h[c, good], x, vectors)
            evals[c, good] = e
            if vectors:
                evecs[c, good] = cv
    for q in np.flatnonzero(~good):
        x = u[q][:, keep[q]] / np.sqrt(sval[q, keep[q]])[None, :]
        m = x.shape[1]
        for c in range(nc):
            e, cv = _reduce(h[c, q], x, vectors)
            evals[c, q, :m] = e
            if vectors:
                evecs[c, q, :, :m] = cv
    return evals, evecs, sval[:, 0], n - keep.sum(axis=1)


def solve(
    hs: HSData,
    kpts,
    return_vectors: bool = False,
    ill_threshold: float = ILL_THRESHOLD,
) -> Solution:
    """Solve H(k) C = e S(k) C at fractional k-points (dense, numpy/LAPACK).

    Parameters
    ----------
    hs : HSData
        Data with H and S.
    kpts : array_like, shape (nk, 3) or (3,)
        Fractional k-points.
    return_vectors : bool
        Also return S-orthonormal eigenvectors.
    ill_threshold : float
        Drop S(k) eigen-directions with eigenvalue below this (DeepH-pack uses
        5e-4 with ``ill_project``); the default only removes numerically
        singular directions.

    Returns
    -------
    Solution
        Sorted eigenvalues (nspins, nk, nbands) in eV and diagnostics.
    """
    kpts = np.atleast_2d(np.asarray(kpts, dtype=np.float64))
    n = matrix_dimension(hs)
    nc = hs.n_spin_channels
    chunk = max(1, int(_CHUNK_BYTES // (16 * n * n * (nc + 3))))
    parts = []
    for start in range(0, len(kpts), chunk):
        bm = bloch_matrices(hs, kpts[start:start + chunk])
        parts.append(_solve_chunk(bm.h, bm.s, ill_threshold, return_vectors))
    evals = np.concatenate([p[0] for p in parts], axis=1)
    evecs = np.concatenate([p[1] for p in parts], axis=1) if return_vectors else None
    min_s = np.concatenate([p[2] for p in parts])
    dropped = np.concatenate([p[3] for p in parts]).astype(np.int64)
    if np.any(dropped):
        warnings.warn(
            f"S(k) is ill-conditioned at {np.count_nonzero(dropped)} of {len(kpts)} k-points "
            f"(min eig S = {min_s.min():.3g} < {ill_threshold:g}); projected out up to "
            f"{dropped.max()} direction(s) per k, the missing bands are NaN",
            RuntimeWarning,
            stacklevel=2,
        )
    return Solution(kpts, evals, evecs, min_s, dropped, hs.spin, float(ill_threshold))


def eigenvalues(hs: HSData, kpts, ill_threshold: float = ILL_THRESHOLD) -> np.ndarray:
    """Band energies in eV, shape (nspins, nk, nbands), ascending; see :func:`solve`."""
    return solve(hs, kpts, ill_threshold=ill_threshold).eigenvalues
