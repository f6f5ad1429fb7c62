"""Ghost-state suppression: local near-null-S penalty vs dense projection, sparse-safe."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

from ase_deeph import solvers
from ase_deeph.generation.structures import twisted_bilayer_graphene
from ase_deeph.inference.provider import ModelProvider
from ase_deeph.inference.toy import toy_hs
from ase_deeph.solvers.ghosts import suppress_ghosts


@pytest.fixture(scope="module")
def clean_tbg():
    """Old-basis model H of the 28-atom twisted bilayer (near-null S directions: s ~ 1e-6)."""
    prov = ModelProvider.from_any("bilayer-dzvp-compact", device="cpu")
    return prov(twisted_bilayer_graphene(1, 2, distance=3.35))


@pytest.fixture(scope="module")
def noisy_tbg(clean_tbg):
    """The same plus 2 meV of Hermitian noise per matrix element (a worse model)."""
    noise = np.random.default_rng(0).normal(0.0, 2e-3, clean_tbg.n_values)
    return clean_tbg.replace(h=clean_tbg.h + noise[None]).symmetrize()


def test_penalty_removes_ghosts_like_projection(noisy_tbg):
    hs = noisy_tbg
    k = solvers.mesh_points((2, 2, 1), gamma_centred=True)
    proj = solvers.eigenvalues(hs, k, ill_threshold=1e-2)[0]  # reference: dense projection
    raw = solvers.eigenvalues(hs, k, ill_threshold=1e-10)[0]
    supp = solvers.eigenvalues(suppress_ghosts(hs), k, ill_threshold=1e-10)[0]
    ef = solvers.fermi_level(proj[None], hs.n_electrons).fermi_level
    window = np.abs(proj - ef) < 2.0
    n_states = int(window.sum())
    nb = proj.shape[1] - int(np.isnan(proj).sum(axis=1).max())
    window[:, nb:] = False
    err_raw = np.abs(raw[:, :proj.shape[1]] - proj)[window]
    err_supp = np.abs(supp[:, :proj.shape[1]] - proj)[window]
    assert n_states > 20
    assert err_raw.max() > 0.1  # ghosts: 2 meV of noise moves the window by > 100 meV
    # the two cures agree to the noise level (projection also moves physical states a bit)
    assert err_supp.max() < 5e-3 and err_supp.mean() < 3e-3  # eV


def test_sparse_fermi_level_after_suppression(clean_tbg, noisy_tbg):
    hs = suppress_ghosts(noisy_tbg)
    dense = solvers.eigenvalues(hs, np.zeros((1, 3)), ill_threshold=1e-10)
    ef_dense = solvers.fermi_level(dense, hs.n_electrons).fermi_level
    ef_sparse = solvers.fermi_level_sparse(hs)
    assert ef_sparse.is_insulator  # the 28-atom cell has a gap at Gamma
    assert abs(ef_sparse.fermi_level - ef_dense) < 1e-6
    n_occ = int(round(hs.n_electrons / 2))
    assert abs(ef_sparse.vbm - dense[0, 0, n_occ - 1]) < 1e-6
    # no ghost below E_F: the valence top is the clean model's physical state, moved only by
    # the noise (~20 meV here); a ghost would sit eV away
    clean = solvers.eigenvalues(clean_tbg, np.zeros((1, 3)), ill_threshold=1e-10)
    assert abs(ef_sparse.vbm - clean[0, 0, n_occ - 1]) < 0.05


def test_well_conditioned_basis_is_untouched():
    hs = toy_hs(bulk("Si", "diamond", a=5.43), seed=0)
    out = suppress_ghosts(hs)
    assert out.metadata["ghost_penalty"]["n_directions"] == 0
    np.testing.assert_array_equal(out.h, hs.h)


def test_refuses_spinor_data():
    hs = toy_hs(bulk("Si", "diamond", a=5.43), spin="spinor", seed=0)
    with pytest.raises(ValueError, match="spin"):
        suppress_ghosts(hs)


def test_calculator_ghost_modes_agree_near_fermi_level():
    from ase_deeph import DeepHCalculator

    atoms = twisted_bilayer_graphene(1, 2, distance=3.35)
    out = {}
    for mode in ("project", "penalty"):
        atoms.calc = DeepHCalculator(kpts=np.array([[0.0, 0.0, 0.0], [1 / 3, 1 / 3, 0.0]]),
                                     ghosts=mode)
        e = atoms.calc.get_eigenvalues(kpt=1)  # K: the Dirac cones of both layers
        out[mode] = e[np.abs(e - atoms.calc.get_fermi_level()) < 2.0]
    assert len(out["project"]) == len(out["penalty"]) >= 4
    assert np.max(np.abs(out["project"] - out["penalty"])) < 5e-3
    with pytest.raises(ValueError, match="ghosts"):
        DeepHCalculator(kpts=(1, 1, 1), ghosts="nope")


@pytest.mark.parametrize("kpt", [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0)])
def test_overlap_below_dense_and_inertia_branches_agree(clean_tbg, kpt):
    """The sparse inertia test of S(k) - t 1 against the dense smallest eigenvalue."""
    from ase_deeph.solvers.ghosts import min_overlap_eigenvalue, overlap_below

    s_min = min_overlap_eigenvalue(clean_tbg, kpt)
    for t in (0.5 * s_min, 2.0 * s_min, 1e-4, 1e-2):
        want = s_min < t
        assert overlap_below(clean_tbg, t, kpt) == want
        assert overlap_below(clean_tbg, t, kpt, dense_max=0) == want
