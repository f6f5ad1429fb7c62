"""``ase-deeph learn STRUCTURE -o DIR``: thin driver around :mod:`ase_deeph.learn`.

``--plan-only`` runs the checks and the preflight SCF, saves ``DIR/plan.json`` (a later
run reuses it) and prints the report; otherwise the whole pipeline runs (resumable) and
the errors and the way to use the model are printed.
"""

from __future__ import annotations

import json

__all__ = ["learn_command"]


def learn_command(structure: str, out_dir: str, budget: float = 60.0, more: int = 0,
                  seed: int = 0, plan_only: bool = False, transfer: bool = False,
                  progress: bool = True, active: tuple[int, int] | None = None) -> dict:
    """Run ``ase-deeph learn`` and return its JSON summary (also printed).

    Parameters
    ----------
    structure : str
        Structure file ASE can read, or an ``ase.build`` call as text.
    out_dir : str
        Output folder.
    budget : float
        Wall-time budget, minutes.
    more : int
        Structures beyond the plan's.
    seed : int
        Seed of structures, split and training.
    plan_only : bool
        Stop after the plan (checks and preflight SCF).
    transfer : bool
        Compare with PySCF on a cell twice as large when the budget allows.
    progress : bool
        Print the plan and progress bars.
    active : (int, int), optional
        ``(pool, pick)``: afterwards one active-learning round
        (:func:`ase_deeph.learn.active.active_round`).

    Returns
    -------
    dict
        ``{"plan": ...}`` with ``plan_only``, else the errors and the model file.
    """
    from ase_deeph.learn import learn, plan_for

    if plan_only:
        plan = plan_for(structure, out_dir, budget, seed, transfer)
        print(plan.describe())
        print(f"plan saved to {out_dir}/plan.json; run the same command without --plan-only "
              "to generate, train and evaluate")
        return {"plan": f"{out_dir}/plan.json"}
    result = learn(structure, out_dir, budget_min=budget, more=more, seed=seed,
                   progress=progress, transfer=transfer)
    ev = result.results["evaluation"]
    summary = {
        "model": str(result.model_file), "card": str(result.card_file),
        "n_structures": result.results["generate"]["n_done"],
        "test_h_mae_meV": ev.get("test_h_mae_meV"), "heldout_bands": ev.get("heldout_bands"),
        "transfer": ev.get("transfer"), "wall_seconds": result.results["wall_seconds"],
        "usage": result.usage,
    }
    if active is not None:
        from ase_deeph.learn.active import active_round

        summary["active"] = active_round(out_dir, pool=active[0], pick=active[1],
                                         progress=progress)
    print(json.dumps(summary, indent=1))
    return summary
