"""TOML configuration of an EPC run (``ase-deeph epc CONFIG.toml``).

Example (the toy H/S model: seconds; 2-core CPU, one thread)::

    [structure]              # the primitive cell; omit to use phonopy's primitive cell
    bulk = "Si"              # ase.build.bulk name (with crystal, a), or file = "POSCAR",
    crystal = "diamond"      # or build = "graphene" (with a, vacuum)
    a = 5.43

    [phonons]                # one of: phonopy_yaml | force_constants | calculator
    calculator = "tersoff-si"  # or "tersoff-c" (carbon)
    supercell = [3, 3, 3]
    imag_tol = 1.0           # meV; frequencies below -imag_tol are imaginary (masked)

    [hs]
    provider = "toy"         # "toy", "pyscf" or "model" (with model = "si", "default"
    onsite_d = "auto"        # or a .safetensors file); onsite_d "auto" or "none"

    [fd]
    n_box = 1                # or [N_a, N_b, N_c], e.g. [3, 3, 0] for a layer
    delta = 0.01
    symmetry = true          # displace symmetry-inequivalent atoms only, rotate the rest

    [coupling]
    kpoints = [[0.0, 0.0, 0.0]]
    qpath = "LGXWKG"
    npoints = 60
    bands = [1, 2, 3]
    mask_unstable = "mode"   # imaginary/unstable modes -> NaN: "mode", "branch" or "none"

    [eliashberg]             # omit the section to skip
    k_mesh = [8, 8, 8]
    q_mesh = [4, 4, 4]
    sigma_el = 0.1
    mu_star = [0.1, 0.13]
    # fermi_level = -6.0     # eV; default: computed from the electron count -- mid-gap in
    #                        # an insulator (as here), where N_F = lambda = 0 (a warning)

Shipped configs (``ase_deeph/configs/epc/``, each states its cost): ``si_model.toml``
(bulk Si, shipped Si model) and ``graphene_model.toml`` (graphene, shipped default model).

Relative paths are resolved against the TOML file's folder; a ``model`` that is not a
file there is a shipped model name. Unknown keys are errors.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from ase_deeph.settings import load_toml
from interfaces.errors import ConfigError
from interfaces.pyscf.basis import DEFAULT_BASIS

__all__ = ["EPCConfig", "from_toml", "PROVIDERS"]

#: Values of ``[hs] provider`` (a model file path is also accepted, as "model").
PROVIDERS = ("toy", "pyscf", "model")

_SECTIONS = ("structure", "phonons", "hs", "fd", "coupling", "eliashberg")


@dataclass(frozen=True)
class EPCConfig:
    """Flattened EPC run settings (see the module docstring for the TOML layout).

    Units: Angstrom (a, vacuum, delta), eV (sigma_el, fermi_level), meV (sigma_ph,
    soft_cutoff, imag_tol). ``model`` is a shipped model name or a model file (absolute).
    """

    structure_file: str | None = None
    bulk: str | None = None
    crystal: str | None = None
    a: float | None = None
    build: str | None = None
    vacuum: float | None = None
    phonopy_yaml: str | None = None
    force_constants: str | None = None
    calculator: str | None = None
    supercell: tuple[int, int, int] = (3, 3, 3)
    displacement: float = 0.01
    imag_tol: float = 1.0
    provider: str = "toy"
    model: str | None = None
    toy_seed: int = 0
    pyscf_basis: str = DEFAULT_BASIS
    pyscf_kmesh: tuple[int, int, int] | None = None
    onsite_d: str = "auto"
    n_box: int | tuple[int, int, int] = 1
    symmetry: bool = True
    delta: float = 0.01
    scheme: str = "central"
    form: str | None = None
    kpoints: tuple = ((0.0, 0.0, 0.0),)
    qpath: str | None = None
    npoints: int = 60
    bands: tuple[int, ...] | None = None
    mask_unstable: str = "mode"
    k_mesh: tuple[int, int, int] | None = None
    q_mesh: tuple[int, int, int] | None = None
    sigma_el: float = 0.1
    sigma_ph: float = 0.5
    fermi_level: float | None = None
    soft_cutoff: float = 2.0
    mu_star: tuple[float, ...] = (0.1,)


_KEYS = {
    "structure": {"file": "structure_file", "bulk": "bulk", "crystal": "crystal", "a": "a",
                  "build": "build", "vacuum": "vacuum"},
    "phonons": {"phonopy_yaml": "phonopy_yaml", "force_constants": "force_constants",
                "calculator": "calculator", "supercell": "supercell",
                "displacement": "displacement", "imag_tol": "imag_tol"},
    "hs": {"provider": "provider", "model": "model", "seed": "toy_seed",
           "basis": "pyscf_basis", "kmesh": "pyscf_kmesh", "onsite_d": "onsite_d"},
    "fd": {"n_box": "n_box", "delta": "delta", "scheme": "scheme", "symmetry": "symmetry"},
    "coupling": {"kpoints": "kpoints", "qpath": "qpath", "npoints": "npoints", "bands": "bands",
                 "form": "form", "mask_unstable": "mask_unstable"},
    "eliashberg": {"k_mesh": "k_mesh", "q_mesh": "q_mesh", "sigma_el": "sigma_el",
                   "sigma_ph": "sigma_ph", "fermi_level": "fermi_level",
                   "soft_cutoff": "soft_cutoff", "mu_star": "mu_star"},
}
_PATHS = ("structure_file", "phonopy_yaml", "force_constants")


def _tuple(x):
    return tuple(_tuple(v) for v in x) if isinstance(x, list) else x


def from_toml(path) -> EPCConfig:
    """Read an EPC TOML file; unknown sections or keys raise ValueError naming the file."""
    path = Path(path)
    data = load_toml(path)
    kw = {}
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"{path}: unknown section [{section}]; known: {_SECTIONS}")
        for key, value in values.items():
            if key not in _KEYS[section]:
                raise ConfigError(f"{path}: unknown key {key!r} in [{section}]; known: "
                                 f"{sorted(_KEYS[section])}")
            kw[_KEYS[section][key]] = _tuple(value)
    if "eliashberg" in data and "k_mesh" not in kw:
        kw["k_mesh"] = (8, 8, 8)
    if isinstance(kw.get("mu_star"), (int, float)):
        kw["mu_star"] = (float(kw["mu_star"]),)
    for name in _PATHS:
        if kw.get(name) is not None:
            kw[name] = str((path.parent / kw[name]).resolve())
    _resolve_model(path, kw)
    names = {f.name for f in fields(EPCConfig)}
    assert set(kw) <= names
    return EPCConfig(**kw)


def _model_ref(path: Path, value: str) -> str:
    """Return the model file next to the TOML (absolute) or, if none is there, the name."""
    file = path.parent / value
    if file.exists() or Path(value).suffix or "/" in value:
        return str(file.resolve())
    return value


def _resolve_model(path: Path, kw: dict) -> None:
    """Normalise ``provider``/``model``: a model file as provider means provider "model"."""
    provider = kw.get("provider")
    if provider not in (None, *PROVIDERS):
        if kw.get("model") is not None:
            raise ConfigError(f"{path}: [hs] gives both provider = {provider!r} and model")
        kw["provider"], kw["model"] = "model", provider
    if kw.get("model") is not None:
        if kw.setdefault("provider", "model") != "model":
            raise ConfigError(f"{path}: [hs] model needs provider = 'model' (or no provider), "
                             f"got {kw['provider']!r}")
        kw["model"] = _model_ref(path, kw["model"])
    elif kw.get("provider") == "model":
        raise ConfigError(f"{path}: [hs] provider = 'model' needs model = NAME or FILE")
