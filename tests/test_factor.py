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


@pytest.mark.parametrize("backend", factor.available_backends())
@pytest.mark.parametrize("complex_", [False, True])
def test_inertia_and_solve_match_dense(backend, complex_):
    a = _matrix(complex_=complex_)
    dense = a.toarray()
    fac = factor.factorize(a, backend)
    assert fac is not None
    assert fac.negatives == int(np.count_nonzero(np.linalg.eigvalsh(dense) < 0))
    b = np.arange(a.shape[0], dtype=float)
    np.testing.assert_allclose(dense @ fac.solve(b), b, atol=1e-8 * np.abs(b).max())


def test_pardiso_tested_where_installed():
    """Name the state: the MKL backend is optional (ase-deeph[large])."""
    try:
        import pypardiso  # noqa: F401
    except ImportError:
        pytest.skip("pypardiso not installed here: the pardiso backend is covered where "
                    "'ase-deeph[large]' is installed")
    assert "pardiso" in factor.available_backends()
    a = _matrix(80, seed=3)
    assert factor.factorize(a, "pardiso").negatives == factor.factorize(a, "superlu").negatives


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
    with pytest.raises(ValueError, match="unknown sparse backend"):
        factor.factorize(_matrix(), "magic")
    monkeypatch.setenv("ASE_DEEPH_SPARSE_BACKEND", "superlu")
    monkeypatch.setattr(factor, "available_backends", lambda: ["superlu", "pardiso"])
    assert factor.default_backend() == "superlu"
