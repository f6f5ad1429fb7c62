"""One round of active learning on a finished ``ase-deeph learn`` folder (issue 14 item 4).

1. **Before**: a committee (``committee`` members, :mod:`ase_deeph.training.committee`) is
   trained on the current data, with the single model's test structures held out
   (``TrainConfig.holdout``), and evaluated on them.
2. **Score**: ``pool`` new candidate structures (the plan's generator, indices after every
   labelled one; no DFT) are predicted by every member; a candidate's score is the mean
   over atoms of the members' gauge-aligned H spread
   (:func:`ase_deeph.inference.uncertainty.atom_spread`).
3. **Label** the ``pick`` highest-scoring candidates with PySCF (kept in the dataset as the
   generator's ``extra`` indices).
4. **After**: the committee is retrained on the larger data with the same held-out
   structures and evaluated on them; the errors before and after go to
   ``DIR/active.json``.

Cost: two committee trainings, ``pool`` x ``committee`` predictions and ``pick`` PySCF runs.
Every stage resumes like the rest of ``learn``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ase_deeph.learn.plan import LearnPlan
from interfaces.atomic import write_text
from interfaces.errors import ConfigError

__all__ = ["active_round", "score_candidates"]


def score_candidates(model_file, candidates: list) -> np.ndarray:
    """Committee disagreement of each structure (eV, mean over atoms); no DFT.

    Raises
    ------
    ConfigError
        If the model file holds a single model (no committee, no spread).
    """
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.inference.uncertainty import atom_spread

    provider = ModelProvider.from_any(str(model_file), device="cpu")
    if provider.n_members < 2:
        raise ConfigError(f"{model_file}: a single model has no committee spread; train "
                          "with committee >= 2")
    return np.array([float(atom_spread(provider.predict_members(a, provider(a))).mean())
                     for a in candidates])


def _stage(plan: LearnPlan, out: Path, n_done: int, run_dir: str, holdout,
           committee: int, progress: bool) -> tuple[dict, dict]:
    """Train a committee run with a fixed held-out set and evaluate it."""
    from ase_deeph.learn.pipeline import evaluate_stage, train_stage

    info = train_stage(plan, out, n_done, run_dir, progress,
                       overrides={"committee": committee, "holdout": list(holdout)},
                       config=f"{Path(run_dir).name}.toml")
    return info, evaluate_stage(plan, out, info)


def active_round(out_dir, pool: int = 16, pick: int = 3, committee: int = 3,
                 progress: bool = True) -> dict:
    """Run one active-learning round on ``out_dir`` (a finished ``learn`` folder).

    Parameters
    ----------
    out_dir : path-like
        The folder of a finished :func:`ase_deeph.learn.pipeline.learn`.
    pool : int
        Candidate structures scored by the committee.
    pick : int
        Candidates labelled with PySCF (the most uncertain).
    committee : int
        Committee size of the before and after models (>= 2).
    progress : bool
        Print progress.

    Returns
    -------
    dict
        Picks with their scores, and the held-out errors before and after (also written
        to ``DIR/active.json``).
    """
    from ase_deeph.generation.config import GenerateConfig
    from ase_deeph.generation.generate import generate
    from ase_deeph.learn.pipeline import say
    from interfaces import h5io

    out = Path(out_dir)
    if not (out / "learn.json").exists():
        raise ConfigError(f"{out}: run `ase-deeph learn` to the end first (no learn.json)")
    if committee < 2 or not 0 < pick <= pool:
        raise ConfigError(f"need committee >= 2 and 0 < pick <= pool, got {committee}, "
                          f"{pick}, {pool}")
    plan = LearnPlan.load(out / "plan.json")
    learned = json.loads((out / "learn.json").read_text())
    holdout = learned["train"]["test_names"]
    cfg = GenerateConfig.from_toml(out / "generate.toml")
    names = h5io.names(out / "data.h5")
    before, eval_before = _stage(plan, out, len(names), f"runs/active_before_c{committee}",
                                 holdout, committee, progress)
    candidates, scores, chosen = _pick(out, names, cfg, out / before["run_dir"], pool, pick,
                                       committee)
    say(progress, f"active learning: labelling candidates {chosen} of {candidates[0]}.."
                        f"{candidates[-1]} (committee spread {np.sort(scores)[::-1][:pick]} eV)")
    rep = generate(cfg, out / "data.h5", progress=progress, extra=chosen)
    after, eval_after = _stage(plan, out, rep.n_done,
                               f"runs/active_after_c{committee}_n{rep.n_done}", holdout,
                               committee, progress)
    result = {"pool": candidates, "scores_eV": scores.tolist(), "picked": chosen,
              "holdout": holdout, "committee": committee,
              "before": {"run_dir": before["run_dir"], **_summary(eval_before)},
              "after": {"run_dir": after["run_dir"], **_summary(eval_after)}}
    write_text(out / "active.json", json.dumps(result, indent=1))
    say(progress, "held-out errors before -> after: " + json.dumps(
        {k: (result["before"][k], result["after"][k]) for k in result["before"]
         if k != "run_dir"}))
    return result


def _pick(out: Path, names: list, cfg, run_dir: Path, pool: int, pick: int,
          committee: int) -> tuple[list, np.ndarray, list]:
    """Score ``pool`` new candidates with the committee of ``run_dir``; pick the most uncertain.

    Returns (candidate indices, scores in eV, the ``pick`` chosen indices, sorted); the choice
    is saved, and a rerun resumes with it.
    """
    from ase_deeph.generation.generate import build_structure

    picks = out / f"active_picks_c{committee}.json"  # a rerun resumes with the same picks
    if picks.exists():
        saved = json.loads(picks.read_text())
        return saved["pool"], np.array(saved["scores_eV"]), saved["picked"]
    start = max(int(n) for n in names) + 1
    candidates = list(range(start, start + pool))
    scores = score_candidates(run_dir / "model.safetensors",
                              [build_structure(cfg, k)[0] for k in candidates])
    chosen = sorted(int(candidates[i]) for i in np.argsort(scores)[::-1][:pick])
    write_text(picks, json.dumps({"pool": candidates, "scores_eV": scores.tolist(),
                                  "picked": chosen}))
    return candidates, scores, chosen


def _summary(evaluation: dict) -> dict:
    bands = evaluation.get("heldout_bands") or {}
    return dataclasses.asdict(_Errors(evaluation.get("test_h_mae_meV"), bands.get("mae_meV"),
                                      bands.get("max_meV")))


@dataclasses.dataclass(frozen=True)
class _Errors:
    """Held-out errors of one run (meV)."""

    h_mae_meV: float | None
    band_mae_meV: float | None
    band_max_meV: float | None
