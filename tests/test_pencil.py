"""Upper-triangle pencils (issue 15): the same matrices as bloch_sparse, one shared pattern."""

from __future__ import annotations

import numpy as np
import pytest
from _solvers_utils import graphene_supercell, random_model

from ase_deeph import solvers
from ase_deeph.solvers.pencil import pencil_of, upper_pencil

KPTS = [(0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0), (0.1, 0.27, 0.33)]


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
@pytest.mark.parametrize("kpt", KPTS)
def test_pencil_equals_bloch_sparse(spin, kpt):
    hs = random_model(16, cutoff=5.0, density=0.1, seed=2, spin=spin)
    pen = pencil_of(hs, kpt)
    ref = solvers.bloch_sparse(hs, kpt)
    assert pen.real == ref.real
    for c, h in enumerate(ref.h):
        assert abs(pen.full("h", c) - h).max() < 1e-12
    assert abs(pen.full("s") - ref.s).max() < 1e-12
    x = np.random.default_rng(0).normal(size=pen.n)
    np.testing.assert_allclose(pen.operator("h") @ x, ref.h[0] @ x, atol=1e-12)
    diag = pen.indices[pen.indptr[:-1]]
    assert np.array_equal(diag, np.arange(pen.n))  # diagonal first in every row


def test_triangle_only_and_images():
    """Many images of one pair (a 2-atom cell with long-range blocks) add up in one slot."""
    hs = graphene_supercell(1, s_nn=0.1)
    pen = upper_pencil(hs, (0.2, 0.1, 0))
    assert pen.nnz == pen.n * (pen.n + 1) // 2
    full = pen.full("h").toarray()
    np.testing.assert_allclose(full, full.conj().T, atol=1e-14)


@pytest.mark.parametrize("spin", ["none", "spinor"])
def test_counts_and_states_match_dense(spin):
    hs = random_model(20, cutoff=5.0, density=0.1, seed=5, spin=spin)
    kpt = (1 / 3, 1 / 3, 0)
    dense = solvers.eigenvalues(hs, np.array([kpt]), ill_threshold=0.0)[0, 0]
    energy = float(np.median(dense)) + 1e-3
    assert solvers.count_states_below(hs, energy, kpt)[0] == int(np.sum(dense < energy))
    sol = solvers.solve_sparse(hs, kpt, sigma=energy, n_bands=6)
    nearest = np.sort(dense[np.argsort(np.abs(dense - energy))[:6]])
    np.testing.assert_allclose(sol.eigenvalues[0], nearest, atol=1e-8)


def test_predicted_twisted_bilayer_at_k():
    """148 atoms of the default model at K (complex): every backend counts as dense does,
    and shift-invert (PARDISO's solves where installed) finds the dense states.

    (At 244 atoms, 1x1-pivot complex PARDISO counted 1,112 states instead of 488: complex
    counts now go to SuperLU; ``benchmarks/sparse_backends.py --k k`` checks larger cells.)
    """
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.solvers import factor

    hs = ModelProvider.from_any("default")(twisted_bilayer_graphene(3, 4))
    kpt, energy = (1 / 3, 1 / 3, 0.0), 6.33
    dense = solvers.eigenvalues(hs, np.array([kpt]), ill_threshold=0.0)[0, 0]
    upper = upper_pencil(hs, kpt).shifted(energy)
    for name in factor.available_backends():
        assert factor.factorize_upper(upper, name).negatives == int(np.sum(dense < energy))
    sol = solvers.solve_sparse(hs, kpt, sigma=energy, n_bands=8)
    nearest = np.sort(dense[np.argsort(np.abs(dense - energy))[:8]])
    np.testing.assert_allclose(sol.eigenvalues[0], nearest, atol=1e-7)


@pytest.mark.parametrize("kpt", [(0, 0, 0), (1 / 3, 1 / 3, 0)])
def test_compact_data_gives_a_single_precision_pencil(kpt, monkeypatch):
    """float32 H and S (``examples/05 --compact``): a float32 / complex64 pencil, products
    in double precision a row block at a time, states as from the float64 pencil."""
    from ase_deeph.solvers import factor

    hs = random_model(20, cutoff=5.0, density=0.1, seed=5)
    small = hs.replace(h=hs.h.astype(np.float32), s=hs.s.astype(np.float32))
    pen, ref = upper_pencil(small, kpt), upper_pencil(hs, kpt)
    assert pen.s.dtype == (np.float32 if pen.real else np.complex64)
    monkeypatch.setattr(factor, "_MATVEC_CHUNK", 97)  # many row blocks
    x = np.random.default_rng(1).normal(size=(pen.n, 2)) + 1j * (not pen.real)
    for which in ("h", "s"):
        exact = ref.full(which) @ x
        assert (pen.operator(which) @ x).dtype == exact.dtype
        np.testing.assert_allclose(pen.operator(which) @ x, exact, atol=1e-5 * abs(exact).max())
    energy = 0.123
    sol = solvers.solve_sparse(small, kpt, sigma=energy, n_bands=6).eigenvalues
    np.testing.assert_allclose(sol, solvers.solve_sparse(hs, kpt, sigma=energy,
                                                         n_bands=6).eigenvalues, atol=2e-5)
    # a double-precision backend factorises the single-precision triangle in double
    fac = factor.factorize_upper(pen.shifted(energy), "superlu")
    assert fac.dtype in (np.float64, np.complex128)
