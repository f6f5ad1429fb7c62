"""Budget arithmetic of ``ase-deeph learn``: structures, epochs and cell costs.

The budget (minutes) minus the preflight's own time is split: :data:`DATA_SHARE` for the
PySCF labels (and the optional transfer cell), :data:`TRAIN_SHARE` for training and the
rest for the evaluation (held-out bands take seconds). Structures: as many as the data
share pays for at the estimated (later: measured) time per structure, between
:data:`N_MIN` and :data:`N_MAX`. Epochs: as many as the training share pays for at the
estimated time per epoch (:func:`ase_deeph.learn.rules.train_seconds_per_epoch`), between
:data:`MIN_EPOCHS` and :data:`MAX_EPOCHS`; early stopping ends training sooner.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from ase_deeph.learn import rules
from ase_deeph.learn.preflight import Preflight
from ase_deeph.learn.structure import supercell_for, widths
from interfaces.kspacing import default_kmesh

if TYPE_CHECKING:  # pragma: no cover
    from ase_deeph.learn.plan import LearnPlan

__all__ = ["DATA_SHARE", "TRAIN_SHARE", "N_TARGET", "N_MIN", "N_MAX", "MIN_EPOCHS",
           "MAX_EPOCHS", "split_fractions", "split_sizes", "edges_per_atom", "cell_cost",
           "training_cell", "transfer_cell", "calibrate"]

#: Fractions of the budget (after the preflight) for labels and for training.
DATA_SHARE, TRAIN_SHARE = 0.6, 0.3
#: Structures the width fallback tries to afford; fewest and most structures of a plan.
N_TARGET, N_MIN, N_MAX = 6, 3, 500
#: Fewest and most training epochs.
MIN_EPOCHS, MAX_EPOCHS = 20, 500


def split_fractions(n: int) -> tuple[float, float, float]:
    """Train / validation / test fractions: at least one validation and one test structure."""
    f = max(0.1, 1.0 / max(n, 1))
    return (1.0 - 2.0 * f, f, f)


def split_sizes(n: int, split) -> tuple[int, int]:
    """Training and validation structures of ``n`` (as the trainer's seeded split counts)."""
    n_train = max(1, int(round(split[0] * n)))
    return n_train, max(1, int(round(split[1] * n)))


def edges_per_atom(unit: Atoms, r_cut: float) -> float:
    """Graph edges per atom within r_cut, the on-site one included."""
    from ase.neighborlist import neighbor_list

    probe = unit.copy()
    if not any(probe.pbc):
        return float(len(probe))
    return 1.0 + len(neighbor_list("i", probe, r_cut)) / len(probe)


def cell_cost(unit: Atoms, rep, orb: dict, pre: Preflight, kspacing: float):
    """(atoms, orbitals, k-mesh, estimated seconds) of the unit cell repeated ``rep``."""
    big = unit.repeat(rep) if any(unit.pbc) else unit
    n_orb = sum(orb[s] for s in big.get_chemical_symbols())
    mesh = default_kmesh(big, kspacing) if any(big.pbc) else (1, 1, 1)
    t = rules.scf_seconds(pre.seconds, pre.n_orbitals, pre.n_kpoints, n_orb,
                          int(np.prod(mesh)))
    return len(big), n_orb, tuple(mesh), t


def training_cell(unit: Atoms, orb: dict, pre: Preflight, kspacing: float, data_s: float,
                   width: float, fixed: bool, notes: list) -> tuple[float, tuple, float]:
    """Minimum width, repetition and estimated seconds per structure of the training cell.

    The supercell rule at ``width``; unless ``fixed``, the width is lowered in 0.5 A steps
    (down to ``width / 2``) until :data:`N_TARGET` structures fit in ``data_s``.
    """
    if not any(unit.pbc):
        return 0.0, (1, 1, 1), cell_cost(unit, (1, 1, 1), orb, pre, kspacing)[3]
    tries = [width] if fixed else list(np.arange(width, width / 2 - 1e-9, -0.5))
    for w in tries:
        rep = supercell_for(unit, w)
        t_one = cell_cost(unit, rep, orb, pre, kspacing)[3]
        if data_s >= N_TARGET * t_one:
            break
    if w != tries[0]:
        notes.append(f"minimum cell width lowered from {tries[0]:g} to {w:g} A to afford "
                     f"{N_TARGET} structures: perturbations repeat within the cutoff")
    if data_s < N_TARGET * t_one:
        notes.append(f"over budget: {N_TARGET} structures need about "
                     f"{N_TARGET * t_one / 60:.0f} min of labels; raise --budget")
    return float(w), tuple(rep), t_one


def transfer_cell(unit: Atoms, rep, orb: dict, pre: Preflight, kspacing: float,
                   spare_s: float, notes: list) -> tuple[tuple, float]:
    """Repetition and estimated seconds of the transfer cell (0 s: skipped, with a note).

    Twice the training cell along its narrowest periodic direction; skipped when its
    estimate exceeds ``spare_s`` (the data budget left after N_TARGET structures).
    """
    if not any(unit.pbc):
        notes.append("transfer cell skipped: an isolated molecule has no larger cell")
        return tuple(rep), 0.0
    w_big = widths(np.asarray(unit.repeat(rep).cell))
    ax = min((i for i in range(3) if unit.pbc[i]), key=lambda i: w_big[i])
    rep_t = tuple(int(r) * (2 if i == ax else 1) for i, r in enumerate(rep))
    t_transfer = cell_cost(unit, rep_t, orb, pre, kspacing)[3]
    if t_transfer > spare_s:
        notes.append(f"transfer cell skipped: its PySCF run (about {t_transfer / 60:.0f} min) "
                     "does not fit the budget")
        return tuple(rep), 0.0
    return rep_t, t_transfer


def _spent(plan: LearnPlan) -> float:
    """Seconds the plan's preflight took out of the budget."""
    pre = plan.preflight
    return pre["seconds"] if pre.get("wall_seconds") is None else pre["wall_seconds"]


def calibrate(plan: LearnPlan, measured_seconds: float) -> LearnPlan:
    """Re-size a plan from the measured seconds of its first labelled structure.

    Parameters
    ----------
    plan : LearnPlan
        A plan made from the preflight's estimate.
    measured_seconds : float
        Wall time of structure 0 (SCF and fold), s.

    Returns
    -------
    LearnPlan
        The same plan with the number of structures, the epochs and the time estimates
        recomputed from the same budget shares with the measured time (the supercell and
        every DFT setting stay); ``calibrated_seconds`` set and a note added.
    """
    scale = measured_seconds / max(plan.seconds_per_structure, 1e-9)
    t_transfer = plan.transfer_seconds * scale
    avail = max(plan.budget_min * 60.0 - _spent(plan), 0.0)
    data_s = DATA_SHARE * avail - t_transfer
    n = int(min(N_MAX, max(N_MIN, data_s // max(measured_seconds, 1e-9))))
    split = split_fractions(n)
    n_tr, n_va = split_sizes(n, split)
    old_n_tr, old_n_va = split_sizes(plan.n_structures, plan.split)
    s_epoch = plan.train_seconds / max(plan.epochs, 1) * (n_tr + 0.5 * n_va) / (
        old_n_tr + 0.5 * old_n_va)
    epochs = int(min(MAX_EPOCHS, max(MIN_EPOCHS, TRAIN_SHARE * avail // max(s_epoch, 1e-9))))
    note = (f"calibrated on structure 0: {measured_seconds:.1f} s measured against "
            f"{plan.seconds_per_structure:.1f} s estimated; {plan.n_structures} -> {n} "
            f"structures, {plan.epochs} -> {epochs} epochs")
    return dataclasses.replace(
        plan, n_structures=n, split=split, epochs=epochs,
        early_stop_patience=max(10, epochs // 4), calibrated_seconds=float(measured_seconds),
        train_seconds=epochs * s_epoch, transfer_seconds=t_transfer,
        total_seconds=_spent(plan) + n * measured_seconds + t_transfer + epochs * s_epoch,
        notes=plan.notes + (note,))
