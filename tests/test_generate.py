"""``ase-deeph generate``: reproducible structures, shards, resume, failure report, configs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from ase_deeph.generation import generate as gen
from ase_deeph.generation.config import GenerateConfig
from interfaces import h5io
from interfaces import pyscf as ps

CONFIGS = Path(gen.__file__).parents[1] / "configs"
TINY = {
    "n_structures": 2, "seed": 5,
    "system": {"prototype": "molecule", "molecules": ["H2O"]},
    "perturb": {"rattle": [0.01, 0.03]},
    "dft": {"basis": "gth-szv", "conv_tol": 1e-8},
}


@pytest.mark.parametrize("name", ["si_bulk", "si_bulk_2x1x1", "bilayer_graphene", "water"])
def test_shipped_configs_build_valid_structures(name):
    cfg = GenerateConfig.from_toml(CONFIGS / f"{name}.toml")
    assert cfg.n_structures > 0
    for k in (0, 1, cfg.n_structures - 1):
        atoms, info = gen.build_structure(cfg, k)
        again, _ = gen.build_structure(cfg, k)
        assert np.array_equal(atoms.positions, again.positions)  # depends only on (seed, k)
        assert info["index"] == k
        dist = atoms.get_all_distances(mic=any(atoms.pbc))
        assert dist[~np.eye(len(atoms), dtype=bool)].min() > ps.MIN_DISTANCE
    first, _ = gen.build_structure(cfg, 0)
    second, _ = gen.build_structure(cfg, len(cfg.system.molecules))  # same molecule, new draw
    assert not np.allclose(first.positions, second.positions)


def test_bilayer_parameters_in_range():
    cfg = GenerateConfig.from_toml(CONFIGS / "bilayer_graphene.toml")
    need = 2 * cfg.dft.r_cut
    shifts = []
    for k in range(20):
        atoms, info = gen.build_structure(cfg, k)
        lo, hi = cfg.system.interlayer_distance
        assert lo <= info["interlayer_distance"] <= hi
        z = atoms.positions[:, 2]
        assert abs(z[2:].mean() - z[:2].mean() - info["interlayer_distance"]) < 0.2
        assert atoms.cell[2, 2] >= need  # enough vacuum for the folding (no z images)
        assert np.allclose(atoms.cell[2], [0, 0, atoms.cell[2, 2]])
        shifts.append(info["shift_fractional"])
    assert np.ptp(np.asarray(shifts), axis=0).min() > 0.5  # shifts spread over the cell


def test_si_strain_and_rattle_in_range():
    cfg = GenerateConfig.from_toml(CONFIGS / "si_bulk.toml")
    for k in range(10):
        atoms, info = gen.build_structure(cfg, k)
        assert len(atoms) == 8
        assert np.abs(info["strain"]).max() <= cfg.perturb.strain
        lo, hi = cfg.perturb.rattle
        assert lo <= info["rattle_amplitude"] <= hi


def test_vacancies_remove_seeded_atoms():
    cfg = GenerateConfig.from_toml(CONFIGS / "silicon" / "3_vacancy.toml")
    atoms, info = gen.build_structure(cfg, 0)
    assert len(atoms) == 15 and len(info["vacancies"]) == 1
    assert gen.build_structure(cfg, 0)[1]["vacancies"] == info["vacancies"]
    plain = GenerateConfig.from_toml(CONFIGS / "silicon" / "2_bulk_2x1x1.toml")
    assert "vacancies" not in gen.build_structure(plain, 0)[1]
    with pytest.raises(ValueError, match="vacancies"):
        GenerateConfig.from_dict({"perturb": {"vacancies": -1}})


def test_config_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown keys"):
        GenerateConfig.from_dict({"system": {"prototipe": "si_bulk"}})
    with pytest.raises(ValueError, match="prototype"):
        GenerateConfig.from_dict({"system": {"prototype": "graphyne"}})


def test_generate_and_resume(tmp_path, monkeypatch):
    out = tmp_path / "water.h5"
    real_run = ps.run
    calls = []

    def interrupted(atoms, **kw):
        calls.append(len(atoms))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the run is killed during the second structure
        return real_run(atoms, **kw)

    monkeypatch.setattr(ps, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(TINY, out, progress=False)
    assert not out.exists()
    assert sorted(p.name for p in Path(f"{out}.parts").glob("*.h5")) == ["000000.h5"]
    first = h5io.load(Path(f"{out}.parts") / "000000.h5")

    monkeypatch.setattr(ps, "run", lambda atoms, **kw: (calls.append(0), real_run(atoms, **kw))[1])
    report = gen.generate(TINY, out, progress=False)
    assert len(calls) == 3  # only structure 1 was computed again
    assert report.n_done == 2 and report.failures == ()
    assert h5io.names(out) == ["000000", "000001"]
    hs0, hs1 = h5io.load(out, "000000"), h5io.load(out, "000001")
    assert np.array_equal(hs0.h, first.h)
    expect, _ = gen.build_structure(GenerateConfig.from_dict(TINY), 1)
    assert np.allclose(hs1.atoms.positions, expect.positions)
    assert hs1.metadata["generate"]["index"] == 1
    assert hs1.metadata["versions"]["pyscf"] == hs1.source_version
    assert hs1.metadata["dft_settings"]["basis"] == "gth-szv"
    assert hs1.n_electrons == 8.0 and np.isfinite(hs1.fermi_level)
    with h5py.File(out) as f:
        assert json.loads(f.attrs["generate_config"])["seed"] == 5
        assert json.loads(f.attrs["failures"]) == []
    with pytest.raises(ValueError, match="different config"):
        gen.generate(TINY | {"seed": 6}, out, progress=False)
    report = gen.generate(TINY | {"n_structures": 3}, out, progress=False)  # extend
    assert len(calls) == 4 and h5io.names(out) == ["000000", "000001", "000002"]
    gen.generate(TINY | {"n_structures": 3}, out, progress=False, extra=[7])  # a pick
    assert len(calls) == 5 and h5io.names(out)[-1] == "000007"
    report = gen.generate(TINY | {"n_structures": 3}, out, progress=False)  # remembered
    assert len(calls) == 5 and report.n_done == 4
    # A stamp written before a field with a default existed still matches.
    stamp = Path(f"{out}.parts") / "config.json"
    old_stamp = json.loads(stamp.read_text())
    del old_stamp["perturb"]["vacancies"]
    stamp.write_text(json.dumps(old_stamp))
    report = gen.generate(TINY | {"n_structures": 3}, out, progress=False)
    assert len(calls) == 5 and report.n_done == 4


def test_failures_are_reported_and_generation_continues(tmp_path):
    cfg = TINY | {"n_structures": 3,
                  "system": {"prototype": "molecule", "molecules": ["H2O", "H2O", "CH4"]},
                  "dft": {"basis": "gth-szv", "max_cycle": 3}}
    out = tmp_path / "bad.h5"
    report = gen.generate(cfg, out, progress=False)
    assert [k for k, _ in report.failures] == [0, 1, 2]
    assert all("SCFConvergenceError" in why for _, why in report.failures)
    assert report.n_done == 0 and h5io.names(out) == []
    with h5py.File(out) as f:
        assert len(json.loads(f.attrs["failures"])) == 3


def test_failure_in_the_middle_is_skipped(tmp_path, monkeypatch):
    real_run = ps.run

    def flaky(atoms, **kw):
        if len(atoms) == 5:  # CH4: pretend its element has no basis
            raise ps.UnknownElementError("no basis 'gth-szv' for element C")
        return real_run(atoms, **kw)

    monkeypatch.setattr(ps, "run", flaky)
    cfg = TINY | {"n_structures": 3,
                  "system": {"prototype": "molecule", "molecules": ["H2O", "CH4"]}}
    report = gen.generate(cfg, tmp_path / "mixed.h5", progress=False)
    assert report.n_done == 2 and h5io.names(report.path) == ["000000", "000002"]
    assert report.failures == ((1, "UnknownElementError: no basis 'gth-szv' for element C"),)


@pytest.mark.slow
def test_periodic_generate_with_reference_guess(tmp_path):
    """Si cells from the reference density give the same labels as a cold start."""
    cfg = {"n_structures": 1, "seed": 3, "system": {"prototype": "si_bulk"},
           "perturb": {"rattle": [0.05, 0.1], "strain": 0.02},
           "dft": {"basis": "gth-szv", "kmesh": [1, 1, 1], "r_cut": 4.0, "ke_cutoff": 30.0,
                   "reference_guess": True}}
    report = gen.generate(cfg, tmp_path / "si.h5", progress=False)
    assert report.n_done == 1 and (tmp_path / "si.h5.parts" / "reference_dm.npy").exists()
    hs = h5io.load(report.path, "000000")
    assert hs.metadata["initial_guess"] == "dm0"
    atoms, _ = gen.build_structure(GenerateConfig.from_dict(cfg), 0)
    cold = ps.run(atoms, **GenerateConfig.from_dict(cfg).dft.run_kwargs())
    assert np.array_equal(cold.edge_index, hs.edge_index)
    assert np.abs(cold.h - hs.h).max() < 1e-4


CARBON = sorted((CONFIGS / "carbon").glob("*.toml")) + sorted(
    (CONFIGS / "silicon").glob("*.toml"))


@pytest.mark.parametrize("path", CARBON, ids=[p.stem for p in CARBON])
def test_carbon_family_configs_build_valid_structures(path):
    """Every carbon and silicon training family: seeded, no overlaps, >= 2 r_cut of vacuum."""
    cfg = GenerateConfig.from_toml(path)
    assert cfg.dft.basis == "gth-dzvp-molopt-sr-compact"
    for k in (0, cfg.n_structures - 1):
        atoms, _ = gen.build_structure(cfg, k)
        again, _ = gen.build_structure(cfg, k)
        assert np.array_equal(atoms.positions, again.positions)
        dist = atoms.get_all_distances(mic=True)
        assert dist[~np.eye(len(atoms), dtype=bool)].min() > ps.MIN_DISTANCE
        if cfg.system.prototype == "molecule":  # molecular SCF: no images, the box is unused
            assert not atoms.pbc.any()
            continue
        lengths = atoms.cell.lengths()
        assert all(L >= 2 * cfg.dft.r_cut for L, p in zip(lengths, atoms.pbc, strict=True) if not p)


def test_prototype_geometry():
    def build(**system):
        return gen.build_structure(GenerateConfig.from_dict({"system": system}), 0)[0]

    mono = build(prototype="graphene")
    assert len(mono) == 2 and list(mono.pbc) == [True, True, False]
    assert abs(mono.get_distance(0, 1, mic=True) - 2.46 / np.sqrt(3)) < 1e-6
    sqrt3 = build(prototype="graphene", supercell=[[2, 1, 0], [-1, 1, 0], [0, 0, 1]])
    assert len(sqrt3) == 6
    np.testing.assert_allclose(sqrt3.cell.lengths()[:2], 2.46 * np.sqrt(3), rtol=1e-9)
    graphite = build(prototype="graphite", shift="AB", interlayer_distance=[3.35, 3.35])
    assert graphite.pbc.all() and abs(graphite.cell[2, 2] - 6.7) < 1e-9
    ribbon = build(prototype="ribbon", ribbon_width=3)
    assert ribbon.get_chemical_formula() == "C6H2" and list(ribbon.pbc) == [False, False, True]
    diamond = build(structure='bulk("C", "diamond", a=3.567, cubic=True)')
    assert len(diamond) == 8 and diamond.pbc.all()


def test_structure_spec_is_parsed_not_evaluated(tmp_path):
    from ase.io import write

    from ase_deeph.generation.structure_spec import StructureSpecError, read_structure

    assert read_structure('bulk("InP", "zincblende", a=5.87)').get_chemical_formula() == "InP"
    for spec, message in [('bulk(__import__("os").getcwd())', "literals"),
                          ('open("x")', "not a structure file|does not exist"),
                          ("bulk('Xx')", "failed in ase.build"),
                          (str(tmp_path / "missing.cif"), "does not exist")]:
        with pytest.raises(StructureSpecError, match=message):
            read_structure(spec)
    bad = tmp_path / "bad.xyz"
    bad.write_text("2\n\nC 0 0 nan\nC 0 0 1.4\n")
    with pytest.raises(StructureSpecError):
        read_structure(bad)
    write(tmp_path / "si.cif", ps_bulk := __import__("ase.build").build.bulk("Si"))
    assert len(read_structure(tmp_path / "si.cif")) == len(ps_bulk)
