"""The plan of ``ase-deeph learn``: every setting decided before the long work starts.

:func:`make_plan` reads and checks the structure (:mod:`.structure`: unreadable file,
overlapping atoms, elements without basis or pseudopotential all raise before any DFT),
makes vacuum directions non-periodic, picks the DFT settings (:mod:`.rules`), runs one
**preflight** SCF of the unit cell, strained and rattled as a training structure is
(:func:`run_preflight`, replaceable for tests) that decides metal or insulator and
calibrates the cost, sizes the supercell, the number of structures and the training
epochs from the budget, and decides whether to fine-tune a shipped model
(:mod:`.preflight`, :mod:`.budget`: the budget split).
:meth:`LearnPlan.describe` is the report printed before anything long runs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from ase import Atoms

from ase_deeph.generation.generate import perturb
from ase_deeph.learn import budget, rules
from ase_deeph.learn.preflight import Preflight, choose_init_model, run_preflight
from ase_deeph.learn.structure import (
    check_overlaps,
    load_structure,
    nearest_distance,
    normalise,
    vacuum_axes,
    widths,
)
from interfaces.kspacing import KSPACING_SCF, default_kmesh
from interfaces.pyscf.basis import DEFAULT_BASIS, pseudo_name

__all__ = ["Preflight", "LearnPlan", "make_plan", "run_preflight", "MODEL_DEFAULTS"]

#: Model settings of a model trained from scratch (those of the shipped models).
MODEL_DEFAULTS = {"channels": 32, "pseudo_channels": 8, "n_layers": 3, "n_radial": 16,
                  "norm": "global", "dtype": "float32"}


@dataclass(frozen=True)
class LearnPlan:
    """Everything ``learn`` will do, decided before any label is computed.

    Lengths in Angstrom, energies in eV (``ke_cutoff`` in Hartree), times in seconds.

    Attributes
    ----------
    structure, name : str
        The user's structure (file or ``ase.build`` spec) and its chemical formula.
    symbols, positions, cell, pbc : tuple
        The unit cell as planned (vacuum directions made non-periodic), Angstrom.
    vacuum_axes : tuple of int
        Lattice directions found non-periodic (0, 1, 2).
    supercell : tuple of 3 int
        Diagonal repetition of the unit cell per training structure.
    min_width : float
        Perpendicular width the supercell rule asked for, Angstrom.
    cell_widths : tuple of 3 float
        Perpendicular widths of the training cell, Angstrom.
    n_atoms, n_orbitals : int
        Atoms and basis functions of one training structure.
    n_electrons : float
        Valence electrons of one training structure.
    basis, xc, pseudo : str
        PySCF basis, functional and GTH pseudopotential family.
    ke_cutoff : float
        Density cutoff, Hartree (the largest per-element value).
    ke_sources : dict
        ``{element: "value Ha, measured / unmeasured (...)"}``.
    kspacing : float
        k-point spacing of the SCF mesh, 1/Angstrom (2 pi included).
    kmesh : tuple of 3 int
        SCF mesh of a training structure.
    smearing : float or None
        Fermi-Dirac width, eV (metals), else None.
    gap : float
        Preflight gap, eV (NaN when the SCF needed smearing).
    rattle : tuple of 2 float
        Range of the Gaussian displacement amplitude, Angstrom.
    strain : float
        Largest symmetric strain of periodic directions (0.02 = 2 %).
    r_cut : float
        Cutoff of the labels and of the model, Angstrom.
    seed, budget_min : int, float
        Seed of structures, split and training; the budget in minutes.
    n_structures, epochs, early_stop_patience : int
        Labelled structures, maximum epochs and early-stopping patience.
    split : tuple of 3 float
        Train / validation / test fractions (at least one validation and test structure).
    init_model, init_reason : str
        Model file to fine-tune ("" = from scratch) and why.
    model : dict
        ``ModelConfig`` keyword arguments of a model trained from scratch.
    preflight : dict
        :class:`Preflight` as a dict.
    seconds_per_structure, train_seconds, transfer_seconds, total_seconds : float
        Estimated seconds per labelled structure, of training, of the transfer cell and in
        all (estimates, see :func:`ase_deeph.learn.rules.scf_seconds`).
    transfer : bool
        Whether a cell twice as large is computed with PySCF and compared.
    transfer_supercell : tuple of 3 int
        Its repetition of the unit cell.
    calibrated_seconds : float or None
        Measured seconds of the first structure once :func:`calibrate` has run.
    notes : tuple of str
        Decisions worth reading (vacuum, metal, width fallback, skipped transfer...).
    request : dict
        The arguments of :func:`make_plan` that made it (a resumed run must ask for the
        same).
    """

    structure: str
    name: str
    symbols: tuple
    positions: tuple
    cell: tuple
    pbc: tuple
    vacuum_axes: tuple
    supercell: tuple
    min_width: float
    cell_widths: tuple
    n_atoms: int
    n_orbitals: int
    n_electrons: float
    basis: str
    xc: str
    pseudo: str
    ke_cutoff: float
    ke_sources: dict
    kspacing: float
    kmesh: tuple
    smearing: float | None
    gap: float
    rattle: tuple
    strain: float
    r_cut: float
    seed: int
    budget_min: float
    n_structures: int
    epochs: int
    early_stop_patience: int
    split: tuple
    init_model: str
    init_reason: str
    model: dict
    preflight: dict
    seconds_per_structure: float
    train_seconds: float
    transfer: bool
    transfer_supercell: tuple
    transfer_seconds: float
    total_seconds: float
    calibrated_seconds: float | None = None
    notes: tuple = field(default=())
    request: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ conversions
    @property
    def molecule(self) -> bool:
        """True for an isolated structure (no periodic direction)."""
        return not any(self.pbc)

    def unit_atoms(self) -> Atoms:
        """Return the planned unit cell as ASE Atoms."""
        return Atoms(list(self.symbols), positions=np.array(self.positions),
                     cell=np.array(self.cell), pbc=list(self.pbc))

    def to_dict(self) -> dict:
        """JSON-serialisable dict (the inverse of :meth:`from_dict`)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict) -> "LearnPlan":
        """Rebuild from :meth:`to_dict` output (lists become tuples)."""
        def tup(x):
            return tuple(tup(v) for v in x) if isinstance(x, list) else x
        keep = {"model", "preflight", "ke_sources", "request"}
        return cls(**{k: (v if k in keep else tup(v)) for k, v in data.items()})

    def save(self, path: str | Path) -> None:
        """Write ``plan.json`` atomically."""
        from interfaces.atomic import write_text

        write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "LearnPlan":
        """Read a ``plan.json``."""
        return cls.from_dict(json.loads(Path(path).read_text()))

    # ------------------------------------------------------------------- report
    def describe(self) -> str:
        """Return the human-readable preflight report (settings, sizes, estimated times)."""
        from ase_deeph.learn.report import describe_plan

        return describe_plan(self)


def _unit_cell(atoms: Atoms, r_cut: float, notes: list[str]) -> tuple[Atoms, tuple]:
    """Return the planned unit cell (vacuum axes made non-periodic, noted) and those axes."""
    axes = vacuum_axes(atoms)
    unit = normalise(atoms, axes, r_cut) if axes else atoms.copy()
    if axes and len(axes) < 3:
        notes.append(f"vacuum along lattice direction(s) {list(axes)}: non-periodic there "
                     f"(one k-point, no strain, cell length >= 2 r_cut)")
    unit.pbc = [i not in axes for i in range(3)]
    return unit, axes


def _is_metal(pre: Preflight, periodic: bool, notes: list[str]) -> bool:
    """Tell metal: a small preflight gap or an SCF that needed smearing (noted)."""
    metal = periodic and not (pre.converged_without_smearing and pre.gap >= rules.METAL_GAP)
    if metal:
        why = (f"preflight gap {pre.gap:.3f} eV < {rules.METAL_GAP} eV"
               if pre.converged_without_smearing else "no SCF convergence without smearing")
        notes.append(f"metal ({why}): Fermi smearing {rules.METAL_SMEARING} eV")
    return bool(metal)


def make_plan(structure, budget_min: float = 60.0, r_cut: float = 8.0, seed: int = 0, *,
              basis: str = DEFAULT_BASIS, xc: str = "pbe", min_width: float | None = None,
              transfer: bool = False, kspacing: float = KSPACING_SCF,
              preflight: Callable[..., Preflight] = run_preflight) -> LearnPlan:
    """Plan ``learn`` for a structure: checks, DFT settings, preflight, sizes, times.

    Parameters
    ----------
    structure : str, path-like or ase.Atoms
        Structure file ASE can read, an ``ase.build`` call such as
        ``'bulk("InP", "zincblende", a=5.87)'``, or Atoms.
    budget_min, r_cut, seed : float, float, int
        Wall-time budget of the whole run (minutes); label and model cutoff (Angstrom);
        seed of the structures, the split and the training.
    basis, xc : str
        PySCF basis and functional.
    min_width : float, optional
        Fixed minimum width of the training cells (A); default ``r_cut``, lowered towards
        ``r_cut / 2`` when the budget cannot afford :data:`budget.N_TARGET` structures.
    transfer : bool
        Reserve budget for a PySCF cell twice as large (skipped, noted, if it won't fit).
    kspacing : float
        SCF k-point spacing, 1/Angstrom (2 pi included).
    preflight : callable
        ``preflight(atoms, basis=, xc=, ke_cutoff=, kmesh=, r_cut=) -> Preflight``, default
        :func:`run_preflight` (one real SCF).

    Returns
    -------
    LearnPlan

    Raises
    ------
    ConfigError, UnknownElementError
        Before any DFT: an unreadable structure file, overlapping atoms, an element without
        the basis or pseudopotential (each named; :func:`_checked_structure`).
    """
    atoms, name = _checked_structure(structure, basis, xc)
    request = {"structure": str(structure) if not isinstance(structure, Atoms) else name,
               "budget_min": float(budget_min), "r_cut": float(r_cut), "seed": int(seed),
               "basis": basis, "xc": xc, "min_width": min_width, "transfer": bool(transfer),
               "kspacing": float(kspacing)}  # as the plan records it
    notes: list[str] = []
    unit, axes = _unit_cell(atoms, r_cut, notes)
    fields = _unit_fields(unit, axes)
    pre, dft = _dft_settings(unit, fields, request, preflight, notes)
    sized = _budget_fields(unit, pre, request, notes)
    init_model, init_reason = choose_init_model(atoms.get_chemical_symbols(), basis)
    return LearnPlan(structure=request["structure"], **fields, **dft, **sized,
                     r_cut=r_cut, seed=seed, budget_min=float(budget_min), init_model=init_model,
                     init_reason=init_reason, model={"r_cut": r_cut, **MODEL_DEFAULTS},
                     notes=tuple(notes), request=request)


def _checked_structure(structure, basis: str, xc: str) -> tuple[Atoms, str]:
    """Read the structure and its name; raise on what would fail later (elements, overlaps)."""
    atoms, name = load_structure(structure)
    rules.check_elements(atoms.get_chemical_symbols(), basis, xc)
    check_overlaps(atoms, name)
    return atoms, name


def _unit_fields(unit: Atoms, axes: tuple) -> dict:
    """LearnPlan fields of the planned unit cell: geometry, rattle and strain ranges."""
    return {"name": unit.get_chemical_formula(), "symbols": tuple(unit.get_chemical_symbols()),
            "positions": tuple(map(tuple, unit.positions.tolist())),
            "cell": tuple(map(tuple, np.asarray(unit.cell).tolist())),
            "pbc": tuple(map(bool, unit.pbc)), "vacuum_axes": tuple(axes),
            "rattle": rules.rattle_range(nearest_distance(unit)),
            "strain": rules.STRAIN if any(unit.pbc) else 0.0}


def _dft_settings(unit: Atoms, fields: dict, request: dict, preflight: Callable[..., Preflight],
                  notes: list[str]) -> tuple[Preflight, dict]:
    """Run the preflight SCF with the rules' settings; return it and the DFT-setting fields.

    The preflight cell is ``unit`` strained and rattled as a training structure is (the
    ``rattle`` and ``strain`` of ``fields``, seeded by the request's seed): a strained cell
    is no longer orthogonal and a rattled one needs more cycles, so the unperturbed cell
    underestimates the cost (cubic AlP, 8 atoms, 3x3x3, 2 threads: 59.5 s unperturbed,
    7 cycles; 203.8 s strained and rattled, 10 cycles; 177.5 s strained only). ``request``
    holds the arguments of :func:`make_plan`. The fields returned are those of
    :class:`LearnPlan` (cutoff, smearing of a metal, gap...); the metal decision is noted
    in ``notes``.
    """
    basis, xc, kspacing = request["basis"], request["xc"], request["kspacing"]
    probe = unit.copy()
    perturb(probe, np.random.default_rng([request["seed"]]), fields["rattle"], fields["strain"])
    ke_cutoff, ke_sources = rules.ke_cutoff_for(unit.get_chemical_symbols(), xc)
    mesh0 = default_kmesh(unit, kspacing) if any(unit.pbc) else (1, 1, 1)
    pre = preflight(probe, basis=basis, xc=xc, ke_cutoff=ke_cutoff, kmesh=mesh0,
                    r_cut=request["r_cut"])
    metal = _is_metal(pre, any(unit.pbc), notes)
    return pre, {"basis": basis, "xc": xc, "pseudo": pseudo_name(xc), "ke_cutoff": ke_cutoff,
                 "ke_sources": ke_sources, "kspacing": kspacing,
                 "smearing": rules.METAL_SMEARING if metal else None, "gap": float(pre.gap),
                 "preflight": dataclasses.asdict(pre)}


def _budget_fields(unit: Atoms, pre: Preflight, request: dict, notes: list[str]) -> dict:
    """LearnPlan fields sized by the budget (:mod:`.budget`): cells, structures, epochs, times.

    ``request`` holds the arguments of :func:`make_plan`; decisions (width fallback, skipped
    transfer) are noted in ``notes``.
    """
    symbols, r_cut, kspacing = unit.get_chemical_symbols(), request["r_cut"], request["kspacing"]
    orb = rules.orbitals_per_atom(request["basis"], symbols)
    val = rules.valence_electrons(request["xc"], symbols)
    min_width = request["min_width"]
    avail = max(request["budget_min"] * 60.0 - pre.spent, 0.0)
    data_s, train_s = budget.DATA_SHARE * avail, budget.TRAIN_SHARE * avail
    w, rep, t_one = budget.training_cell(unit, orb, pre, kspacing, data_s,
                                         min_width or r_cut, fixed=bool(min_width), notes=notes)
    n_at, n_orb, mesh, _ = budget.cell_cost(unit, rep, orb, pre, kspacing)
    rep_t, t_transfer = (budget.transfer_cell(unit, rep, orb, pre, kspacing,
                                              data_s - budget.N_TARGET * t_one, notes)
                         if request["transfer"] else (tuple(rep), 0.0))
    n = int(min(budget.N_MAX, max(budget.N_MIN, (data_s - t_transfer) // max(t_one, 1e-9))))
    split = budget.split_fractions(n)
    big = unit.repeat(rep) if any(unit.pbc) else unit
    s_epoch = rules.train_seconds_per_epoch(*budget.split_sizes(n, split),
                                            len(big) * budget.edges_per_atom(unit, r_cut))
    epochs = int(min(budget.MAX_EPOCHS, max(budget.MIN_EPOCHS, train_s // max(s_epoch, 1e-9))))
    return {"supercell": tuple(rep), "min_width": float(w),
            "cell_widths": tuple(float(x) for x in widths(np.asarray(big.cell))),
            "n_atoms": n_at, "n_orbitals": n_orb,
            "n_electrons": float(sum(val[s] for s in big.get_chemical_symbols())),
            "kmesh": mesh, "n_structures": n, "epochs": epochs,
            "early_stop_patience": max(10, epochs // 4), "split": split,
            "seconds_per_structure": t_one, "train_seconds": epochs * s_epoch,
            "transfer": t_transfer > 0, "transfer_supercell": rep_t,
            "transfer_seconds": t_transfer,
            "total_seconds": pre.spent + n * t_one + t_transfer + epochs * s_epoch}
