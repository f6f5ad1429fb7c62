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
pardiso    Intel MKL PARDISO (:mod:`.mkl_pardiso`, real symmetric (``mtype=-2``) and complex
           ctypes; extra ``ase-deeph[large]``)  Hermitian (``mtype=-4``) Bunch-Kaufman
                                                LDL^T, METIS ordering; inertia from
                                                ``iparm(22)/(23)`` for real matrices (MKL
                                                reports none for complex ones: counts at
                                                complex k go to superlu)
pardiso-   the same with a single-precision     half the factor memory; solves refined
single     factor                               once in double against A
pardiso-   the same with the factor in files       real and complex; for factors larger
ooc        (MKL's out-of-core mode)             than memory
pardiso-   single-precision factor in files     complex k of the largest cells (11,164
single-ooc                                      atoms: 12.9 GB in core, beyond 24 GB RAM)
cholmod    SuiteSparse CHOLMOD via ``cvxopt``   real and complex; simplicial LDL^T without
           (``pip install cvxopt``)             pivoting, AMD ordering; inertia from D
========== ==================================== ===========================================

``"auto"`` picks pardiso when MKL's ``libmkl_rt`` loads, else superlu; the
environment variable ``ASE_DEEPH_SPARSE_BACKEND`` overrides the default, and
``ASE_DEEPH_SPARSE_BACKEND_COMPLEX`` the default for complex matrices. Measurements
that chose the default: ``benchmarks/sparse_backends.py`` (table in ``docs/solvers.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = ["Factorization", "factorize", "factorize_upper", "upper_with_diagonal",
           "hermitian_matvec", "full_from_upper", "available_backends", "default_backend",
           "BACKENDS"]


@dataclass
class Factorization:
    """A factorised symmetric/Hermitian matrix.

    Attributes
    ----------
    negatives : int or None
        Negative pivots (the inertia count); None from a factorisation made for solves
        only (``inertia=False``) by a backend that cannot count.
    solve : callable
        ``solve(b) -> x`` with ``A x = b``, b of shape (n,) or (n, m).
    dtype : numpy dtype
        Scalar type of the solves.
    backend : str
        Which backend factorised it.
    size : int
        Matrix dimension.
    factor_entries : int or None
        Entries stored in the factor, where the backend reports them (SuperLU: L + U;
        PARDISO: L, the upper triangle being implied).
    """

    negatives: int | None
    solve: Callable[[np.ndarray], np.ndarray]
    dtype: np.dtype
    backend: str
    size: int
    factor_entries: int | None = None

    def operator(self) -> spla.LinearOperator:
        """Return the inverse as a ``LinearOperator`` (``OPinv`` of shift-invert ``eigsh``)."""
        n = self.size
        return spla.LinearOperator((n, n), matvec=self.solve, matmat=self.solve,
                                   dtype=self.dtype)


_MATVEC_CHUNK = 1 << 23  # stored entries per row block of a single-precision triangle


def _row_blocks(indptr: np.ndarray, chunk: int):
    """(first, last) rows of consecutive row blocks holding about ``chunk`` entries each."""
    cuts = np.unique(np.searchsorted(indptr, np.arange(0, indptr[-1], chunk), side="right") - 1)
    bounds = np.append(cuts, len(indptr) - 1)
    return zip(bounds[:-1], bounds[1:], strict=True)


def hermitian_matvec(upper: sp.csr_matrix, x: np.ndarray,
                     diag: np.ndarray | None = None) -> np.ndarray:
    """Multiply by the Hermitian matrix whose upper triangle (diagonal included) is ``upper``.

    In double precision. A single-precision triangle (the pencil of float32 data) is
    widened a row block (about ``_MATVEC_CHUNK`` entries) at a time, where SciPy would
    make a double copy of all of it on every call (a transient 1 GB and 1.75x the time on
    the 11,164-atom cell, ``benchmarks/hermitian_matvec.py``). ``diag`` (the real diagonal)
    may be passed to save its extraction.
    """
    if diag is None:
        diag = upper.diagonal().real
    d = diag[:, None] if x.ndim == 2 else diag
    herm = np.iscomplexobj(upper.data)  # U^H x = conj(U^T conj(x)): no conjugated copy of U
    wide = np.result_type(upper.dtype, np.float64)
    if upper.dtype == wide:  # double precision: SciPy's product on the whole triangle
        return upper @ x + ((upper.T @ x.conj()).conj() if herm else upper.T @ x) - d * x
    out = -d * x.astype(np.result_type(wide, x.dtype))
    for r0, r1 in _row_blocks(upper.indptr, _MATVEC_CHUNK):
        s, e = upper.indptr[r0], upper.indptr[r1]
        blk = sp.csr_matrix((upper.data[s:e].astype(wide, copy=False), upper.indices[s:e],
                             upper.indptr[r0:r1 + 1] - s), shape=(r1 - r0, upper.shape[1]))
        xb = x[r0:r1]
        out[r0:r1] += blk @ x
        out += (blk.T @ xb.conj()).conj() if herm else blk.T @ xb
    return out


def full_from_upper(upper: sp.csr_matrix) -> sp.csr_matrix:
    """Return the full Hermitian matrix of an upper triangle (a copy)."""
    return (upper + sp.triu(upper, k=1).conj().T).tocsr()


def _superlu(upper: sp.csr_matrix, inertia: bool = True) -> Factorization | None:
    """Symmetric-mode SuperLU; None if it pivoted off the diagonal or the matrix is singular."""
    try:
        lu = spla.splu(full_from_upper(upper).tocsc(), permc_spec="MMD_AT_PLUS_A",
                       diag_pivot_thresh=0.0, options={"SymmetricMode": True})
    except RuntimeError:  # exactly singular: E is an eigenvalue
        return None
    if not np.array_equal(lu.perm_r, lu.perm_c):
        return None
    negatives = int(np.count_nonzero(lu.U.diagonal().real < 0))
    return Factorization(negatives, lu.solve, lu.U.dtype, "superlu", upper.shape[0],
                         factor_entries=lu.L.nnz + lu.U.nnz)


def upper_with_diagonal(a: sp.spmatrix) -> sp.csr_matrix:
    """Upper triangle in CSR (sorted) with every diagonal entry stored and real.

    PARDISO's symmetric modes read the upper triangle only and need each diagonal
    position in the pattern (an empty row is taken as a singular matrix). When the
    pattern already holds the diagonal (H - E S always does), the triangle is the only
    copy made.
    """
    n = a.shape[0]
    upper = sp.triu(a, format="csr")
    upper.sort_indices()
    starts = upper.indptr[:-1]
    if np.all(np.diff(upper.indptr) > 0) and np.array_equal(upper.indices[starts], np.arange(n)):
        if np.iscomplexobj(upper.data):
            upper.data[starts] = upper.data[starts].real
        return upper
    strict = sp.triu(upper, k=1, format="coo")  # rebuild with the whole diagonal stored
    rows = np.concatenate([strict.row, np.arange(n)])
    cols = np.concatenate([strict.col, np.arange(n)])
    vals = np.concatenate([strict.data, upper.diagonal().real])
    upper = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    upper.sort_indices()
    return upper


def _pardiso(upper: sp.csr_matrix, inertia: bool = True, single: bool = False,
             out_of_core: bool = False) -> Factorization | None:
    """MKL PARDISO LDL^T of the upper triangle (:mod:`.mkl_pardiso`); None when singular.

    MKL reports no inertia for complex Hermitian matrices: a count at complex k is done by
    SuperLU instead (solves, as shift-invert needs, stay with PARDISO).
    """
    from ase_deeph.solvers.mkl_pardiso import MKLPardiso, SingularMatrix

    n = upper.shape[0]
    if inertia and np.iscomplexobj(upper.data):
        return _superlu(upper)
    try:
        fac = MKLPardiso(upper, single=single, out_of_core=out_of_core)
    except SingularMatrix:  # other failures (memory, files) are raised with their reason
        return None
    # E (nearly) on a level: the count is unreliable; solves alone (shift-invert) stay
    # usable, the refinement of the single-precision factor absorbing the perturbation
    if (inertia and fac.perturbed) or (fac.negatives is not None
                                       and fac.positives + fac.negatives != n):
        fac.release()
        return None
    name = "pardiso" + ("-single" if single else "") + ("-ooc" if out_of_core else "")
    return Factorization(fac.negatives, fac.solve, np.dtype(np.result_type(fac.dtype, np.float64)),
                         name, n,
                         factor_entries=fac.factor_entries)


def _pardiso_single(upper: sp.csr_matrix, inertia: bool = True, steps: int = 1,
                    out_of_core: bool = False) -> Factorization | None:
    """MKL PARDISO with a single-precision factor (half the memory), in core or in files.

    Solves are refined in double precision against the matrix itself
    (``x += A^-1 (b - A x)``, ``steps`` times), so shift-invert sees double-precision
    solves; the count comes from the single-precision pivots. One step is enough: on the
    508-atom twisted bilayer the 16 states nearest E_F differ from the double factor's by
    1.4e-2 / 3.9e-1 meV (Gamma / K) with no step, 1.3e-6 / 1.1e-4 meV with one and
    3e-11 / 4e-10 meV with three, which cost 1.5x / 1.8x the time of one (measured with
    ``benchmarks/single_refinement.py``, 2026-12-07; table in ``docs/solvers.md``).
    """
    fac = _pardiso(upper, inertia, single=True, out_of_core=out_of_core)
    if fac is None or fac.backend == "superlu":
        return fac
    solve32 = fac.solve
    diag = upper.diagonal().real

    def solve(b: np.ndarray) -> np.ndarray:
        x = solve32(b)
        for _ in range(steps):
            x = x + solve32(b - hermitian_matvec(upper, x, diag))
        return x

    fac.solve = solve
    return fac


def _pardiso_ooc(upper: sp.csr_matrix, inertia: bool = True) -> Factorization | None:
    """MKL PARDISO with the factor out of core (files; for factors larger than memory)."""
    return _pardiso(upper, inertia, out_of_core=True)


def _pardiso_single_ooc(upper: sp.csr_matrix, inertia: bool = True) -> Factorization | None:
    """Single-precision factor in files, refined solves (complex k of the largest cells)."""
    return _pardiso_single(upper, inertia, out_of_core=True)


def _cholmod(upper: sp.csr_matrix, inertia: bool = True) -> Factorization | None:
    """SuiteSparse CHOLMOD simplicial LDL^T / LDL^H via ``cvxopt`` (no pivoting, AMD order).

    CHOLMOD's supernodal factor is Cholesky only (positive definite); its simplicial LDL^T
    takes indefinite matrices without pivoting, like SuperLU's symmetric mode. The
    inertia is the sign count of D, read by solving ``D x = 1``.
    """
    from cvxopt import cholmod, matrix, spmatrix

    n = upper.shape[0]
    coo = upper.tocoo()  # the lower triangle is its conjugate transpose
    tc = "z" if np.iscomplexobj(coo.data) else "d"
    m = spmatrix(matrix(np.ascontiguousarray(coo.data.conj()), tc=tc),
                 matrix(coo.col.astype(np.int64)), matrix(coo.row.astype(np.int64)), (n, n))
    del coo
    saved = dict(cholmod.options)
    cholmod.options["supernodal"] = 0
    try:
        factor = cholmod.symbolic(m, uplo="L")
        cholmod.numeric(m, factor)
    except ArithmeticError:  # a zero pivot: E is (numerically) an eigenvalue
        return None
    finally:
        cholmod.options.clear()
        cholmod.options.update(saved)
    inv_d = matrix(1.0 if tc == "d" else 1.0 + 0j, (n, 1))
    cholmod.solve(factor, inv_d, sys=6)  # D x = 1
    negatives = int(np.count_nonzero(np.asarray(inv_d).real < 0))
    dtype = np.dtype(np.complex128 if tc == "z" else np.float64)

    def solve(b: np.ndarray) -> np.ndarray:
        b = np.asarray(b)
        if np.iscomplexobj(b) and tc == "d":
            return solve(b.real) + 1j * solve(b.imag)
        x = matrix(np.asfortranarray(b.reshape(n, -1), dtype=dtype), tc=tc)
        cholmod.solve(factor, x)
        return np.asarray(x).reshape(b.shape)

    return Factorization(negatives, solve, dtype, "cholmod", n)


#: backend name -> factorise(upper triangle, inertia needed) -> Factorization or None
BACKENDS: dict[str, Callable[[sp.csr_matrix], Factorization | None]] = {
    "superlu": _superlu, "pardiso": _pardiso, "pardiso-single": _pardiso_single,
    "pardiso-ooc": _pardiso_ooc, "pardiso-single-ooc": _pardiso_single_ooc,
    "cholmod": _cholmod,
}


def available_backends() -> list[str]:
    """Backends whose library imports here (superlu always)."""
    from ase_deeph.solvers.mkl_pardiso import mkl_available

    names = ["superlu"]
    if mkl_available():
        names += ["pardiso", "pardiso-single", "pardiso-ooc", "pardiso-single-ooc"]
    try:
        import cvxopt.cholmod  # noqa: F401

        names.append("cholmod")
    except ImportError:
        pass
    return names


def default_backend(complex_: bool = False) -> str:
    """Return the backend of ``factorize(..., backend="auto")``.

    ``ASE_DEEPH_SPARSE_BACKEND_COMPLEX`` for complex matrices when set (a complex factor
    takes twice the memory of a real one: e.g. ``pardiso-single-ooc`` at complex k beside
    an in-core ``pardiso-single`` at Gamma), else ``ASE_DEEPH_SPARSE_BACKEND``, else
    pardiso when available, else superlu.
    """
    env = (complex_ and os.environ.get("ASE_DEEPH_SPARSE_BACKEND_COMPLEX")) or \
        os.environ.get("ASE_DEEPH_SPARSE_BACKEND")
    if env:
        return env
    return "pardiso" if "pardiso" in available_backends() else "superlu"


def factorize(a: sp.spmatrix, backend: str = "auto",
              inertia: bool = True) -> Factorization | None:
    """Factorise the symmetric/Hermitian sparse matrix ``a`` (full storage).

    Returns None when ``a`` is (numerically) singular or the backend could not keep
    the factorisation symmetric (the caller nudges E and retries).

    Raises
    ------
    ValueError
        For an unknown backend or one whose library is missing.
    """
    return factorize_upper(upper_with_diagonal(a), backend, inertia)


def factorize_upper(upper: sp.csr_matrix, backend: str = "auto",
                    inertia: bool = True) -> Factorization | None:
    """Factorise a Hermitian matrix given by its upper triangle (sorted CSR, diagonal stored).

    The form :class:`~ase_deeph.solvers.pencil.UpperPencil` hands over: PARDISO reads it
    as it is; SuperLU and CHOLMOD build their own storage from it. ``inertia=False``
    (shift-invert solves only) lets a backend that cannot count (PARDISO at complex k)
    factorise anyway; ``negatives`` is then None.

    Raises
    ------
    ValueError
        For an unknown backend or one whose library is missing.
    """
    name = default_backend(np.iscomplexobj(upper.data)) if backend == "auto" else backend
    if name not in BACKENDS:
        raise ValueError(f"unknown sparse backend {name!r}; known: {sorted(BACKENDS)}")
    if name not in available_backends():
        need = "cvxopt" if name == "cholmod" else "'ase-deeph[large]' (MKL)"
        raise ValueError(f"sparse backend {name!r} needs its library: pip install {need}")
    if "single" not in name and upper.dtype in (np.float32, np.complex64):
        upper = upper.astype(np.result_type(upper.dtype, np.float64))  # a double factor
    return BACKENDS[name](upper, inertia)
