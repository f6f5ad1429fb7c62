"""Training, checkpoints, exact resume, gauge loss and the 2-process DDP (gloo) run."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule

from ase_deeph.inference.predict import predict
from ase_deeph.inference.toy import toy_hs
from ase_deeph.model.checkpoint import load_model, read_meta, save_model
from ase_deeph.model.network import HamiltonianNet
from ase_deeph.training.config import ModelConfig, TrainConfig, from_toml
from ase_deeph.training.dataset import collate, make_sample
from ase_deeph.training.trainer import (
    batch_loss,
    bootstrap,
    forward_batch,
    init_statistics,
    split_names,
    to_device,
    train,
    train_model,
)
from interfaces.h5io import save_many

MODEL = ModelConfig(r_cut=3.3, channels=8, pseudo_channels=2, n_layers=1, radial_hidden=16)


def _toy_dataset(path: Path, n: int = 4) -> Path:
    items = []
    for k in range(n):
        atoms = molecule("C2H4") if k % 2 else bulk("C", "diamond", a=3.57)
        atoms.rattle(0.05, seed=k)
        items.append((None, toy_hs(atoms, seed=0)))
    save_many(items, path)
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _toy_dataset(tmp_path_factory.mktemp("data") / "toy.h5")


def _cfg(dataset: Path, out: Path, **kw) -> TrainConfig:
    base = dict(dataset=str(dataset), out_dir=str(out), epochs=3, lr=5e-3, progress=False,
                split=(0.5, 0.25, 0.25), device="cpu")
    return TrainConfig(**{**base, **kw})


def test_split_is_seeded_and_disjoint():
    names = [f"{k:06d}" for k in range(20)]
    a = split_names(names, (0.7, 0.2, 0.1), seed=3)
    assert a == split_names(names, (0.7, 0.2, 0.1), seed=3)
    assert sorted(sum(a, [])) == names and [len(x) for x in a] == [14, 4, 2]
    assert a != split_names(names, (0.7, 0.2, 0.1), seed=4)


def test_bootstrap_keeps_every_family_and_its_size():
    """Committee resamples are stratified: a 2-structure family is never left out."""
    names = [f"big.h5__{k:06d}" for k in range(42)] + ["c60.h5__000000", "c60.h5__000001"]
    draws = [bootstrap(names, seed=0, member=m) for m in range(1, 60)]
    for d in draws:
        assert len(d) == len(names) and set(d) <= set(names)
        assert sum(n.startswith("c60") for n in d) == 2  # each family keeps its size
    assert draws[0] == bootstrap(names, seed=0, member=1)  # seeded
    assert len({tuple(d) for d in draws}) == len(draws)  # members differ
    # the unstratified draw of the same size misses the small family in ~13 % of members
    rng = np.random.default_rng(0)
    missed = np.mean([not np.any(rng.integers(0, 44, 44) >= 42) for _ in range(2000)])
    assert 0.08 < missed < 0.18


def test_train_writes_metrics_and_checkpoint_round_trip(dataset, tmp_path):
    path = train(MODEL, _cfg(dataset, tmp_path / "run"))
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2]
    assert set(lines[-1]["val"]["mae_pair_meV"]) <= {"H-H", "H-C", "C-H", "C-C"}
    assert "pp" in lines[-1]["val"]["mae_shell_meV"]
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    per = test["mae_structure_meV"]  # one entry per test structure, averaging to the total
    assert len(per) >= 1 and all(v > 0 for v in per.values())
    assert min(per.values()) * (1 - 1e-6) <= test["mae_meV"] <= max(per.values()) * (1 + 1e-6)
    meta = read_meta(path)
    assert meta["basis"] == {"H": [0], "C": [0, 1]} and meta["e3nn_version"]
    assert meta["distance_range_A"]["C-C"][0] > 1.0
    lo, hi = meta["spectrum_range_eV"]  # the training references' states around E_F
    assert lo < 0 < hi
    model, _ = load_model(path)
    atoms = molecule("C2H4")
    a = predict(model, atoms, device="cpu")
    model2, _ = load_model(path)
    b = predict(model2, atoms, device="cpu")
    np.testing.assert_array_equal(a.h, b.h)


def test_update_meta_adds_facts_and_keeps_the_weights(tmp_path):
    """Facts measured after training go into the metadata; the weights stay bit for bit."""
    from safetensors.torch import load_file

    from ase_deeph.model.checkpoint import update_meta

    path = save_model(HamiltonianNet(MODEL, {"C": (0, 1)}), tmp_path / "m.safetensors")
    before, meta = load_file(str(path)), read_meta(path)
    update_meta(path, spectrum_range_eV=[-20.0, 230.0])
    after = load_file(str(path))
    assert read_meta(path) == meta | {"spectrum_range_eV": [-20.0, 230.0]}
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert sorted(tmp_path.iterdir()) == [path]  # written in place, no temporary left


def test_checkpoint_refuses_mismatch(tmp_path):
    model = HamiltonianNet(MODEL, {"C": (0, 1)})
    path = save_model(model, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="basis mismatch for C"):
        load_model(path, basis={"C": (0, 0, 1)})
    with pytest.raises(ValueError, match="no basis for element N"):
        load_model(path, basis={"N": (0, 1)})
    old = save_model(model, tmp_path / "old.safetensors", {"format_version": 0})
    with pytest.raises(ValueError, match="model format 0"):
        load_model(old)
    other = save_model(model, tmp_path / "e3.safetensors", {"e3nn_version": "0.1.0"})
    with pytest.raises(ValueError, match="e3nn 0.1.0"):
        load_model(other)


def test_checkpoint_without_two_centre_key_loads(tmp_path):
    """Files written before ``ModelConfig.two_centre`` existed load as two_centre=False."""
    torch.manual_seed(0)
    model = HamiltonianNet(dataclasses.replace(MODEL, two_centre=False), {"C": (0, 1)})
    old_cfg = {k: v for k, v in dataclasses.asdict(model.config).items() if k != "two_centre"}
    path = save_model(model, tmp_path / "old.safetensors", {"model_config": old_cfg})
    loaded, _ = load_model(path)
    assert loaded.config.two_centre is False
    atoms = bulk("C", "diamond", a=3.57)
    np.testing.assert_array_equal(predict(model, atoms, device="cpu").h,
                                  predict(loaded, atoms, device="cpu").h)


def test_exact_resume(dataset, tmp_path):
    straight = train_model(MODEL, _cfg(dataset, tmp_path / "a", epochs=4))[1]
    train(MODEL, _cfg(dataset, tmp_path / "b", epochs=2))
    resumed = train_model(MODEL, _cfg(dataset, tmp_path / "b", epochs=4), resume=True)[1]
    for (k, v), w in zip(straight.state_dict().items(), resumed.state_dict().values(),
                         strict=True):
        assert torch.equal(v, w), k
    epochs = [json.loads(x)["epoch"] for x in (tmp_path / "b" / "metrics.jsonl").open()]
    assert epochs == [0, 1, 2, 3]


def test_target_blocks_must_be_graph_edges():
    hs = toy_hs(molecule("C2H4"), seed=0)
    model = HamiltonianNet(dataclasses.replace(MODEL, r_cut=1.2), hs.basis)
    with pytest.raises(ValueError, match="not graph edges"):
        make_sample(hs, 1.2, model.h_head.layout, model.species)


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
@pytest.mark.parametrize("kind", ["mse", "gauge_mse"])
def test_gauge_invariant_loss(kind, spin):
    """H_pred = H_dft + mu S per structure (same mu for all spins) has zero gauge loss."""
    samples = [toy_hs(molecule(m), spin=spin, seed=0) for m in ("C2H4", "CH4")]
    shifted = []
    for hs, mu in zip(samples, (0.3, -0.7), strict=True):
        shift = hs.replace(h=np.repeat(mu * hs.s[None], hs.n_spin_channels, axis=0),
                           spin="none" if spin == "spinor" else spin)
        if spin == "spinor":
            shift = shift.with_spin("spinor")
        shifted.append(hs.replace(h=hs.h + shift.h))
    model = HamiltonianNet(MODEL, {"C": (0, 1), "H": (0,)}, spin)
    batch, moved = (collate([make_sample(hs, MODEL.r_cut, model.h_head.layout, model.species)
                             for hs in group]) for group in (samples, shifted))
    nf, n_rows = model.h_head.layout.n_full, batch["reverse_rows"].shape[0]
    blocks = torch.zeros(n_rows, model.h_head.layout.n_spin, nf * nf, dtype=torch.float64)
    blocks[batch["value_rows"], :, batch["value_pos"]] = moved["h"].T
    loss, _ = batch_loss({"h": blocks.reshape(n_rows, -1, nf, nf)}, batch, kind)
    assert (float(loss) < 1e-20) == (kind == "gauge_mse")
    if spin == "collinear":  # an up/down splitting is physical and must not be removed
        blocks[:, 1] += 0.1 * blocks[:, 0].sign()
        loss, _ = batch_loss({"h": blocks.reshape(n_rows, -1, nf, nf)}, batch, kind)
        assert float(loss) > 1e-6


def test_toml_config(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nr_cut = 4.0\n[train]\ndataset = "d.h5"\nepochs = 7\n')
    model_cfg, train_cfg = from_toml(cfg)
    assert model_cfg.r_cut == 4.0 and train_cfg.epochs == 7
    assert Path(train_cfg.dataset) == (tmp_path / "d.h5").resolve()
    cfg.write_text("[model]\nrcut = 4.0\n")
    with pytest.raises(ValueError, match="unknown keys"):
        from_toml(cfg)


_DDP_SCRIPT = textwrap.dedent('''
    import sys, torch
    from safetensors.torch import save_file
    from ase_deeph.training.config import ModelConfig, TrainConfig
    from ase_deeph.training.trainer import train_model
    data, out = sys.argv[1], sys.argv[2]
    model_cfg = ModelConfig(r_cut=3.3, channels=8, pseudo_channels=2, n_layers=1,
                            radial_hidden=16)
    cfg = TrainConfig(dataset=data, out_dir=out, epochs=2, lr=5e-3, progress=False,
                      split=(0.75, 0.25, 0.0), device="cpu")
    _, model = train_model(model_cfg, cfg)
    rank = torch.distributed.get_rank()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              f"{out}/rank{rank}.safetensors")
''')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_processes_gloo(dataset, tmp_path):
    """torchrun with 2 CPU gloo processes: both ranks end with identical weights."""
    from safetensors.torch import load_file

    script = tmp_path / "ddp_train.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1])]
                                         + os.environ.get("PYTHONPATH", "").split(os.pathsep))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(_free_port()), str(script), str(dataset), str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    w0 = load_file(str(tmp_path / "run" / "rank0.safetensors"))
    w1 = load_file(str(tmp_path / "run" / "rank1.safetensors"))
    start = HamiltonianNet(ModelConfig(r_cut=3.3, channels=8, pseudo_channels=2, n_layers=1,
                                       radial_hidden=16), {"C": (0, 1), "H": (0,)})
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert any(not torch.equal(w0[k], v) for k, v in start.state_dict().items()
               if v.is_floating_point())
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_overfit_toy_crystal():
    """Fit one toy diamond-C cell (800 H values) to < 0.1 meV MAE in under a minute on CPU.

    float64; 300 Adam steps, then Levenberg-Marquardt (:mod:`ase_deeph.training.refine`). The time
    includes building the model and the sample; single-threaded.
    """
    import time

    from ase_deeph.training.refine import levenberg_marquardt

    start = time.perf_counter()
    atoms = bulk("C", "diamond", a=3.57)
    atoms.rattle(0.05, seed=1)
    hs = toy_hs(atoms, seed=0)
    torch.manual_seed(0)
    cfg = ModelConfig(r_cut=3.2, channels=8, pseudo_channels=2, n_layers=1, dtype="float64",
                      radial_hidden=32)
    model = HamiltonianNet(cfg, hs.basis)
    sample = make_sample(hs, cfg.r_cut, model.h_head.layout, model.species)
    init_statistics(model, [sample])
    batch = to_device(collate([sample]), torch.device("cpu"), torch.float64)
    scale = float(model.h_head.scale)
    adam = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = batch_loss(forward_batch(model, batch), batch, "mse", scale)
        adam.zero_grad()
        loss.backward()
        adam.step()
    res = levenberg_marquardt(model, batch, time_limit=55 - (time.perf_counter() - start),
                              target_mae_meV=0.05)
    with torch.no_grad():  # independent re-evaluation through the training loss
        mae = 1000 * float(batch_loss(forward_batch(model, batch), batch, "mse")[1].abs().mean())
    elapsed = time.perf_counter() - start
    print(f"overfit: MAE {mae:.4f} meV after {elapsed:.1f} s ({res.steps} LM steps)")
    assert mae < 0.1, f"MAE {mae:.3f} meV"
    assert elapsed < 60, f"{elapsed:.0f} s"
    assert mae == pytest.approx(res.mae_meV, rel=1e-6)


@pytest.mark.parametrize("spin", ["collinear", "spinor"])
def test_train_spin_kinds(tmp_path, spin):
    items = []
    for k, name in enumerate(["CH4", "C2H4", "C2H2"]):
        atoms = molecule(name)
        atoms.rattle(0.03, seed=k)
        items.append((None, toy_hs(atoms, spin=spin, seed=0)))
    save_many(items, tmp_path / "d.h5")
    with_s = spin == "collinear"  # also learn S with the overlap head
    path = train(dataclasses.replace(MODEL, predict_overlap=with_s),
                 _cfg(tmp_path / "d.h5", tmp_path / "run", epochs=2, split=(0.34, 0.33, 0.33)))
    model, meta = load_model(path)
    assert meta["spin"] == spin == model.spin
    hs = predict(model, molecule("CH4"), device="cpu")
    assert hs.spin == spin and hs.hermiticity_error() < 1e-12
    assert (hs.s is not None) == with_s
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert np.isfinite(test["mae_meV"])


def test_batched_forward_equals_single():
    """Collating structures into one disconnected graph changes no predicted value."""
    from ase_deeph.training.trainer import gather_values

    samples_hs = [toy_hs(molecule("C2H4"), seed=0), toy_hs(bulk("C", "diamond", a=3.57), seed=0)]
    torch.manual_seed(0)
    model = HamiltonianNet(dataclasses.replace(MODEL, dtype="float64"), {"C": (0, 1), "H": (0,)})
    samples = [make_sample(hs, MODEL.r_cut, model.h_head.layout, model.species)
               for hs in samples_hs]
    cpu = torch.device("cpu")
    both = to_device(collate(samples), cpu, torch.float64)
    joint = gather_values(forward_batch(model, both)["h"], both)
    single = torch.cat([gather_values(forward_batch(model, b)["h"], b) for b in
                        (to_device(collate([s]), cpu, torch.float64) for s in samples)], dim=1)
    torch.testing.assert_close(joint, single, rtol=0, atol=1e-12)


def test_init_model_fine_tunes_from_weights(dataset, tmp_path):
    first = train(MODEL, _cfg(dataset, tmp_path / "a", epochs=2))
    other = ModelConfig(r_cut=3.3, channels=4, pseudo_channels=2, n_layers=1, radial_hidden=8)
    tuned = train(other, _cfg(dataset, tmp_path / "b", epochs=1, lr=1e-12,
                              init_model=str(first)))
    a, _ = load_model(first)
    b, _ = load_model(tuned)
    assert b.config == a.config  # the settings come from the initial model, not `other`
    atoms = molecule("C2H4")
    ha, hb = predict(a, atoms, device="cpu").h, predict(b, atoms, device="cpu").h
    assert np.max(np.abs(ha - hb)) < 1e-6 and np.max(np.abs(ha)) > 1e-2


@pytest.mark.parametrize("name", sorted(p.name for p in
                                        (Path(__file__).parents[1] / "ase_deeph" / "configs")
                                        .glob("train_*.toml")))
def test_shipped_train_configs_parse(name):
    path = Path(__file__).parents[1] / "ase_deeph" / "configs" / name
    model_cfg, train_cfg = from_toml(path)
    assert Path(train_cfg.dataset).is_absolute() and train_cfg.epochs > 0
    if train_cfg.init_model:  # fine-tuning stage: relative to the config's folder too
        assert Path(train_cfg.init_model).is_absolute()


def test_holdout_names_form_the_test_split(dataset, tmp_path):
    """The same held-out structures for two runs (active learning compares before/after)."""
    from ase_deeph.model.checkpoint import read_meta

    path = train(MODEL, _cfg(dataset, tmp_path / "run", holdout=("000003",), epochs=1))
    ds = read_meta(path)["dataset"]
    assert ds["test_names"] == ["000003"] and ds["n_train"] + ds["n_val"] == 3
    with pytest.raises(ValueError, match="holdout"):
        train(MODEL, _cfg(dataset, tmp_path / "bad", holdout=("999999",), epochs=1))


@pytest.mark.parametrize("family", ["carbon", "silicon"])
def test_shipped_holdout_names_exist_in_their_families(family):
    """``holdout`` of train_<family>.toml: one real structure of each family of >= 4."""
    from ase_deeph.generation.config import GenerateConfig

    root = Path(__file__).parents[1] / "ase_deeph" / "configs"
    _, train_cfg = from_toml(root / f"train_{family}.toml")
    assert Path(train_cfg.dataset).name == f"{family}.h5" and train_cfg.committee == 3
    seen = set()
    for name in train_cfg.holdout:
        stem, index = name.split(".h5__")
        cfg = GenerateConfig.from_toml(root / family / f"{stem}.toml")
        assert 0 <= int(index) < cfg.n_structures, name
        seen.add(stem)
    large = {p.stem for p in (root / family).glob("*.toml")
             if GenerateConfig.from_toml(p).n_structures >= 4}
    assert seen == large and len(train_cfg.holdout) == len(large)  # one per family of >= 4
