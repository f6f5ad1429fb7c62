"""The embedded DFT generator (PySCF).

Runs (:mod:`.generator`), compact GTH bases (:mod:`.basis`), folding H(k) onto H(R)
(:mod:`.fold`), SCF-free overlaps (:mod:`.overlap`), validated inputs and their assembly
into HSData (:mod:`.blocks`).
"""

from __future__ import annotations

from interfaces.pyscf.generator import (
    KSPACING,
    MIN_DISTANCE,
    MIN_EXPONENT,
    GeometryError,
    OverlapGradient,
    PySCFError,
    SCFConvergenceError,
    SCFOptions,
    UnknownElementError,
    default_kmesh,
    overlap,
    overlap_gradient,
    overlap_on,
    run,
)

__all__ = [
    "run", "SCFOptions", "overlap", "overlap_on", "overlap_gradient", "OverlapGradient",
    "PySCFError",
    "UnknownElementError", "GeometryError", "SCFConvergenceError", "MIN_DISTANCE",
    "KSPACING", "MIN_EXPONENT", "default_kmesh",
]
