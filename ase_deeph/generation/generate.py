"""``ase-deeph generate``: reproducible, resumable PySCF datasets of H(R), S(R).

Steps for each structure index k (``GenerateConfig.n_structures`` of them):

1. build the prototype and perturb it with ``numpy.random.default_rng([seed, k])``
   (:func:`build_structure`), so structure k depends only on (seed, k);
2. run :func:`interfaces.pyscf.generator.run` with the ``[dft]`` settings;
3. write the result atomically as its own shard ``<out>.parts/<k:06d>.h5``, or, when
   the structure fails (unknown element, overlapping atoms, unconverged SCF), a JSON
   record ``<out>.parts/<k:06d>.failed.json`` with the reason, and go on.

At the end every shard is merged into ``<out>`` in one atomic write; the file attributes
``generate_config``, ``failures`` and ``versions`` (JSON) record the run. A killed run
keeps its shards: rerunning the same command continues with the missing indices (a
different config in the same ``.parts`` folder is refused, except for a larger
``n_structures``, which extends the dataset).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms
from ase.build import bulk, graphene, graphene_nanoribbon, make_supercell, molecule

from ase_deeph.generation.config import GenerateConfig, PerturbConfig
from ase_deeph.generation.structure_spec import read_structure
from interfaces import h5io
from interfaces import pyscf as pyscf_iface
from interfaces.atomic import atomic_path, write_text
from interfaces.errors import ConfigError

__all__ = ["GenerateConfig", "GenerateReport", "build_structure", "generate", "perturb",
           "versions"]

#: Exceptions recorded as a failed structure (anything else stops the run).
_RECORDED = (pyscf_iface.PySCFError, ValueError, RuntimeError, ArithmeticError,
             np.linalg.LinAlgError)


@dataclass(frozen=True)
class GenerateReport:
    """Outcome of :func:`generate`.

    Attributes
    ----------
    path : str
        The merged dataset file.
    n_done : int
        Structures in the file.
    failures : tuple of (int, str)
        Index and reason of every failed structure.
    seconds : float
        Wall time of this call (shards written before a resume are not counted).
    """

    path: str
    n_done: int
    failures: tuple[tuple[int, str], ...]
    seconds: float

    @property
    def summary(self) -> dict:
        """JSON-serialisable one-glance summary."""
        return {"path": self.path, "n_done": self.n_done, "n_failed": len(self.failures),
                "failures": [list(f) for f in self.failures], "seconds": round(self.seconds, 1)}


def versions() -> dict[str, str]:
    """Versions of the packages that determine the labels."""
    from importlib.metadata import PackageNotFoundError, version

    import ase
    import pyscf
    import scipy

    try:
        own = version("ase-deeph")
    except PackageNotFoundError:
        own = "unknown"
    return {"ase-deeph": own, "pyscf": pyscf.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "ase": ase.__version__, "h5py": h5py.__version__}


# ------------------------------------------------------------------------ structures
def _prototype(cfg: GenerateConfig, rng: np.random.Generator, k: int) -> tuple[Atoms, dict]:
    sysc = cfg.system
    a = sysc.lattice_constant
    if sysc.prototype == "si_bulk":
        a = a or 5.431
        return bulk("Si", "diamond", a=a, cubic=True), {"lattice_constant": a}
    if sysc.prototype == "molecule":
        name = sysc.molecules[k % len(sysc.molecules)]
        atoms = molecule(name)
        atoms.cell = np.zeros((3, 3))
        atoms.pbc = False
        return atoms, {"molecule": name}
    if sysc.prototype == "structure":
        return read_structure(sysc.structure), {"structure": sysc.structure}
    if sysc.prototype == "graphene":
        atoms = graphene("C2", a=a or 2.46, vacuum=None)
        atoms.cell[2] = [0.0, 0.0, sysc.vacuum]
        atoms.positions[:, 2] = 0.5 * sysc.vacuum
        atoms.pbc = (True, True, False)
        return atoms, {}
    if sysc.prototype == "ribbon":
        atoms = graphene_nanoribbon(sysc.ribbon_width, 1, type="zigzag", saturated=True,
                                    C_C=(a or 2.46) / np.sqrt(3), vacuum=0.5 * sysc.vacuum)
        return atoms, {"ribbon_width": sysc.ribbon_width}
    return _layers(sysc, rng, periodic_z=sysc.prototype == "graphite")


def _layers(sysc, rng: np.random.Generator, periodic_z: bool) -> tuple[Atoms, dict]:
    """4-atom bilayer graphene or bulk graphite: two layers, the second shifted in plane.

    Bilayer: bottom layer at z = vacuum / 2, cell height spacing + vacuum. Graphite:
    layers at z = 0 and z = spacing, cell height 2 x spacing, periodic along z.
    """
    a = sysc.lattice_constant or 2.46
    dist = float(rng.uniform(*sysc.interlayer_distance))
    shift = {"AA": np.zeros(2), "AB": np.array([1 / 3, 2 / 3])}.get(sysc.shift)
    if shift is None:
        shift = rng.uniform(0.0, 1.0, size=2)
    layer = graphene("C2", a=a, vacuum=None)
    layer.cell[2] = [0.0, 0.0, 2 * dist if periodic_z else dist + sysc.vacuum]
    layer.positions[:, 2] = 0.0 if periodic_z else 0.5 * sysc.vacuum
    top = layer.copy()
    top.positions += np.append(shift @ np.asarray(layer.cell)[:2, :2], dist)
    atoms = layer + top
    atoms.pbc = (True, True, periodic_z)
    atoms.wrap()
    return atoms, {"interlayer_distance": dist, "shift_fractional": shift.tolist()}


def _repeat(atoms: Atoms, supercell: tuple) -> Atoms:
    """Apply repetitions (3 int) or an integer supercell matrix to a periodic structure."""
    if not any(atoms.pbc):
        return atoms
    if isinstance(supercell[0], tuple):
        pbc = atoms.pbc.copy()
        out = make_supercell(atoms, np.array(supercell), wrap=True)
        out.pbc = pbc
        return out
    return atoms.repeat(supercell)


def perturb(atoms: Atoms, rng: np.random.Generator, rattle: tuple[float, float],
            strain: float) -> tuple[float, np.ndarray]:
    """Strain and rattle ``atoms`` in place, as every generated structure is perturbed.

    A symmetric strain on the periodic axes (entries uniform in +-``strain``), then a
    Gaussian rattle whose amplitude (Angstrom) is drawn uniformly from ``rattle``.
    Returns the amplitude and the strain tensor ``[3, 3]``.
    """
    periodic = np.asarray(atoms.pbc, dtype=bool)
    eps = rng.uniform(-strain, strain, size=(3, 3))
    eps = 0.5 * (eps + eps.T) * np.outer(periodic, periodic)  # [3, 3] symmetric strain
    if np.any(periodic):
        atoms.set_cell(np.asarray(atoms.cell) @ (np.eye(3) + eps), scale_atoms=True)
    amp = float(rng.uniform(*rattle))
    atoms.positions += rng.normal(0.0, amp, size=atoms.positions.shape) if amp > 0 else 0.0
    return amp, eps


def build_structure(cfg: GenerateConfig, k: int) -> tuple[Atoms, dict]:
    """Structure k of a config and the random parameters drawn for it.

    Parameters
    ----------
    cfg : GenerateConfig
        Generator settings.
    k : int
        Structure index; the result depends only on ``(cfg, k)``.

    Returns
    -------
    atoms : ase.Atoms
        Perturbed structure (Angstrom).
    info : dict
        JSON-serialisable parameters (index, seed, rattle amplitude, strain, shift...).
    """
    rng = np.random.default_rng([cfg.seed, k])
    atoms, info = _prototype(cfg, rng, k)
    atoms = _repeat(atoms, cfg.system.supercell)
    amp, eps = perturb(atoms, rng, cfg.perturb.rattle, cfg.perturb.strain)
    info |= {"index": k, "seed": cfg.seed, "prototype": cfg.system.prototype,
             "rattle_amplitude": amp, "strain": eps.tolist()}
    if cfg.perturb.vacancies:
        if cfg.perturb.vacancies >= len(atoms):
            raise ConfigError(f"vacancies = {cfg.perturb.vacancies} would remove every atom "
                              f"of the {len(atoms)}-atom cell")
        gone = np.sort(rng.choice(len(atoms), cfg.perturb.vacancies, replace=False))
        del atoms[gone.tolist()]
        info["vacancies"] = gone.tolist()
    return atoms, info


# ---------------------------------------------------------------------------- engine
def _write_json_atomic(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1))


def _parts_dir(out: Path, cfg: GenerateConfig) -> Path:
    """Create or reopen ``<out>.parts``; refuse a folder made by a different config.

    ``n_structures`` may differ (structure k depends only on the seed and k), so a finished
    dataset can be extended by raising it and rerunning.
    """
    parts = Path(f"{out}.parts")
    parts.mkdir(parents=True, exist_ok=True)
    stamp = parts / "config.json"
    want = json.loads(json.dumps(cfg.to_dict()))
    if stamp.exists():
        # Normalised through from_dict, so a field added later with its default (e.g.
        # perturb.vacancies) does not invalidate shards written before it existed.
        have = json.loads(json.dumps(
            GenerateConfig.from_dict(json.loads(stamp.read_text()), str(stamp)).to_dict()))
        if {**have, "n_structures": 0} != {**want, "n_structures": 0}:
            raise ConfigError(f"{parts} was made by a different config; remove it or use "
                             "another output path")
    else:
        _write_json_atomic(stamp, want)
    return parts


def _reference_guess(cfg: GenerateConfig, parts: Path) -> np.ndarray | None:
    """Converged density matrix of the unperturbed structure 0 (cached), or None."""
    if not cfg.dft.reference_guess or cfg.system.prototype == "molecule":
        return None
    path = parts / "reference_dm.npy"
    if path.exists():
        return np.load(path, allow_pickle=False)
    atoms, _ = build_structure(dataclasses.replace(cfg, perturb=PerturbConfig()), 0)
    try:
        _, mf = pyscf_iface.run(atoms, **cfg.dft.run_kwargs(), return_scf=True)
    except _RECORDED:
        return None
    dm = np.asarray(mf.make_rdm1())
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, dm)
    return dm


def _one(cfg: GenerateConfig, k: int, parts: Path, meta: dict, dm0) -> str | None:
    """Compute structure k into its shard; return the failure reason or None."""
    t0 = time.perf_counter()
    try:
        atoms, info = build_structure(cfg, k)
        hs = pyscf_iface.run(atoms, **cfg.dft.run_kwargs(), dm0=dm0)
    except _RECORDED as exc:
        reason = f"{type(exc).__name__}: {exc}"
        _write_json_atomic(parts / f"{k:06d}.failed.json", {"index": k, "reason": reason})
        return reason
    extra = {"generate": info, "dft_settings": cfg.dft.run_kwargs(),
             "seconds": time.perf_counter() - t0} | meta
    h5io.save(hs.replace(metadata=hs.metadata | extra), parts / f"{k:06d}.h5",
              name=f"{k:06d}")
    return None


def _extra(parts: Path, add=()) -> list[int]:
    """Return the indices beyond ``n_structures`` kept in the dataset, ``add`` included."""
    path = parts / "extra.json"
    known = set(json.loads(path.read_text())) if path.exists() else set()
    if set(int(k) for k in add) - known:
        known |= {int(k) for k in add}
        _write_json_atomic(path, sorted(known))
    return sorted(known)


def _merge(out: Path, parts: Path, cfg: GenerateConfig, failures: list,
           extra: list[int]) -> int:
    """Merge every shard into ``out`` atomically; return the number of structures."""
    keep = set(extra)
    shards = sorted(p for p in parts.glob("[0-9]*.h5")
                    if int(p.stem) < cfg.n_structures or int(p.stem) in keep)
    items = ((p.stem, h5io.load(p)) for p in shards)
    with atomic_path(out) as tmp:
        h5io.save_many(items, tmp)
        with h5py.File(tmp, "a") as f:
            f.attrs["generate_config"] = json.dumps(cfg.to_dict())
            f.attrs["failures"] = json.dumps([list(x) for x in failures])
            f.attrs["versions"] = json.dumps(versions())
    return len(shards)


def generate(config, out_path, progress: bool = True, extra=()) -> GenerateReport:
    """Generate (or resume) a PySCF dataset.

    Parameters
    ----------
    config : GenerateConfig, dict, str or path-like
        Config object, nested dict, or TOML path.
    out_path : str or path-like
        Dataset HDF5 file; shards go to ``<out_path>.parts/``.
    progress : bool
        Show a tqdm progress bar.
    extra : sequence of int
        Structure indices at or beyond ``n_structures`` to label as well (the picks of an
        active-learning round); remembered in ``<out>.parts/extra.json`` so that later
        runs keep them in the dataset.

    Returns
    -------
    GenerateReport
        File path, structures written, failures (index, reason), wall time.
    """
    if isinstance(config, dict):
        config = GenerateConfig.from_dict(config)
    elif not isinstance(config, GenerateConfig):
        config = GenerateConfig.from_toml(config)
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    out = Path(out_path)
    parts = _parts_dir(out, config)
    meta = {"versions": versions()}
    extra = _extra(parts, extra)
    todo = [k for k in sorted(set(range(config.n_structures)) | set(extra))
            if not (parts / f"{k:06d}.h5").exists()
            and not (parts / f"{k:06d}.failed.json").exists()]
    dm0 = _reference_guess(config, parts) if todo else None
    total = len(set(range(config.n_structures)) | set(extra))
    bar = tqdm(total=total, initial=total - len(todo),
               disable=not progress, desc=f"generate {out.name}", unit="structure")
    for k in todo:
        reason = _one(config, k, parts, meta, dm0)
        bar.update(1)
        if reason is not None:
            bar.write(f"structure {k} failed: {reason}")
    bar.close()
    failures = sorted(
        (int(d["index"]), str(d["reason"]))
        for d in (json.loads(p.read_text()) for p in parts.glob("*.failed.json"))
        if int(d["index"]) < config.n_structures or int(d["index"]) in extra
    )
    n_done = _merge(out, parts, config, failures, extra)
    return GenerateReport(str(out), n_done, tuple(failures), time.perf_counter() - t0)
