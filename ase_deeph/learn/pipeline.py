"""``ase-deeph learn``: from a structure to a validated model in one resumable call.

Files in the output folder ``DIR``:

* ``plan.json`` (:class:`~ase_deeph.learn.plan.LearnPlan`, made once; a rerun reuses it and
  never repeats the preflight), ``structure.extxyz`` (the planned unit cell);
* ``generate.toml`` and ``data.h5`` (+ ``data.h5.parts/``: one shard per structure, the
  resumable generator :func:`ase_deeph.generation.generate.generate`);
* ``train.toml`` and ``runs/n<N>/`` (the training run on N structures; ``done.json``
  marks it finished, ``evaluation.json`` holds its errors);
* ``transfer.h5`` (PySCF of the transfer cell, with ``transfer=True``);
* ``model.safetensors`` (the best model of the latest run), ``model.md`` (its card),
  ``learn.json`` (plan summary, errors, wall time).

After the first structure the plan is re-sized once from its measured time
(:func:`ase_deeph.learn.budget.calibrate`). ``more=N`` asks for N structures beyond the
plan's; the larger dataset gets its own training run. ``generate.toml`` names the
structure file by its absolute path, so a folder that was moved cannot be resumed (its
model files stay usable).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import h5py

from ase_deeph.learn import budget, report
from ase_deeph.learn.configs import generate_config, to_toml, train_tables
from ase_deeph.learn.plan import LearnPlan, make_plan
from interfaces.atomic import atomic_path, write_text
from interfaces.errors import ConfigError, DeepHError

__all__ = ["LearnResult", "learn", "plan_for"]

#: Structure index of the transfer cell (far beyond any training index).
TRANSFER_INDEX = 10**6


@dataclass(frozen=True)
class LearnResult:
    """Outcome of :func:`learn`.

    Attributes
    ----------
    out_dir, model_file, card_file : Path
        The output folder, ``DIR/model.safetensors`` and ``DIR/model.md``.
    plan : LearnPlan
        The (calibrated) plan.
    results : dict
        ``generate``, ``train``, ``evaluation`` (errors in meV), ``wall_seconds``.
    usage : str
        Python lines that use the model.
    """

    out_dir: Path
    model_file: Path
    card_file: Path
    plan: LearnPlan
    results: dict
    usage: str


def say(progress: bool, text: str) -> None:
    """Print ``text`` when ``progress`` is on."""
    if progress:
        print(text, flush=True)


def plan_for(structure, out_dir, budget_min: float = 60.0, seed: int = 0,
             transfer: bool = False, **plan_kwargs) -> LearnPlan:
    """Return the plan of ``DIR``: read from ``DIR/plan.json``, else made and saved there.

    Raises
    ------
    ConfigError
        ``DIR/plan.json`` was made for a different request (structure, budget, seed...).
    """
    out = Path(out_dir)
    path = out / "plan.json"
    if path.exists():
        plan = LearnPlan.load(path)
        want = {"structure": str(structure), "budget_min": float(budget_min),
                "seed": int(seed), "transfer": bool(transfer)} | plan_kwargs
        diff = sorted(k for k, v in want.items() if plan.request.get(k, v) != v)
        if diff:
            were = ", ".join(f"{k}={plan.request.get(k)!r}" for k in diff)
            raise ConfigError(f"{out} holds a learn run made with other settings ({were}); "
                              "rerun with them, or choose another -o")
        return plan
    plan = make_plan(structure, budget_min, seed=seed, transfer=transfer, **plan_kwargs)
    out.mkdir(parents=True, exist_ok=True)
    plan.save(path)
    return plan


# ------------------------------------------------------------------------- stages
def _generate(plan: LearnPlan, out: Path, n_total: int, progress: bool):
    from ase_deeph.generation.generate import generate

    cfg = generate_config(plan, out / "structure.extxyz", n_total)
    write_text(out / "generate.toml", to_toml(cfg, "generator config made by ase-deeph learn "
                                             "(plan.json); rerun: ase-deeph generate "
                                             "generate.toml -o data.h5"))
    data = out / "data.h5"
    if data.exists():
        from ase_deeph.generation.config import GenerateConfig

        with h5py.File(data, "r") as f:
            have = json.loads(f.attrs.get("generate_config", "null"))
            failures = json.loads(f.attrs.get("failures", "[]"))
        if have == json.loads(json.dumps(GenerateConfig.from_dict(cfg).to_dict())):
            from interfaces import h5io

            return {"n_done": len(h5io.names(data)), "failures": failures, "seconds": 0.0}
    rep = generate(cfg, data, progress=progress)
    return {"n_done": rep.n_done, "failures": [list(f) for f in rep.failures],
            "seconds": rep.seconds}


def _calibrate(plan: LearnPlan, out: Path, progress: bool) -> LearnPlan:
    """Label structure 0 alone and re-size the plan from its measured time."""
    _generate(plan, out, 1, progress)
    shard = out / "data.h5.parts" / "000000.h5"
    if not shard.exists():
        return plan
    seconds = _shard_seconds(shard)
    plan = budget.calibrate(plan, seconds)
    plan.save(out / "plan.json")
    say(progress, plan.notes[-1])
    return plan


def train_stage(plan: LearnPlan, out: Path, n_done: int, run_dir: str, progress: bool,
                overrides: dict | None = None, config: str = "train.toml") -> dict:
    """Train (or resume) ``run_dir`` on the first ``n_done`` structures; return its facts.

    ``overrides`` update the plan's ``[train]`` table (e.g. ``committee``, ``holdout``);
    the config is written to ``DIR/<config>``.
    """
    run = out / run_dir
    done = run / "done.json"
    if done.exists():
        return json.loads(done.read_text())
    from ase_deeph.training.config import from_toml
    from ase_deeph.training.trainer import train

    tables = train_tables(plan, n_done, run_dir, progress)
    tables["train"] |= overrides or {}
    write_text(out / config, to_toml(tables, "training config made by ase-deeph learn; rerun: "
                                             f"ase-deeph train {config} --resume"))
    t0 = time.perf_counter()
    model_cfg, train_cfg = from_toml(out / config)
    train(model_cfg, train_cfg, resume=True)
    from ase_deeph.model.checkpoint import read_meta

    meta = read_meta(run / "model.safetensors")
    epochs_run = sum(1 for _ in open(run / "metrics.jsonl"))
    ds = meta["dataset"]
    info = {"run_dir": run_dir, "seconds": time.perf_counter() - t0, "epochs_run": epochs_run,
            "best_epoch": int(meta["epoch"]), "init_reason": plan.init_reason,
            "n_train": ds["n_train"], "n_val": ds["n_val"], "n_test": ds["n_test"],
            "test_names": ds["test_names"]}
    write_text(done, json.dumps(info, indent=1))
    return info


def _transfer_reference(plan: LearnPlan, out: Path):
    """PySCF data of the transfer cell (computed once into ``DIR/transfer.h5``)."""
    import interfaces
    from ase_deeph.generation.config import GenerateConfig
    from ase_deeph.generation.generate import build_structure
    from interfaces import pyscf as ps
    from interfaces.kspacing import default_kmesh

    path = out / "transfer.h5"
    if path.exists():
        return interfaces.load(path), json.loads((out / "transfer.json").read_text())
    cfg = GenerateConfig.from_dict(generate_config(plan, out / "structure.extxyz", 1))
    cfg = dataclasses.replace(cfg, system=dataclasses.replace(
        cfg.system, supercell=tuple(plan.transfer_supercell)))
    atoms, _ = build_structure(cfg, TRANSFER_INDEX)
    kw = cfg.dft.run_kwargs() | {"kmesh": default_kmesh(atoms, plan.kspacing)}
    t0 = time.perf_counter()
    hs = ps.run(atoms, **kw)
    info = {"pyscf_seconds": time.perf_counter() - t0, "kmesh": list(kw["kmesh"])}
    write_text(out / "transfer.json", json.dumps(info))
    hs.save(path, overwrite=True)
    return hs, info


def evaluate_stage(plan: LearnPlan, out: Path, info: dict) -> dict:
    """Held-out (and, with ``plan.transfer``, transfer) errors of a run; cached per run."""
    run = out / info["run_dir"]
    path = run / "evaluation.json"
    if path.exists():
        return json.loads(path.read_text())
    from ase_deeph.learn.evaluate import compare_structure, evaluate_heldout

    test = json.loads((run / "test_metrics.json").read_text()) if (
        run / "test_metrics.json").exists() else {}
    held = evaluate_heldout(run / "model.safetensors", out / "data.h5", info["test_names"],
                            plan.smearing)
    result = {"test_h_mae_meV": test.get("mae_meV"), "test_metrics": test,
              "heldout_bands": held["bands"], "heldout": held["structures"], "transfer": None}
    if plan.transfer:
        from ase_deeph.inference.provider import ModelProvider

        ref, tinfo = _transfer_reference(plan, out)
        provider = ModelProvider.from_any(str(run / "model.safetensors"), device="cpu")
        row = compare_structure(provider, ref, plan.smearing)
        result["transfer"] = {**tinfo, "n_atoms": row["n_atoms"], "h_mae_meV": row["h_mae_meV"],
                              "bands": row["bands"],
                              "fermi_error_meV": row["bands"]["fermi_error_meV"]}
    write_text(path, json.dumps(result, indent=1))
    return result


# --------------------------------------------------------------------------- driver
def learn(structure, out_dir, budget_min: float = 60.0, more: int = 0, seed: int = 0,
          progress: bool = True, transfer: bool = False, calibrate: bool = True,
          plan: LearnPlan | None = None, **plan_kwargs) -> LearnResult:
    """Plan, generate, train, evaluate and document a model of one material.

    Parameters
    ----------
    structure : str or path-like
        Structure file ASE can read, or an ``ase.build`` call as text.
    out_dir : path-like
        Output folder ``DIR`` (created; a second call with the same arguments resumes).
    budget_min : float
        Wall-time budget in minutes that sizes the plan (:mod:`ase_deeph.learn.budget`).
    more : int
        Structures beyond the plan's (the larger dataset is trained anew).
    seed : int
        Seed of the structures, the split and the training.
    progress : bool
        Print the plan, progress bars and the result.
    transfer : bool
        Also compute a cell twice as large with PySCF and compare (when the budget allows).
    calibrate : bool
        Re-size the plan from the measured time of structure 0.
    plan : LearnPlan, optional
        Use this plan instead of making one (tests); saved as ``DIR/plan.json``.
    **plan_kwargs
        Further :func:`ase_deeph.learn.plan.make_plan` arguments (``basis``, ``r_cut``...).

    Returns
    -------
    LearnResult
    """
    t0 = time.perf_counter()
    if int(more) < 0:
        raise ConfigError(f"--more must be >= 0, got {more}")
    out = Path(out_dir)
    plan = _open_plan(structure, out, plan, budget_min, seed, transfer, progress, plan_kwargs)
    if calibrate and plan.calibrated_seconds is None:
        plan = _calibrate(plan, out, progress)
    n_total = plan.n_structures + int(more)
    gen = _label(plan, out, n_total, progress)
    info = train_stage(plan, out, gen["n_done"], f"runs/n{n_total}", progress)
    evaluation = evaluate_stage(plan, out, info)
    return _publish(plan, out, {"generate": gen, "train": info, "evaluation": evaluation},
                    more, time.perf_counter() - t0, progress)


def _open_plan(structure, out: Path, plan: LearnPlan | None, budget_min: float, seed: int,
               transfer: bool, progress: bool, plan_kwargs: dict) -> LearnPlan:
    """Return the plan of ``out`` (made, given or reloaded); write the structure file."""
    if plan is not None and not (out / "plan.json").exists():
        out.mkdir(parents=True, exist_ok=True)
        plan.save(out / "plan.json")
    plan = plan_for(structure, out, budget_min, seed, transfer, **plan_kwargs) \
        if plan is None else LearnPlan.load(out / "plan.json")
    say(progress, plan.describe())
    if not (out / "structure.extxyz").exists():
        from ase.io import write

        with atomic_path(out / "structure.extxyz") as tmp:
            write(tmp, plan.unit_atoms(), format="extxyz")
    return plan


def _label(plan: LearnPlan, out: Path, n_total: int, progress: bool) -> dict:
    """Generate the labelled structures; refuse to go on with fewer than the minimum."""
    gen = _generate(plan, out, n_total, progress)
    if gen["n_done"] < budget.N_MIN:
        raise DeepHError(f"only {gen['n_done']} of {n_total} structures were labelled "
                         f"(need {budget.N_MIN}); failures: {gen['failures'][:3]}")
    seconds = [_shard_seconds(p) for p in sorted((out / "data.h5.parts").glob("[0-9]*.h5"))
               if int(p.stem) < n_total]
    return gen | {"n_failed": len(gen["failures"]),
                  "seconds_mean": sum(seconds) / len(seconds) if seconds else None}


def _publish(plan: LearnPlan, out: Path, results: dict, more: int, seconds: float,
             progress: bool) -> LearnResult:
    """Copy the model to ``DIR/model.safetensors``; write the card and ``learn.json``."""
    model_file = out / "model.safetensors"
    with atomic_path(model_file) as tmp:
        shutil.copyfile(out / results["train"]["run_dir"] / "model.safetensors", tmp)
    previous = json.loads((out / "learn.json").read_text()) if (out / "learn.json").exists() \
        else {}
    results = results | {"wall_seconds": previous.get("wall_seconds", 0.0) + seconds}
    write_text(out / "model.md", report.card(plan, str(out), results, more))
    write_text(out / "learn.json", json.dumps(
        {"structure": plan.structure, "name": plan.name, "n_atoms": plan.n_atoms,
         "more": more, "command": report.command_line(plan, str(out), more), **results},
        indent=1))
    usage = report.usage(str(model_file))
    say(progress, f"model: {model_file} (card {out / 'model.md'})\n{usage}")
    return LearnResult(out, model_file, out / "model.md", plan, results, usage)


def _shard_seconds(path: Path) -> float:
    """Measured seconds of one generator shard (metadata ``seconds``; arrays not read)."""
    with h5py.File(path, "r") as f:  # the HSData file layout: structures/<name>
        grp = next(iter(f["structures"].values()))
        return float(json.loads(grp.attrs.get("metadata", "{}")).get("seconds", 0.0))
