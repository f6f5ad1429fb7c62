"""The config files ``ase-deeph learn`` writes: ``generate.toml`` and ``train.toml``.

Both are ordinary configs of ``ase-deeph generate`` and ``ase-deeph train`` (the plan's
choices, written out so that each stage can also be rerun by hand).
"""

from __future__ import annotations

import json
from pathlib import Path

from ase_deeph.learn import budget
from ase_deeph.learn.plan import LearnPlan

__all__ = ["to_toml", "generate_config", "train_tables"]


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    return "[" + ", ".join(_toml_value(x) for x in v) + "]"


def to_toml(data: dict, header: str) -> str:
    """Write a two-level dict (scalars, then tables) as TOML; None values are left out."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k} = {_toml_value(v)}" for k, v in data.items()
              if v is not None and not isinstance(v, dict)]
    for name, table in data.items():
        if isinstance(table, dict):
            lines += ["", f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in table.items()
                                          if v is not None and v != ""]
    return "\n".join(lines) + "\n"


def generate_config(plan: LearnPlan, structure_file: Path, n_structures: int) -> dict:
    """Return the generator config (``GenerateConfig.from_dict`` input) of a plan."""
    return {"n_structures": int(n_structures), "seed": plan.seed,
            "system": {"structure": str(structure_file), "supercell": list(plan.supercell)},
            "perturb": {"rattle": list(plan.rattle), "strain": plan.strain},
            "dft": {"basis": plan.basis, "xc": plan.xc, "kmesh": list(plan.kmesh),
                    "ke_cutoff": plan.ke_cutoff, "r_cut": plan.r_cut,
                    "smearing": plan.smearing}}


def train_tables(plan: LearnPlan, n_done: int, run_dir: str, progress: bool) -> dict:
    """``[model]`` and ``[train]`` tables of the training run on ``n_done`` structures."""
    epochs = plan.epochs
    return {"model": dict(plan.model), "train": {
        "dataset": "data.h5", "out_dir": run_dir, "seed": plan.seed,
        "split": [round(x, 9) for x in budget.split_fractions(n_done)], "epochs": epochs,
        "lr": 1e-3 if plan.init_model else 3e-3, "schedule": "cosine",
        "warmup_epochs": min(5, epochs // 10), "early_stop_patience": plan.early_stop_patience,
        "loss": "mse" if plan.molecule else "gauge_mse", "device": "auto",
        "progress": bool(progress), "init_model": plan.init_model}}
