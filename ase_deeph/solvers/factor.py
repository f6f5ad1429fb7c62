"""Sparse symmetric-indefinite factorisations with inertia: one interface, several backends.

Every large-cell solve reduces to factorising ``A = H(k) - E S(k)`` (real symmetric at
time-reversal-invariant k, complex Hermitian elsewhere) and reading two things from the
factor: the inertia (the number of negative pivots = the number of states below E, by
Sylvester's law, S being positive definite) and solves ``A x = b`` for shift-invert.

========== ==================================== ===========================================
backend    library                              matrices
========== ==================================== ===========================================
superlu    SciPy's SuperLU in symmetric mode    real and complex; always available
           (no row pivoting, ``U = D L^H``)
pardiso    Intel MKL PARDISO via ``pypardiso``  real symmetric (``mtype=-2``, Bunch-Kaufman
           (extra ``ase-deeph[large]``)         LDL^T, METIS ordering; inertia from
                                                ``iparm(22)/(23)``); complex k falls back
                                                to superlu
========== ==================================== ===========================================

``"auto"`` picks pardiso for real matrices when ``pypardiso`` imports, else superlu; the
environment variable ``ASE_DEEPH_SPARSE_BACKEND`` overrides the default. Measurements
that chose the default: ``benchmarks/sparse_backends.py`` (table in ``docs/solvers.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Factorization", "factorize", "available_backends", "default_backend", "BACKENDS"]


@dataclass
class Factorization:
    """A factorised symmetric/Hermitian matrix.

    Attributes
    ----------
    negatives : int
        Negative pivots (the inertia count).
    solve : callable
        ``solve(b) -> x`` with ``A x = b``, b of shape (n,) or (n, m).
    dtype : numpy dtype
        Scalar type of the solves.
    backend : str
        Which backend factorised it.
    size : int
        Matrix dimension.
    """

    negatives: int
    solve: Callable[[np.ndarray], np.ndarray]
    dtype: np.dtype
    backend: str
    size: int

    def operator(self) -> spla.LinearOperator:
        """Return the inverse as a ``LinearOperator`` (``OPinv`` of shift-invert ``eigsh``)."""
        n = self.size
        return spla.LinearOperator((n, n), matvec=self.solve, matmat=self.solve,
                                   dtype=self.dtype)


def _superlu(a: sp.spmatrix) -> Factorization | None:
    """Symmetric-mode SuperLU; None if it pivoted off the diagonal or the matrix is singular."""
    try:
        lu = spla.splu(a.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                       options={"SymmetricMode": True})
    except RuntimeError:  # exactly singular: E is an eigenvalue
        return None
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    negatives = int(np.count_nonzero(lu.U.diagonal().real < 0))
    return Factorization(negatives, lu.solve, lu.U.dtype, "superlu", a.shape[0])


def _upper_with_diagonal(a: sp.spmatrix) -> sp.csr_matrix:
    """Upper triangle in CSR with every diagonal entry stored (explicit zeros kept).

    PARDISO's symmetric modes read the upper triangle only and need each diagonal
    position in the pattern (an empty row is taken as a singular matrix).
    """
    strict = sp.triu(a, k=1, format="coo")
    n = a.shape[0]
    rows = np.concatenate([strict.row, np.arange(n)])
    cols = np.concatenate([strict.col, np.arange(n)])
    vals = np.concatenate([strict.data.real, a.diagonal().real]).astype(np.float64)
    upper = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    upper.sort_indices()
    return upper


def _pardiso(a: sp.spmatrix) -> Factorization | None:
    """MKL PARDISO real symmetric indefinite LDL^T (upper triangle); None on failure."""
    if np.iscomplexobj(a.data):
        return _superlu(a)  # pypardiso is real-only
    import pypardiso

    solver = pypardiso.PyPardisoSolver(mtype=-2)
    solver.set_statistical_info_off()
    upper = _upper_with_diagonal(a)
    try:
        solver.factorize(upper)
    except pypardiso.pardiso_wrapper.PyPardisoError:
        return None
    positives, negatives = int(solver.iparm[21]), int(solver.iparm[22])
    perturbed = int(solver.iparm[13])  # tiny pivots PARDISO replaced: their sign is arbitrary
    if positives + negatives != a.shape[0] or perturbed:  # E (nearly) on an eigenvalue
        solver.free_memory(everything=True)
        return None

    def solve(b: np.ndarray) -> np.ndarray:
        return solver.solve(upper, np.asarray(b, dtype=np.float64))

    return Factorization(negatives, solve, np.dtype(np.float64), "pardiso", a.shape[0])


#: backend name -> factorise(a) -> Factorization or None
BACKENDS: dict[str, Callable[[sp.spmatrix], Factorization | None]] = {
    "superlu": _superlu, "pardiso": _pardiso,
}


def available_backends() -> list[str]:
    """Backends whose library imports here (superlu always)."""
    names = ["superlu"]
    try:
        import pypardiso  # noqa: F401

        names.append("pardiso")
    except (ImportError, OSError):  # OSError: MKL shared library missing
        pass
    return names


def default_backend() -> str:
    """``ASE_DEEPH_SPARSE_BACKEND`` if set, else pardiso when available, else superlu."""
    env = os.environ.get("ASE_DEEPH_SPARSE_BACKEND")
    if env:
        return env
    return "pardiso" if "pardiso" in available_backends() else "superlu"


def factorize(a: sp.spmatrix, backend: str = "auto") -> Factorization | None:
    """Factorise the symmetric/Hermitian sparse matrix ``a``.

    Returns None when ``a`` is (numerically) singular or the backend could not keep
    the factorisation symmetric (the caller nudges E and retries).

    Raises
    ------
    ValueError
        For an unknown backend or one whose library is missing.
    """
    name = default_backend() if backend == "auto" else backend
    if name not in BACKENDS:
        raise ValueError(f"unknown sparse backend {name!r}; known: {sorted(BACKENDS)}")
    if name not in available_backends():
        raise ValueError(f"sparse backend {name!r} needs its library: pip install "
                         "'ase-deeph[large]' (pypardiso)")
    return BACKENDS[name](a)
