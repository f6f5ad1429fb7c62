"""Stage 4: learn a new material in one command (``ase-deeph learn``).

Plan before any DFT (:mod:`.structure` checks and geometry rules, :mod:`.rules` DFT
settings and cost model, :mod:`.preflight` the timed SCF of the unit cell, :mod:`.budget`
the budget split, :mod:`.plan` the :class:`~.plan.LearnPlan`), then generate, train,
evaluate and write the card (:mod:`.pipeline`, :mod:`.evaluate`, :mod:`.report`).
"""

from __future__ import annotations

from ase_deeph.learn.pipeline import LearnResult, learn, plan_for
from ase_deeph.learn.plan import LearnPlan, make_plan
from ase_deeph.learn.preflight import Preflight, run_preflight

__all__ = ["LearnPlan", "LearnResult", "Preflight", "learn", "make_plan", "plan_for",
           "run_preflight"]
