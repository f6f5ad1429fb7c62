"""One near-null-S rule (issues 13 item 5, 16): the policy, the provider contract, every path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk, graphene

from ase_deeph.inference.base import FunctionProvider, HSProvider, as_provider
from ase_deeph.inference.toy import toy_hs
from ase_deeph.solvers import conditioning as cond
from ase_deeph.solvers.conditioning import OverlapPolicy, check_spectrum
from interfaces.errors import ConfigError


def _ab_bilayer(distance: float = 3.35):
    layer = graphene(a=2.46, vacuum=0.0)
    top = layer.copy()
    top.positions += [0.0, 2.46 / 3**0.5, distance]
    atoms = layer + top
    atoms.cell[2] = [0.0, 0.0, distance + 15.0]
    atoms.pbc = (True, True, False)
    atoms.center(axis=2)
    return atoms


@pytest.fixture(scope="module")
def model():
    from ase_deeph.inference.provider import ModelProvider

    return ModelProvider.from_any("bilayer-dzvp-compact", device="cpu")


def test_policy_rules_by_source():
    hs = toy_hs(bulk("Si", "diamond", a=5.43))
    k = np.zeros((1, 3))
    assert cond.min_overlap_on(hs, k) > cond.GHOST_PRONE  # a well-conditioned basis
    assert OverlapPolicy("exact").dense_threshold(hs, k) == cond.NUMERICAL
    assert OverlapPolicy("reference").dense_threshold(hs, k) == cond.REFERENCE
    assert OverlapPolicy("predicted").dense_threshold(hs, k) == cond.NUMERICAL
    assert OverlapPolicy("predicted", threshold=3e-3).dense_threshold(hs, k) == 3e-3
    assert OverlapPolicy("predicted").prepare(hs, sparse=True) is hs  # nothing to suppress
    with pytest.raises(ConfigError, match="ghosts"):
        OverlapPolicy("predicted", ghosts="maybe")
    with pytest.raises(ConfigError, match="kind"):
        OverlapPolicy("guessed")


def test_ghost_prone_prediction_is_projected_or_penalised(model):
    """The old compact basis on a bilayer (min eig S ~ 1e-6): the model's policy acts."""
    hs = model(_ab_bilayer())
    k = np.array([[0.0, 0.0, 0.0], [1 / 3, 1 / 3, 0.0]])
    assert cond.min_overlap_on(hs, k) < cond.GHOST_PRONE
    assert model.policy.dense_threshold(hs, k) == cond.GHOST_THRESHOLD
    penalised = model.policy.prepare(hs, sparse=True)
    assert penalised is not hs and np.array_equal(penalised.s, hs.s)
    assert model.policy.with_options(ghosts="penalty").dense_threshold(penalised, k) \
        == cond.NUMERICAL


def test_check_spectrum_reports_far_states():
    e = np.array([[[-150.0, -5.0, 0.0, 2.0, 230.0, 8315.0]]])
    with pytest.warns(RuntimeWarning, match="2 state"):
        assert check_spectrum(e, 0.5, "X") == 2  # -150 and +8315 eV, not the +230 eV top
    with pytest.warns(cond.BasisTopWarning, match="1 state.*above E_F"):
        assert check_spectrum(e[..., 1:5], 0.5) == 0  # +230 eV: the basis top, explained
    assert check_spectrum(e, float("nan")) == 0


def test_check_spectrum_beyond_the_training_spectrum_is_extrapolation():
    """With the model's training range, states past it by > SPECTRUM_MARGIN are reported
    as extrapolation, not explained away as the basis top (C60: +569 eV, training +233)."""
    known = (-24.7, 233.2)
    e = np.array([-5.0, 0.0, 2.0, 230.0, 569.0])
    with pytest.warns(RuntimeWarning, match="1 state.*569.0 eV.*extrapolates"):
        with pytest.warns(cond.BasisTopWarning, match="1 state.*up to \\+230"):
            assert check_spectrum(e, 0.0, "C60", known=known) == 1
    with pytest.warns(cond.BasisTopWarning, match="2 state"):
        assert check_spectrum(e, 0.0) == 0  # the fixed window alone: +569 eV passes as a top
    with pytest.warns(RuntimeWarning, match="1 state.*-40.0 eV"):
        assert check_spectrum(np.array([-40.0, 0.0]), 0.0, known=known) == 1  # below too
    inside = np.array([known[0] - 0.9 * cond.SPECTRUM_MARGIN, 0.0, 1.0])
    assert check_spectrum(inside, 0.0, known=known) == 0


def test_provider_policy_carries_the_model_training_spectrum():
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.model.checkpoint import read_meta

    meta = read_meta(ModelProvider.from_any("default").path)
    provider = ModelProvider.from_any("default")
    assert provider.policy.known_range == tuple(meta["spectrum_range_eV"])
    lo, hi = provider.policy.known_range
    assert -40 < lo < -15 and 200 < hi < 300  # valence bottom; top of the basis spectrum


def test_provider_contract(model):
    wrapped = as_provider(toy_hs)
    assert isinstance(wrapped, FunctionProvider) and isinstance(wrapped, HSProvider)
    assert wrapped.policy.kind == "exact"
    assert isinstance(model, HSProvider) and model.policy.kind == "predicted"
    assert as_provider(model) is model
    with pytest.raises(TypeError):
        as_provider(42)


def test_cli_bands_of_a_prediction_use_the_model_policy(model, tmp_path, capsys):
    """``ase-deeph bands STRUCT -m MODEL`` goes through the policy: no +8000 eV states.

    MODEL is the old-basis bilayer model (ghost-prone S), where the policy has work to do.
    """
    from ase_deeph.cli.app import main

    structure = tmp_path / "ab.vasp"
    _ab_bilayer().write(structure, format="vasp")
    out = tmp_path / "bands.png"
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["bands", str(structure), "-m", "bilayer-dzvp-compact", "-o",
                     str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    ef = summary["fermi_level_eV"]
    assert summary["s_projection_threshold"] == cond.GHOST_THRESHOLD
    lo, hi = summary["energy_range_eV"]
    # before: +8315 eV (no projection on this path); with the model's policy (1e-2) the
    # old-basis prediction reaches ~116 eV above E_F, inside PySCF's own range in this
    # basis (top +142 eV on graphene): no ghost, no warning
    assert ef - 40.0 < lo and hi < ef + 150.0
    assert not any("ghost states" in str(w.message) for w in caught)
