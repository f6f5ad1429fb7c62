"""Frozen configuration of ``ase-deeph generate``; the defaults live only here.

A generator TOML has top-level ``n_structures`` and ``seed`` and three tables::

    n_structures = 200
    seed = 7

    [system]                 # SystemConfig: what to build
    prototype = "si_bulk"

    [perturb]                # PerturbConfig: how each structure is randomised
    rattle = [0.05, 0.10]

    [dft]                    # DFTConfig: arguments of interfaces.pyscf.generator.run
    kmesh = [2, 2, 2]

Structure k is built from ``numpy.random.default_rng([seed, k])`` only, so it does not
depend on which other structures were (or were not) generated. Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ase_deeph.settings import build, load_toml
from interfaces.errors import ConfigError

__all__ = ["SystemConfig", "PerturbConfig", "DFTConfig", "GenerateConfig", "PROTOTYPES"]

#: Structure prototypes known to :func:`ase_deeph.generation.generate.build_structure`.
PROTOTYPES = ("si_bulk", "bilayer_graphene", "graphene", "graphite", "ribbon", "molecule",
              "structure")


@dataclass(frozen=True)
class SystemConfig:
    """The unperturbed structure.

    Parameters
    ----------
    prototype : str or None
        One of :data:`PROTOTYPES`. ``si_bulk``: 8-atom cubic diamond Si.
        ``bilayer_graphene``: 4-atom cell of two graphene layers, the top one shifted in
        plane. ``graphene``: the 2-atom monolayer. ``graphite``: bulk 4-atom graphite
        (periodic along z, two layers per cell, the second shifted). ``ribbon``: a zigzag
        graphene nanoribbon with H-terminated edges, periodic along z. ``molecule``: an
        isolated molecule of :func:`ase.build.molecule` (no periodicity). ``structure``:
        the ``structure`` key. None: ``structure`` when that key is set, else ``si_bulk``.
    structure : str or None
        A structure file ASE can read or an ``ase.build`` call
        (:func:`ase_deeph.generation.structure_spec.read_structure`).
    lattice_constant : float or None
        Angstrom; None: 5.431 (Si) or 2.46 (graphene, graphite, ribbon).
    supercell : 3 int, or 3x3 int matrix
        Repetitions of the prototype cell before perturbing, or the integer matrix P of
        :func:`ase.build.make_supercell` (new cell = P @ cell), e.g.
        ``[[2, 1, 0], [-1, 1, 0], [0, 0, 1]]`` for the sqrt(3) x sqrt(3) graphene cell.
    interlayer_distance : tuple of 2 float
        Range (Angstrom) of the layer spacing (bilayer, graphite), drawn uniformly.
    vacuum : float
        Empty gap in Angstrom along each non-periodic direction: bilayer cell length minus
        the spacing, monolayer cell length, ribbon cell width minus the ribbon width.
    shift : {"random", "AA", "AB"}
        In-plane shift of the second graphene layer: uniform over the unit cell, or fixed.
    molecules : tuple of str
        ``ase.build.molecule`` names; structure k uses ``molecules[k % len]``.
    ribbon_width : int
        Zigzag chains across the ribbon (``ase.build.graphene_nanoribbon``'s ``n``).
    """

    prototype: str | None = None
    structure: str | None = None
    lattice_constant: float | None = None
    supercell: tuple = (1, 1, 1)
    interlayer_distance: tuple[float, float] = (3.2, 3.6)
    vacuum: float = 16.0
    shift: str = "random"
    molecules: tuple[str, ...] = ("H2O",)
    ribbon_width: int = 3

    def __post_init__(self) -> None:
        if self.prototype is None:
            object.__setattr__(self, "prototype",
                               "structure" if self.structure is not None else "si_bulk")
        object.__setattr__(self, "supercell", _supercell(self.supercell))
        object.__setattr__(self, "interlayer_distance",
                           tuple(float(x) for x in self.interlayer_distance))
        object.__setattr__(self, "molecules", tuple(str(x) for x in self.molecules))
        if self.prototype not in PROTOTYPES:
            raise ConfigError(f"prototype must be one of {PROTOTYPES}, got {self.prototype!r}")
        if (self.prototype == "structure") != (self.structure is not None):
            raise ConfigError("set `structure` exactly when prototype = 'structure' "
                             f"(prototype {self.prototype!r}, structure {self.structure!r})")
        if self.ribbon_width < 1:
            raise ConfigError(f"ribbon_width must be >= 1, got {self.ribbon_width}")
        if self.shift not in ("random", "AA", "AB"):
            raise ConfigError(f"shift must be 'random', 'AA' or 'AB', got {self.shift!r}")
        lo, hi = self.interlayer_distance
        if not 0 < lo <= hi:
            raise ConfigError(f"interlayer_distance must be 0 < lo <= hi, got {(lo, hi)}")


@dataclass(frozen=True)
class PerturbConfig:
    """Random perturbations applied to every structure.

    Parameters
    ----------
    rattle : tuple of 2 float
        Range (Angstrom) of the Gaussian displacement standard deviation, drawn uniformly
        per structure; every Cartesian component of every atom is displaced.
    strain : float
        Largest symmetric strain component (0.02 = +-2 %), uniform in [-strain, strain];
        only the periodic directions are strained (in-plane for the bilayer, none for
        molecules).
    vacancies : int
        Atoms removed at random from every structure (after the supercell, strain and
        rattle; 0 keeps the random stream of older configs unchanged).
    """

    rattle: tuple[float, float] = (0.0, 0.0)
    strain: float = 0.0
    vacancies: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rattle", tuple(float(x) for x in self.rattle))
        if len(self.rattle) != 2 or not 0 <= self.rattle[0] <= self.rattle[1]:
            raise ConfigError(f"rattle must be a range 0 <= lo <= hi, got {self.rattle}")
        if not 0 <= self.strain < 0.5:
            raise ConfigError(f"strain must be in [0, 0.5), got {self.strain}")
        if self.vacancies < 0:
            raise ConfigError(f"vacancies must be >= 0, got {self.vacancies}")


@dataclass(frozen=True)
class DFTConfig:
    """Settings passed to :func:`interfaces.pyscf.generator.run` (see there for units).

    ``reference_guess`` (periodic prototypes only) starts every SCF from the converged
    density matrix of the unperturbed structure 0, computed once per output and cached in
    ``<out>.parts/reference_dm.npy`` (same converged labels). Off by default: for bilayer
    graphene it took 26 SCF cycles instead of 11 from PySCF's atomic guess.
    ``grid_level`` and ``density_fit`` apply to molecules only (large ones such as C60:
    level 3, fitted with the ``"weigend"`` auxiliary basis; ``true`` takes PySCF's own).
    """

    basis: str = "gth-dzvp-molopt-sr-compact"
    xc: str = "pbe"
    kmesh: tuple[int, int, int] | None = None
    dense_kmesh: tuple[int, int, int] | None = None
    ke_cutoff: float | None = None
    r_cut: float = 8.0
    smearing: float | None = None
    conv_tol: float = 1e-9
    max_cycle: int = 80
    reference_guess: bool = False
    grid_level: int = 5
    density_fit: bool | str = False

    def __post_init__(self) -> None:
        for name in ("kmesh", "dense_kmesh"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(x) for x in value))
        if self.r_cut <= 0:
            raise ConfigError(f"r_cut must be positive, got {self.r_cut}")

    def run_kwargs(self) -> dict:
        """Keyword arguments of :func:`interfaces.pyscf.generator.run`."""
        kw = dataclasses.asdict(self)
        del kw["reference_guess"]
        return kw


@dataclass(frozen=True)
class GenerateConfig:
    """Everything ``ase-deeph generate`` needs.

    Parameters
    ----------
    n_structures : int
        Structures to generate (indices 0 .. n_structures - 1).
    seed : int
        Base seed; structure k uses ``numpy.random.default_rng([seed, k])``.
    system, perturb, dft : SystemConfig, PerturbConfig, DFTConfig
        See those classes.
    """

    n_structures: int = 10
    seed: int = 0
    system: SystemConfig = field(default_factory=SystemConfig)
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    dft: DFTConfig = field(default_factory=DFTConfig)

    def __post_init__(self) -> None:
        if self.n_structures < 0:
            raise ConfigError(f"n_structures must be >= 0, got {self.n_structures}")

    def to_dict(self) -> dict:
        """JSON-serialisable dict (the inverse of :meth:`from_dict`)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str = "config") -> "GenerateConfig":
        """Build from nested dicts; unknown keys raise ValueError naming them."""
        tables = {"system": SystemConfig, "perturb": PerturbConfig, "dft": DFTConfig}
        top = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - top
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}; allowed {sorted(top)}")
        kw = {k: v for k, v in data.items() if k not in tables}
        for name, sub in tables.items():
            kw[name] = build(sub, data.get(name, {}), f"{where} [{name}]")
        return cls(**kw)

    @classmethod
    def from_toml(cls, path) -> "GenerateConfig":
        """Read a generator TOML file."""
        return cls.from_dict(load_toml(path), str(path))


def _supercell(value) -> tuple:
    """Three positive repetitions, or a 3x3 integer matrix with a positive determinant."""
    try:
        arr = [[int(x) for x in row] for row in value] if any(
            isinstance(v, (list, tuple)) for v in value) else [int(x) for x in value]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"supercell must be 3 integers or a 3x3 integer matrix, "
                         f"got {value!r}") from exc
    if isinstance(arr[0], list):
        import numpy as np

        if len(arr) != 3 or any(len(r) != 3 for r in arr) or round(np.linalg.det(arr)) < 1:
            raise ConfigError(f"supercell matrix must be 3x3 with a positive determinant, "
                             f"got {value!r}")
        return tuple(tuple(r) for r in arr)
    if len(arr) != 3 or min(arr) < 1:
        raise ConfigError(f"supercell must be three positive integers, got {value!r}")
    return tuple(arr)

