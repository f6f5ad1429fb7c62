"""The preflight of ``ase-deeph learn``: one timed SCF of the (perturbed) unit cell.

It decides metal or insulator (the gap on its SCF mesh) and calibrates the cost estimate
of the plan; :func:`choose_init_model` decides from the shipped models' metadata whether
training fine-tunes one of them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from ase_deeph.learn import rules

__all__ = ["Preflight", "run_preflight", "choose_init_model"]


@dataclass(frozen=True)
class Preflight:
    """Outcome of the preflight SCF of the unit cell (strained and rattled by the plan).

    Attributes
    ----------
    seconds : float
        Wall time of the converged run, s (the base of the cost estimate).
    n_orbitals, n_kpoints : int
        Orbitals of the preflight cell and its SCF k-points.
    gap : float
        Band gap on the SCF mesh (HOMO-LUMO gap of a molecule), eV; NaN when unknown.
    converged_without_smearing : bool
        False when the SCF needed Fermi smearing to converge (then a metal).
    wall_seconds : float or None
        Wall time of the whole preflight (both runs when the first did not converge), s;
        None: ``seconds``.
    """

    seconds: float
    n_orbitals: int
    n_kpoints: int
    gap: float
    converged_without_smearing: bool = True
    wall_seconds: float | None = None

    @property
    def spent(self) -> float:
        """Seconds the preflight took out of the budget."""
        return self.seconds if self.wall_seconds is None else self.wall_seconds


def run_preflight(atoms: Atoms, basis: str, xc: str, ke_cutoff: float, kmesh, r_cut: float,
                  conv_tol: float = 1e-9) -> Preflight:
    """SCF (and fold) of ``atoms`` (the plan passes its perturbed unit cell), timed.

    Without smearing first; an SCF that does not converge is rerun with
    :data:`~ase_deeph.learn.rules.METAL_SMEARING` and marks a metal.
    """
    from interfaces import pyscf as ps

    kw = dict(basis=basis, xc=xc, kmesh=kmesh, ke_cutoff=ke_cutoff, r_cut=r_cut,
              conv_tol=conv_tol)
    t0 = t1 = time.perf_counter()
    try:
        hs = ps.run(atoms, **kw)
        plain = True
    except ps.SCFConvergenceError:
        t1 = time.perf_counter()
        hs = ps.run(atoms, **kw, smearing=rules.METAL_SMEARING)
        plain = False
    t2 = time.perf_counter()
    md = hs.metadata
    lo, hi = (md.get("homo_eV"), md.get("lumo_eV")) if md.get("kind") == "molecule" else (
        md.get("vbm_eV"), md.get("cbm_eV"))
    gap = float(hi) - float(lo) if lo is not None and hi is not None else math.nan
    n_k = int(np.prod(kmesh)) if np.any(atoms.pbc) else 1
    return Preflight(t2 - t1, int(hs.n_orbitals), n_k, gap if plain else math.nan, plain,
                     wall_seconds=t2 - t0)


def choose_init_model(elements, basis: str) -> tuple[str, str]:
    """Pick a shipped model to fine-tune: ``(path or "", reason)``.

    A shipped model qualifies when its elements are exactly the structure's (the trainer
    builds the output layout from the dataset's elements) and its basis name (model
    metadata ``overlap_source.basis``) equals the plan's.
    """
    from ase_deeph.inference.provider import model_path, shipped_models
    from ase_deeph.model.checkpoint import read_meta

    seen = []
    for name in shipped_models():
        meta = read_meta(model_path(name))
        have = sorted(meta["basis"])
        their = meta.get("overlap_source", {}).get("basis")
        if have == sorted(set(elements)) and their == basis:
            return str(model_path(name)), f"fine-tune the shipped model {name!r}"
        seen.append(f"{name} ({'+'.join(have)}, {their})")
    return "", f"from scratch: no shipped model has these elements and basis {basis} " \
               f"(shipped: {', '.join(seen) or 'none'})"
