"""Model files: safetensors weights with the JSON metadata in the same file (no pickle).

The safetensors header holds ``{"ase_deeph": JSON}`` with the model config, the basis
per element, the spin kind, the versions (format, ase-deeph, e3nn, torch), the dataset
provenance and training-range statistics (min / max bond length per element pair).
Loading parses JSON and raw tensors only, so it never executes code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import e3nn
import torch
from safetensors.torch import load_file, safe_open, save_file

from ase_deeph.model.config import ModelConfig
from ase_deeph.model.network import HamiltonianNet
from interfaces.atomic import atomic_path
from interfaces.errors import ModelError

__all__ = ["FORMAT_VERSION", "ModelFileError", "save_model", "save_committee", "load_model",
           "load_committee", "committee_size", "read_meta", "update_meta", "package_version",
           "load_state"]

#: tensor-name prefix of committee member k in a committee file
MEMBER_PREFIX = "member{}."


class ModelFileError(ModelError):
    """A model or training-state file is unreadable or inconsistent; the message names it."""

    def __init__(self, path, message: str):
        self.path = str(path)
        super().__init__(f"{path}: {message}")

#: Bump when the weight layout changes; files of another version are refused.
FORMAT_VERSION = 1


def package_version() -> str:
    """Return the ase-deeph version (package attribute, else the installed distribution)."""
    try:
        from ase_deeph import __version__

        return __version__
    except ImportError:  # imported as a namespace package (e.g. a stale editable install)
        from importlib.metadata import version

        return version("ase-deeph")


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def save_model(model: HamiltonianNet, path, extra: dict | None = None) -> Path:
    """Write ``model`` (weights + metadata) atomically to ``path`` (a .safetensors file)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return _write(path, tensors, _meta(model, extra))


def save_committee(models: list[HamiltonianNet], path, extra: dict | None = None) -> Path:
    """Write a committee (same config and basis, member 0 first) into one model file.

    Member k's tensors are stored as ``member{k}.<name>``; the metadata (member 0's plus
    ``extra``) gains ``"committee": {"members": K}``. :func:`load_model` reads member 0,
    :func:`load_committee` all of them.
    """
    first = models[0]
    for m in models[1:]:
        if m.config != first.config or dict(m.basis) != dict(first.basis) or m.spin != first.spin:
            raise ModelError("committee members must share config, basis and spin")
    tensors = {MEMBER_PREFIX.format(k) + name: v.detach().cpu().contiguous()
               for k, m in enumerate(models) for name, v in m.state_dict().items()}
    meta = _meta(first, extra)
    meta["committee"] = {**meta.get("committee", {}), "members": len(models)}
    return _write(path, tensors, meta)


def _write(path, tensors: dict, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"ase_deeph": json.dumps(meta)})
    return path


def update_meta(path, **fields) -> Path:
    """Add or replace metadata entries of a model file; the weights stay byte for byte.

    For facts measured after training (e.g. ``spectrum_range_eV`` of a shipped model);
    the file is rewritten atomically.
    """
    meta = read_meta(path)
    return _write(path, load_file(str(path)), meta | fields)


def committee_size(meta: dict) -> int:
    """Members in a model file (1 for a single model)."""
    return int((meta.get("committee") or {}).get("members", 1))


def _meta(model: HamiltonianNet, extra: dict | None) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "ase_deeph_version": package_version(),
        "e3nn_version": e3nn.__version__,
        "torch_version": torch.__version__,
        "model_config": dataclasses.asdict(model.config),
        "basis": {el: list(sh) for el, sh in model.basis.items()},
        "spin": model.spin,
        **(extra or {}),
    }


def read_meta(path) -> dict:
    """Metadata of a model file (no weights loaded), checked for the keys loading needs."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except Exception as exc:  # safetensors raises several error types
        raise ModelFileError(path, f"not a safetensors model file ({exc})") from None
    if "ase_deeph" not in header:
        raise ModelFileError(path, "safetensors file without ase-deeph metadata")
    try:
        meta = json.loads(header["ase_deeph"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(path, f"ase-deeph metadata is not valid JSON ({exc})") from None
    _check_meta(path, meta)
    return meta


def _check_meta(path, meta) -> None:
    """Raise ModelFileError unless the metadata has a usable basis, config and electrons."""
    if not isinstance(meta, dict):
        raise ModelFileError(path, "ase-deeph metadata is not a JSON object")
    basis = meta.get("basis")
    if not isinstance(basis, dict) or not basis or not all(
            isinstance(sh, list) and all(isinstance(x, int) and 0 <= x <= 6 for x in sh)
            for sh in basis.values()):
        raise ModelFileError(path, "metadata 'basis' must map each element to its list of "
                                   f"shell l values, got {basis!r}"[:300])
    if not isinstance(meta.get("model_config"), dict):
        raise ModelFileError(path, "metadata has no 'model_config' table")
    valence = meta.get("valence_electrons") or {}
    if not isinstance(valence, dict) or any(
            not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
            for v in valence.values()):
        raise ModelFileError(path, "metadata 'valence_electrons' must be finite, non-negative "
                                   f"numbers per element, got {valence!r}"[:300])


def load_model(path, basis: dict | None = None,
               device: str = "cpu") -> tuple[HamiltonianNet, dict]:
    """Load a model file written by :func:`save_model`.

    Parameters
    ----------
    path : path-like
        ``.safetensors`` model file.
    basis : dict, optional
        Expected basis per element; a mismatch raises ValueError naming the element.
    device : str
        Where to put the weights.

    Returns
    -------
    (HamiltonianNet, dict)
        The model in eval mode and its metadata.
    """
    meta = read_meta(path)
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(path, f"model format {meta.get('format_version')} but this "
                         f"ase-deeph ({package_version()}) reads format {FORMAT_VERSION}")
    if _minor(meta.get("e3nn_version", "?")) != _minor(e3nn.__version__):
        raise ModelFileError(path, f"written with e3nn {meta.get('e3nn_version')}, installed "
                                   f"{e3nn.__version__}; install the matching e3nn minor version")
    stored = {el: tuple(sh) for el, sh in meta["basis"].items()}
    if basis is not None:
        for el, shells in basis.items():
            if el not in stored:
                raise ValueError(f"{path}: the model has no basis for element {el}")
            if tuple(shells) != stored[el]:
                raise ValueError(f"{path}: basis mismatch for {el}: model {stored[el]}, "
                                 f"requested {tuple(shells)}")
    models = _members(path, meta, stored, device, only_first=True)
    return models[0], meta


def load_committee(path, device: str = "cpu") -> tuple[list[HamiltonianNet], dict]:
    """Load every member of a committee file (a single-model file gives one member)."""
    model, meta = load_model(path, device=device)
    if committee_size(meta) == 1:
        return [model], meta
    stored = {el: tuple(sh) for el, sh in meta["basis"].items()}
    return _members(path, meta, stored, device, only_first=False), meta


def _members(path, meta: dict, stored: dict, device: str,
             only_first: bool) -> list[HamiltonianNet]:
    """Build the member networks of a model file and load their weights (checked)."""
    n = committee_size(meta)
    weights = load_file(str(path), device=device)
    bad = [k for k, v in weights.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ModelFileError(path, f"non-finite (NaN or inf) weights in {bad[:3]}")
    if n == 1:
        return [_load_weights(path, meta, stored, weights, device)]
    models = []
    for k in range(1 if only_first else n):
        prefix = MEMBER_PREFIX.format(k)
        part = {name[len(prefix):]: v for name, v in weights.items() if name.startswith(prefix)}
        if not part:
            raise ModelFileError(path, f"committee member {k} of {n} has no weights")
        models.append(_load_weights(path, meta, stored, part, device))
    return models


def _load_weights(path, meta: dict, stored: dict, weights: dict, device: str) -> HamiltonianNet:
    """One network from the metadata, with ``weights`` loaded strictly."""
    # files from before these options: no two-centre path, per-l normalisation
    cfg = {"two_centre": False, "norm": "per_l", **meta["model_config"]}
    try:
        model = HamiltonianNet(ModelConfig(**cfg), stored, meta.get("spin", "none"))
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelFileError(path, f"metadata 'model_config' / 'spin' do not describe a "
                                   f"model ({type(exc).__name__}: {exc})") from None
    try:
        missing, unexpected = model.load_state_dict(weights, strict=False)
    except RuntimeError as exc:  # shape mismatch
        raise ModelFileError(path, f"weights do not fit the model ({exc})"[:400]) from None
    if missing or unexpected:
        raise ModelFileError(path, f"weights do not fit the model (missing {missing[:3]}, "
                                   f"unexpected {unexpected[:3]})")
    return model.to(device).eval()


def load_state(path) -> dict:
    """Read a training ``state.pt`` (``torch.load`` with ``weights_only``: no pickle code)."""
    try:
        return torch.load(path, weights_only=True)
    except Exception as exc:  # truncated zip, foreign pickle, ...: torch raises many types
        raise ModelFileError(path, f"unreadable training state ({type(exc).__name__}: {exc}"
                                   "); remove it (or the run folder) to start afresh") from None
