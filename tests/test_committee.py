"""Committee models (issue 13 item 4): one file, member spread in the calculator's results."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("torch")

import interfaces  # noqa: E402
from ase_deeph.calculator import DeepHCalculator  # noqa: E402
from ase_deeph.inference.toy import toy_hs  # noqa: E402
from ase_deeph.inference.uncertainty import atom_spread, committee_spread  # noqa: E402
from ase_deeph.model.checkpoint import committee_size, load_committee, load_model  # noqa: E402
from ase_deeph.training.config import ModelConfig, TrainConfig  # noqa: E402
from ase_deeph.training.trainer import train  # noqa: E402


@pytest.fixture(scope="module")
def committee_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("committee")
    items = []
    for k in range(6):  # different densities: bootstrap resamples differ in avg_neighbors
        atoms = bulk("C", "diamond", a=3.57 - 0.12 * k)
        atoms.rattle(0.03, seed=k)
        items.append((None, toy_hs(atoms)))
    data = tmp / "toy.h5"
    interfaces.save_many(items, data)
    mcfg = dataclasses.replace(ModelConfig(), r_cut=4.0, channels=8, pseudo_channels=4,
                               n_layers=1)
    tcfg = dataclasses.replace(TrainConfig(), dataset=str(data), out_dir=str(tmp / "run"),
                               epochs=3, split=(0.5, 0.17, 0.33), committee=3,
                               progress=False, device="cpu")
    return train(mcfg, tcfg), tcfg


def test_committee_file_holds_distinct_members(committee_file):
    path, cfg = committee_file
    members, meta = load_committee(path)
    assert committee_size(meta) == 3 and len(members) == 3
    assert members[1].config == members[0].config == members[2].config
    assert meta["committee"]["seeds"] == [0, 1000, 2000]
    first, _ = load_model(path)  # a plain load gives member 0
    atoms = bulk("C", "diamond", a=3.57)
    from ase_deeph.inference.predict import predict

    hs = [predict(m, atoms, device="cpu") for m in (first, *members)]
    np.testing.assert_array_equal(hs[0].h, hs[1].h)
    assert not np.allclose(hs[1].h, hs[2].h) and not np.allclose(hs[2].h, hs[3].h)
    # member 1 trained in its own run folder, on a bootstrap resample: another model
    single, _ = load_model(path.parent / "members" / "1" / "model.safetensors")
    assert not np.allclose(predict(single, atoms, device="cpu").h, hs[0].h)


def test_identical_members_have_zero_spread():
    hs = toy_hs(bulk("Si", "diamond", a=5.43))
    kpts, w = np.zeros((1, 3)), np.ones(1)
    unc = committee_spread([hs, hs], kpts, w, 8.0, 1e-6)
    assert unc.members == 2 and np.all(unc.band == 0) and unc.near_fermi == 0
    np.testing.assert_array_equal(atom_spread([hs, hs]), np.zeros(2))


def test_insulator_spread_is_measured_at_the_band_edges():
    """E_F mid-gap: the window starts at the edges, so a disagreement there is seen."""
    from ase_deeph import solvers

    hs = toy_hs(bulk("Si", "diamond", a=5.43))
    kpts, w = solvers.mesh_points((2, 2, 2), gamma_centred=True), np.full(8, 1 / 8)
    e = solvers.eigenvalues(hs, kpts)
    ef = solvers.fermi_level(e, 8.0, w).fermi_level
    gap = e[e > ef].min() - e[e < ef].max()
    shifted = hs.replace(h=hs.h * 1.01)  # a 1 % different member
    unc = committee_spread([hs, shifted], kpts, w, 8.0, 1e-6, window=0.5 * gap - 0.05)
    assert gap > 0.2 and unc.near_fermi > 0  # a plain window around mid-gap is empty
    mask = solvers.fermi_window(np.array([-3.0, -1.0, 1.2, 4.0]), 0.0, 0.5)
    np.testing.assert_array_equal(mask, [False, True, True, False])  # edges +-1 (+0.5)
    assert not solvers.fermi_window(np.array([np.nan]), 0.0).any()


def test_spread_is_gauge_invariant_and_localised():
    """A constant shift mu S is no disagreement; a perturbation on one atom is found there."""
    hs = toy_hs(bulk("Si", "diamond", a=5.43, cubic=True))
    shifted = hs.replace(h=hs.h + 0.3 * hs.s[None])
    assert np.allclose(atom_spread([hs, shifted]), 0.0, atol=1e-12)
    h = hs.h.copy()
    on_3 = np.flatnonzero((hs.edge_index[0] == 3) & (hs.edge_index[1] == 3))
    for e in on_3:
        h[:, hs.block_ptr[e]:hs.block_ptr[e + 1]] += 0.05
    spread = atom_spread([hs, hs.replace(h=h)])
    assert int(np.argmax(spread)) == 3


def test_calculator_reports_and_warns(committee_file):
    path, _ = committee_file
    atoms = bulk("C", "diamond", a=3.57)
    atoms.calc = DeepHCalculator(model=str(path), kpts=(2, 2, 2), uncertainty_threshold=0.0)
    with pytest.warns(RuntimeWarning, match="committee disagrees"):
        evals = atoms.calc.get_eigenvalues()
    res = atoms.calc.results
    assert res["band_uncertainty"].shape == res["eigenvalues"].shape
    assert res["uncertainty_near_fermi"] > 0 and res["atom_uncertainty"].shape == (2,)
    assert np.all(np.isfinite(evals))
    atoms.calc = DeepHCalculator(model=str(path), kpts=(2, 2, 2), uncertainty=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        atoms.calc.get_fermi_level()
    assert "band_uncertainty" not in atoms.calc.results
