"""Bands near E_F along a path, sparse and resumable (issue 15 item 2); E_F from a guess."""

from __future__ import annotations

import numpy as np
from _solvers_utils import graphene_supercell

from ase_deeph import solvers
from ase_deeph.solvers import sparse_path as sb_mod


def test_sparse_bands_match_dense_and_resume(tmp_path, monkeypatch):
    clean = graphene_supercell(5)  # noise lifts the supercell's exact degeneracies, which
    noise = np.random.default_rng(0).normal(0.0, 0.02, clean.n_values)  # Lanczos may split
    hs = clean.replace(h=clean.h + noise[None]).symmetrize()
    kpts = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [1 / 3, 1 / 3, 0.0], [0.1, 0.2, 0.0]])
    dense = solvers.eigenvalues(hs, kpts)  # [1, nk, n_orb]
    ck = tmp_path / "bands.npz"
    res = solvers.sparse_bands(hs, kpts, sigma=0.05, n_bands=6, checkpoint=ck)
    for i in range(len(kpts)):
        near = dense[0, i][np.argsort(np.abs(dense[0, i] - 0.05))[:6]]
        np.testing.assert_allclose(res.energies[0, i], np.sort(near), atol=1e-9)
    assert np.all(res.seconds > 0)
    calls = []
    real = sb_mod.solve_sparse
    monkeypatch.setattr(sb_mod, "solve_sparse", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = solvers.sparse_bands(hs, kpts, sigma=0.05, n_bands=6, checkpoint=ck)
    assert not calls and np.array_equal(again.energies, res.energies)  # all resumed
    data = dict(np.load(ck))
    data["done"][2:] = False  # as if killed after two k-points
    np.savez(ck, **data)
    third = solvers.sparse_bands(hs, kpts, sigma=0.05, n_bands=6, checkpoint=ck)
    assert len(calls) == 2 and np.allclose(third.energies, res.energies)
    other = solvers.sparse_bands(hs, kpts, sigma=0.3, n_bands=6, checkpoint=ck)
    assert len(calls) == 6 and not np.allclose(other.energies, res.energies)  # new problem


def test_fermi_level_from_a_guess_agrees():
    hs = graphene_supercell(5)
    n_e = hs.n_orbitals
    ref = solvers.fermi_level_sparse(hs, n_electrons=n_e)
    near = solvers.fermi_level_sparse(hs, n_electrons=n_e, guess=ref.fermi_level + 0.01)
    assert abs(near.fermi_level - ref.fermi_level) < 1e-6
    assert near.n_factorizations <= ref.n_factorizations
