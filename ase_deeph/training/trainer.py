"""Training: split by structure, MSE (or gauge-invariant MSE) on blocks, exact resume, DDP.

Run folder contents: ``model.safetensors`` (best validation model, see
:mod:`ase_deeph.model.checkpoint`), ``state.pt`` (resume state: weights, optimizer, scheduler,
RNG states, epoch; plain tensors and numbers, loaded with ``weights_only=True``),
``metrics.jsonl`` (one JSON line per epoch, MAE in meV per element pair and shell pair)
and ``test_metrics.json``. Under ``torchrun`` every process trains on its shard of each
epoch's shuffled structures (DistributedDataParallel, gloo on CPU / nccl on GPU); only
rank 0 writes files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from ase_deeph.inference.predict import resolve_device, tune_cpu_allocator
from ase_deeph.model.checkpoint import load_state
from ase_deeph.model.network import HamiltonianNet
from ase_deeph.training.bandloss import BandSpec, band_loss_terms
from ase_deeph.training.config import ModelConfig, TrainConfig, from_toml
from ase_deeph.training.dataset import SHELL_NAMES, HSDataset, collate, scan_dataset
from ase_deeph.training.losses import batch_loss, gather_values, to_device
from ase_deeph.training.runs import (
    RunExistsError,
    claim_run,
    log_metrics,
    provenance,
    save_state,
    set_rng_state,
)
from interfaces.atomic import write_text
from interfaces.errors import ConfigError

__all__ = ["RunExistsError", "bootstrap", "train", "train_model", "train_from_toml", "split_names",
           "config_split", "evaluate", "batch_loss", "init_statistics", "forward_batch",
           "to_device", "gather_values"]


def config_split(train_cfg: TrainConfig, names: list[str]) -> tuple[list[str], ...]:
    """Train / validation / test names of a dataset under a training config.

    ``max_structures`` truncates, the ``holdout`` names form the test split (the drawn test
    structures then train), the rest is :func:`split_names`. Committee members resample
    the training split on top of this (:func:`_build`).
    """
    if train_cfg.max_structures:
        names = names[: train_cfg.max_structures]
    held = [n for n in names if n in set(train_cfg.holdout)]
    missing = sorted(set(train_cfg.holdout) - set(held))
    if missing:
        raise ConfigError(f"{train_cfg.dataset}: holdout names {missing[:5]} are not in it")
    splits = split_names([n for n in names if n not in set(held)], train_cfg.split,
                         train_cfg.seed)
    if held:
        splits = (splits[0] + splits[2], splits[1], held)  # fixed test set; drawn one trains
    return splits


def bootstrap(names: list[str], seed: int, member: int) -> list[str]:
    """Resample ``names`` with replacement within each structure family (stratified).

    A family is a name's part before its last ``"__"`` (``"7_fullerene.h5"`` of
    ``"7_fullerene.h5__000001"``); each keeps its size. A plain resample can miss a small
    family entirely (two C60 among 44 structures: 13 % of draws), and a member blind to a
    family that validation holds then keeps its best validation loss from an early epoch
    (measured: member 1 of the first eight-family committee stopped at epoch 41 of 300,
    graphene bands 41 meV off against 3 meV for member 0).
    """
    rng = np.random.default_rng([seed, member])
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(name.rsplit("__", 1)[0], []).append(name)
    out = []
    for family in sorted(families):
        group = families[family]
        out += [group[k] for k in rng.integers(0, len(group), len(group))]
    return out


def split_names(names: list[str], fractions, seed: int) -> tuple[list[str], ...]:
    """Seeded split of structure names into (train, validation, test)."""
    perm = np.random.default_rng(seed).permutation(len(names))
    n_train = max(1, int(round(fractions[0] * len(names))))
    n_val = int(round(fractions[1] * len(names)))
    if fractions[1] > 0 and n_val == 0 and len(names) > n_train:
        n_val = 1
    pick = [names[k] for k in perm]
    return pick[:n_train], pick[n_train:n_train + n_val], pick[n_train + n_val:]


def forward_batch(model, batch: dict) -> dict:
    """Run the model (or its DDP wrapper) on a collated batch; returns its block dict."""
    core = model.module if hasattr(model, "module") else model
    species = core.species_of(batch["numbers"])
    return model(species, batch["edge_index"], batch["vectors"], batch["reverse_rows"])


@torch.no_grad()
def evaluate(model, dataset, device, dtype, loss_kind: str, species: list[str],
             band_weight: float = 0.0) -> dict:
    """Loss and MAE (meV) overall, per element pair, shell pair and structure on a dataset.

    With band targets in the samples, also ``band_mae_meV`` (mean first-order band error
    |M_nn| of the window states, :mod:`ase_deeph.training.bandloss`) and ``band_rms_meV``; the
    ``loss`` then includes ``band_weight`` times the band term.
    """
    if len(dataset) == 0:
        return {}
    model.eval()
    n_sp = len(species)
    err_sum: dict[str, dict] = {"pair": {}, "shell": {}}
    tot_loss = tot_abs = n_val = 0.0
    band = [0.0, 0.0, 0]  # sum |M|^2, sum |M_nn|, window states
    per_structure = {}
    for k in range(len(dataset)):
        batch = to_device(collate([dataset[k]]), device, dtype)
        out = forward_batch(model, batch)
        loss, resid = batch_loss(out, batch, loss_kind, scale=1.0)
        if batch.get("bands"):
            sq, ab, cnt = band_loss_terms(resid, batch["value_ptr"], batch["bands"],
                                          gauge=loss_kind == "gauge_mse")
            band = [band[0] + float(sq), band[1] + float(ab), band[2] + cnt]
        tot_loss += float(loss) * resid.shape[1]
        err = resid.abs().mean(dim=0) * 1000.0  # [n_values] meV
        tot_abs += float(err.sum())
        n_val += resid.shape[1]
        per_structure[getattr(dataset, "names", range(len(dataset)))[k]] = float(err.mean())
        for key, lab in (("pair", batch["pair_label"]), ("shell", batch["shell_label"])):
            for u in torch.unique(lab).tolist():
                sel = err[lab == u]
                acc = err_sum[key].setdefault(u, [0.0, 0])
                acc[0] += float(sel.sum())
                acc[1] += sel.numel()
    model.train()
    pair_name = {a * n_sp + b: f"{species[a]}-{species[b]}"
                 for a in range(n_sp) for b in range(n_sp)}
    result = {
        "loss": tot_loss / n_val + band_weight * band[0] / max(band[2], 1),
        "mae_meV": tot_abs / n_val,
        "mae_pair_meV": {pair_name[u]: s / n for u, (s, n) in sorted(err_sum["pair"].items())},
        "mae_shell_meV": {SHELL_NAMES[u // 10] + SHELL_NAMES[u % 10]: s / n
                          for u, (s, n) in sorted(err_sum["shell"].items())},
        "mae_structure_meV": per_structure,
    }
    if band[2]:
        result["band_mae_meV"] = 1000.0 * band[1] / band[2]
        result["band_rms_meV"] = 1000.0 * math.sqrt(band[0] / band[2])
    return result


@torch.no_grad()
def init_statistics(model: HamiltonianNet, dataset, n_max: int = 32) -> None:
    """Per-species on-site L = 0 means and the RMS of off-site values (output scale)."""
    heads = [("h", model.h_head)] + ([("s", model.s_head)] if model.s_head is not None else [])
    for key, head in heads:
        sums = torch.zeros_like(head.onsite_bias, dtype=torch.float64)
        count = torch.zeros(sums.shape[0], dtype=torch.float64)
        sq = n_off = 0.0
        for k in range(min(len(dataset), n_max)):
            smp = dataset[k]
            if key == "s" and "s" not in smp:
                continue
            n_at = smp["numbers"].shape[0]
            target = smp["h"] if key == "h" else smp["s"][None]
            rows, n_spin, nf = smp["reverse_rows"].shape[0], target.shape[0], head.layout.n_full
            full = torch.zeros(rows, n_spin, nf * nf, dtype=torch.float64)
            full[smp["value_rows"], :, smp["value_pos"]] = target.T.double()
            x = head.layout.disassemble(full[:n_at].reshape(n_at, n_spin, nf, nf))
            species = model.species_of(smp["numbers"])
            sums.index_add_(0, species, x[:, : sums.shape[1]])
            count.index_add_(0, species, torch.ones(n_at, dtype=torch.float64))
            off = smp["value_rows"] >= n_at
            sq += float((target[:, off].double() ** 2).sum())
            n_off += int(off.sum()) * n_spin
        head.onsite_bias.copy_(sums / count.clamp(min=1)[:, None])
        head.scale.fill_(math.sqrt(sq / n_off) if n_off else 1.0)


def _scheduler(opt, cfg: TrainConfig):
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=cfg.plateau_factor, patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    floor = cfg.min_lr / cfg.lr

    def factor(epoch: int) -> float:
        if epoch < cfg.warmup_epochs:
            return (epoch + 1) / (cfg.warmup_epochs + 1)
        t = (epoch - cfg.warmup_epochs) / max(cfg.epochs - cfg.warmup_epochs, 1)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _distributed(device_name: str) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if device.type == "cpu":
        tune_cpu_allocator()
    return rank, world, device


def _epoch_batches(n: int, cfg: TrainConfig, epoch: int, rank: int, world: int):
    """Return this rank's batches of one epoch: a seeded permutation, padded, sharded."""
    perm = np.random.default_rng([cfg.seed, epoch]).permutation(n)
    per = world * cfg.batch_size
    n_pad = (-len(perm)) % per
    perm = np.resize(perm, len(perm) + n_pad)  # wraps around like DistributedSampler
    mine = perm[rank::world]
    return [mine[k:k + cfg.batch_size].tolist() for k in range(0, len(mine), cfg.batch_size)]


def _optimizer(model, cfg: TrainConfig, state: dict | None):
    """AdamW, its schedule and (start epoch, best score, bad epochs), restored on resume."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = _scheduler(opt, cfg)
    if state is None:
        return opt, sched, (0, math.inf, 0)
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return opt, sched, (state["epoch"] + 1, state["best"], state["bad"])


def _build(model_cfg: ModelConfig, train_cfg: TrainConfig, out: Path, resume: bool):
    """Model, datasets and (for a resume) the saved state."""
    basis, spin, names = scan_dataset(train_cfg.dataset)
    splits = config_split(train_cfg, names)
    if train_cfg.member > 0:  # a committee member: bootstrap resample of the training split
        splits = (bootstrap(splits[0], train_cfg.seed, train_cfg.member), *splits[1:])
    seed = train_cfg.seed + 1000 * train_cfg.member  # its own initialisation
    state = None
    if resume and (out / "state.pt").exists():
        state = load_state(out / "state.pt")
        model_cfg = ModelConfig(**json.loads(state["model_config"]))
    init = None
    if state is None and train_cfg.init_model:
        from ase_deeph.model.checkpoint import load_model

        init, _ = load_model(train_cfg.init_model, basis=basis)
        model_cfg = init.config
    torch.manual_seed(seed)
    probe = HamiltonianNet(model_cfg, basis, spin)
    bands = (BandSpec(train_cfg.band_kmesh, train_cfg.band_window)
             if train_cfg.band_weight > 0 else None)
    sets = [HSDataset(train_cfg.dataset, sp, model_cfg.r_cut, probe.h_head.layout, probe.species,
                      bands) for sp in splits]
    if init is not None:
        model = init.train()
    elif state is None:
        n_e = sum(sets[0][k]["edge_index"].shape[1] for k in range(len(sets[0])))
        n_a = sum(sets[0][k]["numbers"].shape[0] for k in range(len(sets[0])))
        if train_cfg.member == 0:  # members > 0 keep member 0's value (one network shape)
            model_cfg = dataclasses.replace(model_cfg,
                                            avg_neighbors=max(n_e / max(n_a, 1), 1.0))
        torch.manual_seed(seed)
        model = HamiltonianNet(model_cfg, basis, spin)
        init_statistics(model, sets[0])
    else:
        torch.manual_seed(seed)
        model = HamiltonianNet(model_cfg, basis, spin)
        model.load_state_dict(state["model"])
    return model, model_cfg, sets, splits, state


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, dataset_path=None, out_dir=None,
          resume: bool = False, force: bool = False) -> Path:
    """Train a model; returns the path of the best model file.

    Parameters
    ----------
    model_cfg, train_cfg : ModelConfig, TrainConfig
        Configuration (``train_cfg.dataset`` / ``out_dir`` unless given here).
    dataset_path, out_dir : path-like, optional
        Override the dataset file and the run folder.
    resume : bool
        Continue exactly from ``out_dir/state.pt`` when it exists.
    force : bool
        Replace a run already in ``out_dir``; without it (and without ``resume``) such a
        folder raises :class:`RunExistsError`.
    """
    if train_cfg.committee > 1:
        from ase_deeph.training.committee import train_committee

        return train_committee(model_cfg, train_cfg, dataset_path, out_dir, resume, force)
    return train_model(model_cfg, train_cfg, dataset_path, out_dir, resume, force)[0]


def train_model(model_cfg: ModelConfig, train_cfg: TrainConfig, dataset_path=None,
                out_dir=None, resume: bool = False,
                force: bool = False) -> tuple[Path, HamiltonianNet]:
    """As :func:`train`, also returning this process's final model (e.g. to compare ranks)."""
    from ase_deeph.model.checkpoint import save_model

    train_cfg = dataclasses.replace(train_cfg, dataset=str(dataset_path or train_cfg.dataset),
                                    out_dir=str(out_dir or train_cfg.out_dir))
    out = Path(train_cfg.out_dir)
    rank, world, device = _distributed(train_cfg.device)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        claim_run(out, resume, force)
    model, model_cfg, sets, splits, state = _build(model_cfg, train_cfg, out, resume)
    dtype = getattr(torch, model_cfg.dtype)
    model = model.to(device)
    opt, sched, (start, best, bad) = _optimizer(model, train_cfg, state)
    # find_unused_parameters: an overlap head without S targets, or empty weights, get no grad
    net = (torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
           if world > 1 else model)
    meta = provenance(train_cfg, splits, sets) if rank == 0 else {}
    for epoch in range(start, train_cfg.epochs):
        if bad >= train_cfg.early_stop_patience:
            break
        t0 = time.perf_counter()
        train_loss = _run_epoch(net, model, opt, sets[0], train_cfg, epoch, rank, world,
                                device, dtype)
        val = evaluate(model, sets[1] if len(sets[1]) else sets[0], device, dtype,
                       train_cfg.loss, model.species, train_cfg.band_weight)
        score = val["loss"]
        if train_cfg.schedule == "plateau":
            sched.step(score)
        else:
            sched.step()
        improved = score < best
        best, bad = (score, 0) if improved else (best, bad + 1)
        if rank == 0:
            if improved:
                save_model(model, out / "model.safetensors", {**meta, "epoch": epoch,
                                                              "val": val})
            save_state(out / "state.pt", model, opt, sched, epoch, best, bad, model_cfg)
            log_metrics(out, {"epoch": epoch, "lr": opt.param_groups[0]["lr"],
                              "train_loss": train_loss, "val": val,
                              "time_s": time.perf_counter() - t0})
    if rank == 0 and len(sets[2]):
        _test(out, sets[2], device, dtype, train_cfg.loss, model.species)
    if world > 1:
        dist.barrier()
    return out / "model.safetensors", model


def _test(out: Path, dataset, device, dtype, loss: str, species: list[str]) -> None:
    """Evaluate the best model on the test structures -> ``test_metrics.json``."""
    from ase_deeph.model.checkpoint import load_model

    best_model, _ = load_model(out / "model.safetensors", device=str(device))
    test = evaluate(best_model, dataset, device, dtype, loss, species)
    write_text(out / "test_metrics.json", json.dumps(test, indent=1))


def _run_epoch(net, model, opt, dataset, cfg: TrainConfig, epoch: int, rank: int, world: int,
               device, dtype) -> float:
    batches = _epoch_batches(len(dataset), cfg, epoch, rank, world)
    if cfg.progress and rank == 0:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"epoch {epoch}", leave=False)
    total = 0.0
    scale = float(model.h_head.scale)
    for idx in batches:
        batch = to_device(collate([dataset[k] for k in idx]), device, dtype)
        loss, _ = batch_loss(forward_batch(net, batch), batch, cfg.loss, scale,
                             cfg.overlap_weight, cfg.band_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += loss.item()
    return total / max(len(batches), 1)


def train_from_toml(path, out_dir=None, resume: bool = False, force: bool = False) -> Path:
    """``ase-deeph train CONFIG.toml``: read the config and call :func:`train`."""
    model_cfg, train_cfg = from_toml(path)
    return train(model_cfg, train_cfg, out_dir=out_dir, resume=resume, force=force)
