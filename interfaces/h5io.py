"""HDF5 storage of :class:`~interfaces.hsdata.HSData`: the dataset schema, written once.

Schema (``SCHEMA_VERSION``)::

    file attrs          | schema_version (int), convention (str), created_by (str)
    /structures/<name>/ | one group per structure; <name> a zero-padded integer or a label
      numbers           | (n_atoms,)        int32     atomic numbers, DFT atom order
      positions         | (n_atoms, 3)      float64   Cartesian, Angstrom
      cell              | (3, 3)            float64   rows are lattice vectors, Angstrom
      pbc               | (3,)              bool
      edge_index        | (2, n_edges)      int64     (i, j), 0-based, on-site included
      cell_shift        | (n_edges, 3)      int32     R in lattice units
      block_ptr         | (n_edges + 1,)    int64     offsets of the (n_i, n_j) C-order blocks
      s_blocks          | (n_values,)       float64   S(R), spinless (optional)
      h_blocks          | (n_spin, n_values) float64, eV  spin "none" (1) / "collinear" (2)
                        | (1, 4 n_values)   complex128, eV  spin "spinor", block e at 4 block_ptr[e]
      attrs             | spin, basis (JSON {symbol: irreps}), fermi_level (eV, NaN unknown),
                        | n_electrons, source_code, source_version, metadata (JSON),
                        | sha256 (hex digest of every dataset and attribute above; checked on load)

Every write goes to a temporary file in the target folder that is renamed over
the target only when complete, so a killed write leaves the previous file intact.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np
from ase import Atoms

from interfaces.atomic import atomic_path
from interfaces.errors import FormatError
from interfaces.hsdata import HSData, irreps_string, parse_irreps

__all__ = ["SCHEMA_VERSION", "CONVENTION", "save", "save_many", "load", "names", "iter_load"]

SCHEMA_VERSION = 1
CONVENTION = "e3nn-wiki-m:-l..l/spin-major/lattice-gauge/eV-Angstrom"


_ATTRS = ("spin", "basis", "fermi_level", "n_electrons", "source_code", "source_version",
          "metadata")


def _digest(grp: h5py.Group) -> str:
    """SHA-256 over the group's datasets (name, dtype, shape, bytes) and attributes."""
    sha = hashlib.sha256()
    for name in sorted(grp.keys()):
        arr = np.ascontiguousarray(grp[name][()])
        sha.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
        sha.update(arr.tobytes())
    for name in _ATTRS:
        sha.update(f"{name}={grp.attrs.get(name)!r}|".encode())
    return sha.hexdigest()


def _write_group(grp: h5py.Group, hs: HSData) -> None:
    grp["numbers"] = hs.atoms.numbers.astype(np.int32)
    grp["positions"] = hs.atoms.positions.astype(np.float64)
    grp["cell"] = np.asarray(hs.atoms.cell, dtype=np.float64)
    grp["pbc"] = np.asarray(hs.atoms.pbc, dtype=bool)
    grp["edge_index"] = hs.edge_index
    grp["cell_shift"] = hs.cell_shift.astype(np.int32)
    grp["block_ptr"] = hs.block_ptr
    if hs.s is not None:
        grp["s_blocks"] = hs.s
    if hs.h is not None:
        grp["h_blocks"] = hs.h
    grp.attrs["spin"] = hs.spin
    grp.attrs["basis"] = json.dumps({el: irreps_string(ls) for el, ls in hs.basis.items()})
    grp.attrs["fermi_level"] = float(hs.fermi_level)
    grp.attrs["n_electrons"] = float(hs.n_electrons)
    grp.attrs["source_code"] = hs.source_code
    grp.attrs["source_version"] = hs.source_version
    grp.attrs["metadata"] = json.dumps(hs.metadata)
    grp.attrs["sha256"] = _digest(grp)


def _read_group(grp: h5py.Group) -> HSData:
    stored = grp.attrs.get("sha256")
    if stored is not None and str(stored) != _digest(grp):
        raise ValueError("checksum mismatch (the file was modified or corrupted)")
    atoms = Atoms(
        numbers=grp["numbers"][()], positions=grp["positions"][()], cell=grp["cell"][()],
        pbc=grp["pbc"][()],
    )
    basis = {el: parse_irreps(txt) for el, txt in json.loads(grp.attrs["basis"]).items()}
    hs = HSData(
        atoms=atoms, basis=basis, edge_index=grp["edge_index"][()],
        cell_shift=grp["cell_shift"][()],
        h=grp["h_blocks"][()] if "h_blocks" in grp else None,
        s=grp["s_blocks"][()] if "s_blocks" in grp else None,
        spin=str(grp.attrs["spin"]), fermi_level=float(grp.attrs["fermi_level"]),
        n_electrons=float(grp.attrs["n_electrons"]), source_code=str(grp.attrs["source_code"]),
        source_version=str(grp.attrs["source_version"]),
        metadata=json.loads(grp.attrs.get("metadata", "{}")),
    )
    if not np.array_equal(grp["block_ptr"][()], hs.block_ptr):
        raise ValueError("block_ptr disagrees with the basis")
    return hs


def _check_file(f: h5py.File, path) -> None:
    version = f.attrs.get("schema_version")
    if version is None or "structures" not in f:
        raise FormatError(path, "not an ase-deeph HSData file (no schema_version / structures)")
    if int(version) > SCHEMA_VERSION:
        raise FormatError(path, f"schema version {int(version)} is newer than {SCHEMA_VERSION}")


def _open(path, mode: str = "r") -> h5py.File:
    try:
        f = h5py.File(path, mode)
    except FileNotFoundError:
        raise FormatError(path, "file not found") from None
    except Exception as exc:  # h5py raises OSError, RuntimeError, KeyError... on damage
        raise FormatError(path, f"unreadable or corrupted HDF5 file ({exc})") from None
    try:
        _check_file(f, path)
    except FormatError:
        f.close()
        raise
    except Exception as exc:
        f.close()
        raise FormatError(path, f"corrupted HDF5 file ({type(exc).__name__}: {exc})") from None
    return f


def _refuse_overwrite(path: Path) -> None:
    """Raise FileExistsError naming ``path`` and what it holds."""
    try:
        held = names(path)
        what = f"a dataset of {len(held)} structure(s) ({', '.join(held[:3])}" + (
            ", ...)" if len(held) > 3 else ")")
    except FormatError:
        what = "a file that is not a readable dataset"
    raise FileExistsError(f"{path} already exists and holds {what}; pass append=True to add "
                          "structures or overwrite=True to replace it")


def save_many(items: list[tuple[str | None, HSData]], path, append: bool = False,
              overwrite: bool = False) -> list[str]:
    """Write several structures in one atomic transaction.

    Parameters
    ----------
    items : list of (name or None, HSData)
        ``None`` names become the next zero-padded integers.
    path : path-like
        Target HDF5 file.
    append : bool
        Keep the structures already in ``path`` (the file must be valid).
    overwrite : bool
        Replace an existing ``path``. Without it (or ``append``) an existing non-empty
        file raises FileExistsError, so a dataset is never replaced by accident.

    Returns
    -------
    list of str
        Group names written.
    """
    path = Path(path)
    if path.exists() and path.stat().st_size > 0 and not (append or overwrite):
        _refuse_overwrite(path)
    written: list[str] = []
    with atomic_path(path) as tmp:
        if append and path.exists():
            with _open(path):
                pass
            shutil.copyfile(path, tmp)
            mode = "a"
        else:
            mode = "w"
        with h5py.File(tmp, mode) as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["convention"] = CONVENTION
            f.attrs["created_by"] = "ase-deeph"
            root = f.require_group("structures")
            for name, hs in items:
                name = name if name is not None else f"{_next_index(root):06d}"
                if name in root:
                    raise FormatError(path, f"structure {name!r} already exists")
                _write_group(root.create_group(name), hs)
                written.append(name)
            f.flush()
    return written


def _next_index(root: h5py.Group) -> int:
    nums = [int(k) for k in root if k.isdigit()]
    return max(nums) + 1 if nums else 0


def save(hs: HSData, path, name: str | None = None, append: bool = False,
         overwrite: bool = False) -> str:
    """Write one structure (atomically); see :func:`save_many`."""
    return save_many([(name, hs)], path, append=append, overwrite=overwrite)[0]


def names(path) -> list[str]:
    """Return the structure names in a dataset file, in storage order."""
    with _open(path) as f:
        try:
            return sorted(f["structures"].keys())
        except Exception as exc:
            raise FormatError(path, f"corrupted structure index ({exc})") from None


def load(path, name: str | int | None = None) -> HSData:
    """Read one structure.

    Parameters
    ----------
    path : path-like
        HDF5 file written by :func:`save`.
    name : str, int or None
        Group name, or position in :func:`names` order; ``None`` needs a
        one-structure file.

    Raises
    ------
    FormatError
        Missing, truncated or corrupted files, unknown names, inconsistent data.
    """
    with _open(path) as f:
        try:
            return _load_from(f, path, name)
        except FormatError:
            raise
        except Exception as exc:  # any damage inside the file
            raise FormatError(path, f"damaged file ({type(exc).__name__}: {exc})") from None


def _load_from(f: h5py.File, path, name) -> HSData:
    root = f["structures"]
    keys = sorted(root.keys())
    if name is None:
        if len(keys) != 1:
            raise FormatError(path, f"holds {len(keys)} structures; pass name=")
        name = keys[0]
    elif isinstance(name, (int, np.integer)):
        if not -len(keys) <= name < len(keys):
            raise FormatError(path, f"structure index {name} out of range ({len(keys)})")
        name = keys[name]
    if name not in root:
        raise FormatError(path, f"no structure named {name!r}")
    try:
        return _read_group(root[name])
    except Exception as exc:
        raise FormatError(path, f"structure {name!r} is damaged: {exc}") from None


def iter_load(path) -> Iterator[tuple[str, HSData]]:
    """Yield ``(name, HSData)`` for every structure in a dataset file."""
    for name in names(path):
        yield name, load(path, name)
