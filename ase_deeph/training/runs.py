"""Run folders: claiming one, its resume state, its metrics log and the model's provenance.

A run folder holds ``model.safetensors``, ``state.pt``, ``metrics.jsonl`` and
``test_metrics.json`` (see :mod:`ase_deeph.training.trainer`); these helpers write them
atomically and refuse to replace a run unless asked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import numpy as np
import torch

from ase_deeph.model.config import ModelConfig
from ase_deeph.training.config import TrainConfig
from interfaces.atomic import atomic_path
from interfaces.errors import DeepHError

__all__ = ["RUN_FILES", "RunExistsError", "claim_run", "electrons_and_overlap", "log_metrics",
           "provenance", "rng_state", "save_state", "set_rng_state"]


def rng_state() -> dict:
    """torch, numpy and Python RNG states as tensors and strings (safe to reload)."""
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].copy()),
            "numpy_pos": int(np_state[2]), "python": json.dumps(random.getstate())}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy(), state["numpy_pos"], 0, 0.0))
    py = json.loads(state["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))


def save_state(path: Path, model, opt, sched, epoch: int, best: float, bad: int,
                model_cfg: ModelConfig) -> None:
    """Write the resume state (plain tensors and numbers) atomically."""
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "epoch": epoch, "best": best, "bad": bad,
             "rng": rng_state(), "model_config": json.dumps(dataclasses.asdict(model_cfg))}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def provenance(train_cfg: TrainConfig, splits, sets) -> dict:
    """Dataset, config, distance range and valence/overlap facts stored in the model file."""
    ranges: dict[str, list[float]] = {}
    for k in range(len(sets[0])):
        for name, (lo, hi) in sets[0][k]["min_dist"].items():
            cur = ranges.setdefault(name, [lo, hi])
            ranges[name] = [min(cur[0], lo), max(cur[1], hi)]
    path = Path(train_cfg.dataset)
    return {"dataset": {"path": str(path.resolve()), "size_bytes": path.stat().st_size,
                        "n_train": len(splits[0]), "n_val": len(splits[1]),
                        "n_test": len(splits[2]), "test_names": splits[2]},
            "train_config": dataclasses.asdict(train_cfg),
            "distance_range_A": ranges,
            "spectrum_range_eV": spectrum_range(path, splits[0]),
            **electrons_and_overlap(path, splits[0])}


def spectrum_range(path: Path, names: list[str], max_orbitals: int = 3000) -> list[float] | None:
    """Lowest and highest Gamma-point state of the training references, eV relative to E_F.

    The range the model has seen (structures up to ``max_orbitals`` orbitals, solved as
    references are, S projected at ``REFERENCE``). Solves warn when a prediction's states
    leave it by more than :data:`~ase_deeph.solvers.conditioning.SPECTRUM_MARGIN`. E_F is
    the file's, else from the electron count at Gamma. None when no structure qualifies
    (no overlap, neither E_F nor electron count, all too large).
    """
    import interfaces
    from ase_deeph import solvers
    from ase_deeph.solvers.conditioning import REFERENCE

    lo, hi = math.inf, -math.inf
    for name in names:
        hs = interfaces.load(path, name)
        ef = hs.fermi_level
        if hs.s is None or hs.n_orbitals > max_orbitals or not (
                math.isfinite(ef) or math.isfinite(hs.n_electrons)):
            continue
        e = solvers.solve(hs, np.zeros((1, 3)), ill_threshold=REFERENCE).eigenvalues
        if not math.isfinite(ef):  # E_F from the electron count at Gamma
            ef = solvers.fermi_level(e, hs.n_electrons,
                                     spin_degeneracy=solvers.spin_degeneracy(hs.spin)).fermi_level
        e = e[np.isfinite(e)] - ef
        lo, hi = min(lo, float(e.min())), max(hi, float(e.max()))
    return [round(lo, 3), round(hi, 3)] if lo <= hi else None


def electrons_and_overlap(path: Path, names: list[str]) -> dict:
    """Return the valence electrons per element and the source of S for new structures.

    Valence counts come from a least-squares fit over the training structures; the S
    source is the dataset's basis (PySCF or toy), so S of a new structure is exact.
    """
    import interfaces

    rows, counts, source = [], [], {"kind": "none"}
    for name in names:
        hs = interfaces.load(path, name)
        symbols = sorted(hs.basis)
        rows.append({el: hs.atoms.get_chemical_symbols().count(el) for el in symbols})
        counts.append(hs.n_electrons)
        md = hs.metadata
        if hs.source_code == "pyscf" and "basis_name" in md:
            source = {"kind": "pyscf", "basis": md["basis_name"], "r_cut": md.get("r_cut")}
        elif hs.source_code == "toy":
            source = {"kind": "toy", "seed": int(md.get("toy_seed", 0))}
        elif "overlap" in md and isinstance(md["overlap"], dict):
            source = {"kind": "nao", **md["overlap"]}
    elements = sorted({el for r in rows for el in r})
    valence = {}
    if rows and np.all(np.isfinite(counts)):
        a = np.array([[r.get(el, 0) for el in elements] for r in rows], dtype=float)
        sol, *_ = np.linalg.lstsq(a, np.array(counts, dtype=float), rcond=None)
        if np.allclose(a @ sol, counts, atol=1e-6):
            valence = {el: float(round(v, 6)) for el, v in zip(elements, sol, strict=True)}
    return {"valence_electrons": valence, "overlap_source": source}


#: Files of a run folder; a new run refuses to replace them unless ``force``.
RUN_FILES = ("model.safetensors", "state.pt", "metrics.jsonl", "test_metrics.json")


class RunExistsError(DeepHError, FileExistsError):
    """A run folder already holds a run, and neither resume nor force was asked for."""


def claim_run(out: Path, resume: bool, force: bool) -> None:
    """Refuse to overwrite a finished or interrupted run; with ``force`` clear its files."""
    present = [n for n in RUN_FILES if (out / n).exists()]
    if not present or resume:
        return
    if not force:
        raise RunExistsError(
            f"{out} already holds a run ({', '.join(present)}); continue it with --resume "
            "(resume=True), replace it with --force (force=True), or choose another -o")
    for name in present:
        (out / name).unlink()


def log_metrics(out: Path, record: dict) -> None:
    """Append one JSON line to ``metrics.jsonl``."""
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
