"""``ase-deeph learn``: planning rules, clear errors before any DFT, one tiny real run."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, fcc111
from ase.io import write

from ase_deeph.cli.app import main
from ase_deeph.learn import budget, learn, make_plan, rules
from ase_deeph.learn.plan import LearnPlan
from ase_deeph.learn.preflight import Preflight
from ase_deeph.learn.structure import StructureError, supercell_for, widths
from interfaces.errors import ConfigError, DeepHError
from interfaces.kspacing import default_kmesh
from interfaces.pyscf import UnknownElementError

SI = 'bulk("Si", "diamond", a=5.43)'


def fake_preflight(seconds: float = 0.01, gap: float = 1.0, converged: bool = True):
    """A preflight that records its calls instead of running an SCF."""
    calls = []

    def run(atoms, **kw):
        calls.append((atoms.copy(), kw))
        return Preflight(seconds=seconds, n_orbitals=13 * len(atoms),
                         n_kpoints=int(np.prod(kw["kmesh"])), gap=gap,
                         converged_without_smearing=converged)

    run.calls = calls
    return run


def no_dft(*args, **kwargs):
    raise AssertionError("DFT ran before the input was checked")


# ------------------------------------------------------------------------- planning
def test_supercell_rule_and_kmesh_on_a_two_atom_cell():
    pre = fake_preflight()
    plan = make_plan(SI, 60, preflight=pre)
    unit = bulk("Si", "diamond", a=5.43)
    assert pre.calls[0][1]["kmesh"] == default_kmesh(unit)  # unit cell, the one k rule
    w = widths(unit.cell)  # fcc primitive: a / sqrt(3) = 3.135 A each
    assert np.allclose(w, 5.43 / math.sqrt(3))
    assert plan.supercell == (3, 3, 3) and plan.n_atoms == 54  # 3 x 3.135 >= 8 > 2 x 3.135
    assert plan.min_width == 8.0 and min(plan.cell_widths) >= 8.0
    assert plan.kmesh == default_kmesh(unit.repeat((3, 3, 3)))
    assert plan.n_orbitals == 54 * 13 and plan.n_electrons == 54 * 4
    assert plan.ke_cutoff == 40.0 and "measured" in plan.ke_sources["Si"]
    assert plan.smearing is None and plan.strain == rules.STRAIN
    assert plan.rattle == pytest.approx((0.047, 0.094), abs=1e-3)  # 2-4 % of 2.35 A
    assert plan.init_model == "" and "from scratch" in plan.init_reason  # shipped: old basis
    text = plan.describe()
    for part in ("54 atoms", "3x3x3", "estimated SCF time per structure", "estimate"):
        assert part in text
    again = LearnPlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan


def test_budget_sizes_structures_and_epochs():
    small = make_plan(SI, 30, preflight=fake_preflight(seconds=0.05))
    large = make_plan(SI, 120, preflight=fake_preflight(seconds=0.05))
    assert large.supercell == small.supercell
    assert large.n_structures > small.n_structures >= budget.N_MIN
    assert budget.MIN_EPOCHS <= small.epochs <= budget.MAX_EPOCHS
    data = budget.DATA_SHARE * (30 * 60 - 0.05)
    assert small.n_structures * small.seconds_per_structure <= data + 1e-6
    assert small.total_seconds <= 30 * 60
    # an expensive preflight: the width is lowered until N_TARGET structures fit
    slow = make_plan(SI, 30, preflight=fake_preflight(seconds=1.0))
    assert slow.min_width < 8.0 and slow.n_atoms < 54
    assert any("lowered" in n for n in slow.notes)
    assert slow.n_structures >= budget.N_TARGET
    measured = budget.calibrate(small, 2 * small.seconds_per_structure)
    assert measured.n_structures == pytest.approx(small.n_structures / 2, abs=1)
    assert measured.calibrated_seconds and "calibrated" in measured.notes[-1]


def test_vacuum_is_detected_and_made_non_periodic(tmp_path):
    slab = fcc111("Al", size=(1, 1, 3), vacuum=5.0)
    slab.pbc = True  # a periodic file with a 10 A empty gap along c
    slab.info.clear()
    write(tmp_path / "slab.extxyz", slab)
    plan = make_plan(tmp_path / "slab.extxyz", 60, preflight=fake_preflight(gap=0.0))
    assert plan.vacuum_axes == (2,) and plan.pbc == (True, True, False)
    assert plan.supercell[2] == 1 and plan.kmesh[2] == 1
    assert plan.supercell[:2] == supercell_for(slab, 8.0)[:2]
    unit = plan.unit_atoms()
    assert np.linalg.norm(unit.cell[2]) >= 2 * plan.r_cut
    assert abs(unit.cell[2] @ unit.cell[0]) < 1e-9  # perpendicular to the plane
    assert plan.smearing == rules.METAL_SMEARING  # zero gap: a metal
    assert plan.ke_cutoff == 60.0 and "unmeasured" in plan.ke_sources["Al"]
    mol = make_plan('molecule("H2O")', 10, preflight=fake_preflight(gap=6.0))
    assert mol.molecule and mol.supercell == (1, 1, 1) and mol.strain == 0.0


def test_preflight_runs_on_a_perturbed_unit_cell():
    """The preflight cell is strained and rattled as a training structure is, and seeded."""
    pre, again = fake_preflight(), fake_preflight()
    plan = make_plan(SI, 60, preflight=pre)
    make_plan(SI, 60, preflight=again)
    unit, probe = bulk("Si", "diamond", a=5.43), pre.calls[0][0]
    assert probe.get_chemical_symbols() == unit.get_chemical_symbols()
    eps = np.linalg.solve(np.asarray(unit.cell), np.asarray(probe.cell)) - np.eye(3)
    assert 0 < np.abs(eps).max() <= plan.strain and np.allclose(eps, eps.T)
    moved = np.linalg.norm(probe.positions - unit.positions @ (np.eye(3) + eps), axis=1)
    assert 0 < moved.max() < 6 * plan.rattle[1]
    assert np.array_equal(probe.positions, again.calls[0][0].positions)


def test_preflight_marks_a_metal_when_only_smearing_converges(monkeypatch):
    from types import SimpleNamespace

    from ase_deeph.learn.preflight import run_preflight
    from interfaces import pyscf as ps

    seen = []

    def fake_run(atoms, **kw):
        seen.append(kw.get("smearing"))
        if kw.get("smearing") is None:
            raise ps.SCFConvergenceError("no convergence")
        return SimpleNamespace(n_orbitals=13, metadata={"kind": "periodic", "vbm_eV": 1.0,
                                                        "cbm_eV": 1.0})

    monkeypatch.setattr(ps, "run", fake_run)
    pre = run_preflight(bulk("Al"), "b", "pbe", 60.0, (2, 2, 2), 8.0)
    assert seen == [None, rules.METAL_SMEARING]
    assert not pre.converged_without_smearing and math.isnan(pre.gap)
    assert pre.n_kpoints == 8 and pre.spent >= pre.seconds


def test_fine_tune_only_a_shipped_model_with_the_same_elements_and_basis():
    from ase_deeph.learn.preflight import choose_init_model

    path, why = choose_init_model(["Si", "Si"], "gth-dzvp-compact")  # the shipped si model
    assert path.endswith("si.safetensors") and "fine-tune" in why
    assert choose_init_model(["Si"], "gth-dzvp-molopt-sr-compact")[0] == ""  # other basis
    assert choose_init_model(["Si", "C"], "gth-dzvp-compact")[0] == ""  # other elements


def test_ke_cutoff_rule():
    assert rules.ke_cutoff_rule("C") == (100.0, "measured (issue 4)")
    assert rules.ke_cutoff_rule("Cu")[0] == 150.0  # 3d10 4s1 in the pseudopotential
    assert rules.ke_cutoff_rule("P")[0] == 60.0 and rules.ke_cutoff_rule("F")[0] == 120.0
    assert all("unmeasured" in rules.ke_cutoff_rule(el)[1] for el in ("Cu", "P", "F"))


# ------------------------------------------------------------------------- user errors
def test_clear_errors_before_any_dft(tmp_path, monkeypatch):
    from interfaces import pyscf as ps

    monkeypatch.setattr(ps, "run", no_dft)
    bad = tmp_path / "bad.cif"
    bad.write_bytes(b"\x00\x01 not a cif")
    with pytest.raises(ConfigError, match="bad.cif"):
        make_plan(bad, preflight=no_dft)
    with pytest.raises(ConfigError, match="missing.vasp"):
        make_plan(tmp_path / "missing.vasp", preflight=no_dft)
    pair = Atoms("SiC", positions=[[0, 0, 0], [0.3, 0, 0]], cell=[5, 5, 5], pbc=True)
    write(tmp_path / "pair.extxyz", pair)
    with pytest.raises(StructureError, match=r"atoms 0 \(Si\) and 1 \(C\) are 0.300 A apart"):
        make_plan(tmp_path / "pair.extxyz", preflight=no_dft)
    with pytest.raises(UnknownElementError, match="Ce.*gth-dzvp-molopt-sr-compact"):
        make_plan('bulk("Ce", "fcc", a=5.16)', preflight=no_dft)
    assert issubclass(UnknownElementError, DeepHError)
    out = tmp_path / "never"
    assert main(["learn", str(bad), "-o", str(out)]) == 2  # one line, no traceback
    assert not out.exists()


def test_cli_plan_only_saves_the_plan_and_a_rerun_reuses_it(tmp_path, monkeypatch, capsys):
    from interfaces import pyscf as ps

    out = tmp_path / "h2"
    args = ["learn", 'molecule("H2")', "-o", str(out), "--budget", "0.02", "--plan-only"]
    assert main(args) == 0  # one real preflight SCF of H2 (< 1 s)
    text = capsys.readouterr().out
    assert "preflight SCF of the unit cell" in text and "estimated total" in text
    assert (out / "plan.json").exists() and not (out / "data.h5").exists()
    monkeypatch.setattr(ps, "run", no_dft)
    assert main(args) == 0  # plan.json is reused: no second preflight
    assert main(args[:5] + ["5", "--plan-only"]) == 2  # another budget: refused
    assert "other settings" in capsys.readouterr().err


# ---------------------------------------------------------------------- end to end
def test_learn_end_to_end_resumes_and_extends(tmp_path, monkeypatch):
    """A real tiny run: H2 (PySCF molecule, < 1 s per label), 3 structures, a few epochs."""
    from interfaces import pyscf as ps

    spec = 'molecule("H2")'
    plan = make_plan(spec, budget_min=0.02)
    assert plan.molecule and plan.n_structures == budget.N_MIN
    plan = dataclasses.replace(plan, epochs=6, early_stop_patience=6, model=dict(
        plan.model, channels=4, pseudo_channels=2, n_layers=1, n_radial=4))
    out = tmp_path / "h2"
    kw = dict(budget_min=0.02, progress=False, calibrate=False)
    first = learn(spec, out, plan=plan, **kw)
    for name in ("plan.json", "generate.toml", "train.toml", "data.h5", "model.md",
                 "model.safetensors", "structure.extxyz", "learn.json"):
        assert (out / name).exists(), name
    card = first.card_file.read_text()
    for part in ("H block MAE", "bands within 2 eV of E_F", "ase-deeph learn",
                 f'DeepHCalculator(model="{out}/model.safetensors")', "3 PySCF structures"):
        assert part in card
    assert first.results["generate"]["n_done"] == 3
    from ase_deeph.generation.config import GenerateConfig
    from ase_deeph.training.config import from_toml

    assert GenerateConfig.from_toml(out / "generate.toml").n_structures == 3
    assert from_toml(out / "train.toml")[1].epochs == 6
    assert math.isfinite(first.results["evaluation"]["test_h_mae_meV"])
    from ase_deeph.model.checkpoint import read_meta

    assert sorted(read_meta(first.model_file)["basis"]) == ["H"]
    shards = sorted((out / "data.h5.parts").glob("*.h5"))
    stamp = {p: p.stat().st_mtime_ns
             for p in shards + [out / "data.h5", out / "runs/n3/model.safetensors"]}

    calls = []
    real_run = ps.run
    monkeypatch.setattr(ps, "run", lambda atoms, **k: (calls.append(1), real_run(atoms, **k))[1])
    import ase_deeph.training.trainer as trainer

    real_train = trainer.train
    monkeypatch.setattr(trainer, "train", no_dft)
    again = learn(spec, out, **kw)  # the same command: nothing is recomputed
    assert calls == [] and {p: p.stat().st_mtime_ns for p in stamp} == stamp
    assert again.results["evaluation"] == first.results["evaluation"]
    with pytest.raises(ConfigError, match="other settings"):
        learn(spec, out, **(kw | {"seed": 1}))

    monkeypatch.setattr(trainer, "train", real_train)
    more = learn(spec, out, more=1, **kw)  # one structure more, a new training run
    assert len(calls) == 1 and more.results["generate"]["n_done"] == 4
    assert (out / "runs/n4/done.json").exists()
    assert {p: p.stat().st_mtime_ns for p in shards} == {p: stamp[p] for p in shards}



def test_active_round_labels_the_most_uncertain_and_compares_on_the_same_holdout(tmp_path):
    """Issue 14 item 4 on a tiny H2 run: committee of 2, pool 4, pick 1, resumable."""
    from ase_deeph.learn.active import active_round

    spec = 'molecule("H2")'
    plan = make_plan(spec, budget_min=0.02)
    plan = dataclasses.replace(plan, epochs=4, early_stop_patience=4, model=dict(
        plan.model, channels=4, pseudo_channels=2, n_layers=1, n_radial=4))
    out = tmp_path / "h2"
    first = learn(spec, out, plan=plan, budget_min=0.02, progress=False, calibrate=False)
    res = active_round(out, pool=4, pick=1, committee=2, progress=False)
    assert len(res["pool"]) == 4 and len(res["picked"]) == 1
    best = res["pool"][int(np.argmax(res["scores_eV"]))]
    assert res["picked"] == [best] and max(res["scores_eV"]) > 0
    holdout = first.results["train"]["test_names"]
    assert res["holdout"] == holdout
    for stage in ("before", "after"):
        meta = json.loads((out / res[stage]["run_dir"] / "done.json").read_text())
        assert meta["test_names"] == holdout and math.isfinite(res[stage]["h_mae_meV"])
    from interfaces import h5io

    assert f"{best:06d}" in h5io.names(out / "data.h5")
    assert active_round(out, pool=4, pick=1, committee=2, progress=False) == res  # resumes


def test_evaluation_uses_the_reference_smearing():
    """Band comparisons take the Fermi width the reference SCF used (generator metadata)."""
    from _solvers_utils import chain

    from ase_deeph.learn.evaluate import smearing_of

    hs = chain()
    assert smearing_of(hs.replace(metadata={"smearing_eV": 0.1})) == 0.1
    assert smearing_of(hs.replace(metadata={"smearing_eV": None})) == 0.0
    assert smearing_of(hs.replace(metadata={})) == 0.0
