"""Sparse factorisation backends (issue 15): inertia equals the dense count, selection, fallback."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from ase_deeph.solvers import factor


def _matrix(n: int = 60, complex_: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.1, random_state=seed, format="csr")
    if complex_:
        a = a + 1j * sp.random(n, n, density=0.1, random_state=seed + 1, format="csr")
    a = a + a.conj().T + sp.diags(rng.normal(size=n))
    return a.tocsr()


def _banded(n: int = 120, complex_: bool = False, seed: int = 0):
    """A Hamiltonian-like H - E S: a dominant diagonal of both signs, weaker couplings."""
    rng = np.random.default_rng(seed)
    a = sp.random(n, n, density=0.08, random_state=seed, format="csr") * 0.3
    if complex_:
        a = a + 0.3j * sp.random(n, n, density=0.08, random_state=seed + 1, format="csr")
    return (a + a.conj().T + sp.diags(rng.uniform(-3, 3, size=n))).tocsr()


# [backend, matrix maker, solve tolerance]: the 1x1-pivot LDL^H of complex PARDISO and the
# single-precision factor need a matrix with some diagonal weight (as H - E S has)
CASES = [("superlu", _matrix, 1e-8)] + [
    (name, _banded, 1e-8)
    for name in factor.available_backends() if name != "superlu"]


@pytest.mark.parametrize(("backend", "make", "tol"), CASES)
@pytest.mark.parametrize("complex_", [False, True])
def test_inertia_and_solve_match_dense(backend, make, tol, complex_):
    a = make(complex_=complex_)
    dense = a.toarray()
    fac = factor.factorize(a, backend)
    counted_by = "superlu" if complex_ and backend.startswith("pardiso") else backend
    assert fac is not None and fac.backend == counted_by  # MKL counts real matrices only
    assert fac.negatives == int(np.count_nonzero(np.linalg.eigvalsh(dense) < 0))
    b = np.arange(a.shape[0], dtype=float)
    np.testing.assert_allclose(dense @ fac.solve(b), b, atol=tol * np.abs(b).max())


def test_pardiso_tested_where_installed():
    """Name the state: the MKL backend is optional (ase-deeph[large])."""
    from ase_deeph.solvers.mkl_pardiso import mkl_available

    if not mkl_available():
        pytest.skip("MKL (libmkl_rt) not installed here: the pardiso backends are covered "
                    "where 'ase-deeph[large]' is installed")
    assert {"pardiso", "pardiso-single"} <= set(factor.available_backends())
    for complex_ in (False, True):
        a = _banded(150, complex_=complex_, seed=3)
        counts = {name: factor.factorize(a, name).negatives
                  for name in ("superlu", "pardiso", "pardiso-single")}
        assert len(set(counts.values())) == 1, counts
        assert factor.factorize(a, "pardiso").factor_entries > 0
    # complex k, solves only (shift-invert): PARDISO itself, no count
    a = _banded(150, complex_=True, seed=5)
    for name in ("pardiso", "pardiso-single"):
        fac = factor.factorize(a, name, inertia=False)
        assert fac.backend == name and fac.negatives is None
        b = np.arange(150.0)
        np.testing.assert_allclose(a @ fac.solve(b), b, atol=1e-8 * 150)


def test_upper_triangle_keeps_one_copy_and_the_diagonal():
    a = _matrix(40, complex_=True)
    upper = factor.upper_with_diagonal(a)
    assert upper.nnz == sp.triu(a).nnz and np.all(upper.diagonal().imag == 0)
    holes = sp.csr_matrix(np.diag([0.0, 2.0, 0.0]) + np.eye(3, k=1))
    upper = factor.upper_with_diagonal(holes)
    assert upper.nnz == 5 and np.array_equal(upper.indices[upper.indptr[:-1]], np.arange(3))


def test_singular_matrix_gives_none():
    a = sp.csr_matrix(np.diag([1.0, 0.0, -1.0]))
    for name in factor.available_backends():
        assert factor.factorize(a, name) is None


def test_selection_and_fallback(monkeypatch):
    monkeypatch.delenv("ASE_DEEPH_SPARSE_BACKEND", raising=False)
    monkeypatch.setattr(factor, "available_backends", lambda: ["superlu"])
    assert factor.default_backend() == "superlu"
    assert factor.factorize(_matrix(), "auto").backend == "superlu"
    with pytest.raises(ValueError, match="ase-deeph\\[large\\]"):
        factor.factorize(_matrix(), "pardiso")
    with pytest.raises(ValueError, match="pip install cvxopt"):
        factor.factorize(_matrix(), "cholmod")
    with pytest.raises(ValueError, match="unknown sparse backend"):
        factor.factorize(_matrix(), "magic")
    monkeypatch.setenv("ASE_DEEPH_SPARSE_BACKEND", "superlu")
    monkeypatch.setattr(factor, "available_backends", lambda: ["superlu", "pardiso"])
    assert factor.default_backend() == "superlu"
    # complex matrices may have a backend of their own (twice the memory of real ones)
    monkeypatch.setenv("ASE_DEEPH_SPARSE_BACKEND_COMPLEX", "pardiso")
    assert factor.default_backend(complex_=True) == "pardiso"
    assert factor.default_backend(complex_=False) == "superlu"
    monkeypatch.setenv("ASE_DEEPH_SPARSE_BACKEND_COMPLEX", "magic")
    assert factor.factorize(_matrix(), "auto").backend == "superlu"  # real: unaffected
    with pytest.raises(ValueError, match="unknown sparse backend 'magic'"):
        factor.factorize(_matrix(complex_=True), "auto")


def test_cholmod_tested_where_installed():
    """Name the state: the CHOLMOD backend is optional (cvxopt)."""
    if "cholmod" not in factor.available_backends():
        pytest.skip("cvxopt not installed here: the cholmod backend is covered where it is")
    for complex_ in (False, True):
        a = _banded(150, complex_=complex_, seed=4)
        assert factor.factorize(a, "cholmod").negatives == factor.factorize(a, "superlu").negatives


def test_out_of_core_factor_cleans_its_files():
    if "pardiso-ooc" not in factor.available_backends():
        pytest.skip("MKL not installed here: pardiso-ooc is covered where it is")
    import gc
    import glob
    import tempfile

    pattern = f"{tempfile.gettempdir()}/ase_deeph_pardiso_*"
    before = set(glob.glob(pattern))
    for name in ("pardiso-ooc", "pardiso-single-ooc"):
        fac = factor.factorize(_banded(200, complex_=True, seed=6), name, inertia=False)
        assert fac.backend == name and set(glob.glob(pattern)) - before
        del fac
        gc.collect()
        assert set(glob.glob(pattern)) == before


def test_pardiso_failures_other_than_singular_are_raised(monkeypatch):
    """A singular matrix gives None (E is nudged); memory or file errors say what failed."""
    if "pardiso" not in factor.available_backends():
        pytest.skip("MKL not installed here: the pardiso backends are covered where it is")
    from ase_deeph.solvers import mkl_pardiso

    assert factor.factorize(sp.csr_matrix(np.diag([1.0, 0.0, -1.0])), "pardiso") is None

    def fail(self, phase, b, x, nrhs):
        raise RuntimeError(f"MKL PARDISO phase {phase} failed with error -9: "
                           f"{mkl_pardiso.ERRORS[-9]}")

    monkeypatch.setattr(mkl_pardiso.MKLPardiso, "_call", fail)
    with pytest.raises(RuntimeError, match="MKL_PARDISO_OOC_MAX_CORE_SIZE"):
        factor.factorize(_banded(50), "pardiso-single-ooc", inertia=False)
