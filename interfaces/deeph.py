"""DeepH dataset folders: the legacy layout (DeepH-pack, DeepH-E3) and the new one (DeepH-dock).

Both use eV and Angstrom (``docs/formats.md`` section 4).

Legacy (``layout="legacy"``): ``element.dat``, ``lat.dat`` (columns are lattice vectors),
``rlat.dat`` (written, not read), ``site_positions.dat`` (3 x N), ``orbital_types.dat``,
``info.json`` (``isspinful``, ``fermi_level``), ``hamiltonians.h5`` / ``overlaps.h5`` with one
dataset per block named ``"[Rx, Ry, Rz, i, j]"`` (1-based atoms), OpenMX orbital order.

New (``layout="new"``): ``POSCAR`` (atoms regrouped by element), ``info.json``
(``elements_orbital_map``, ``spinful``, ``fermi_energy_eV``, ``occupation``),
``hamiltonian.h5`` / ``overlap.h5`` with ``atom_pairs`` (0-based, POSCAR order),
``chunk_shapes``, ``chunk_boundaries`` and flat ``entries``; Wikipedia (= internal) order.
The writer adds ``info.json["ase_deeph"]["dft_atom_order"]`` (the DFT index of each POSCAR
atom); the reader uses it to restore the DFT atom order, otherwise atoms stay in POSCAR order.

Spin: spinful blocks are (2 n_i, 2 n_j) complex, spin-major; S is spinless. Neither layout
has a collinear flag, so collinear data is written spinful block-diagonal and read back as
``"collinear"`` when the spin-flip blocks are exactly zero and the diagonal ones real
(:func:`interfaces._blockops.spinful_to_kind`); otherwise ``"spinor"``.

``which`` selects the H file: ``"h"`` (``hamiltonians.h5`` / ``hamiltonian.h5``), ``"pred"``
(``hamiltonians_pred.h5`` / ``hamiltonian_pred.h5``) or ``"dm"`` (density matrix; legacy
``density_matrixs.h5`` or ``density_matrices.h5``, new ``density_matrix.h5``). Other files
(positions, density matrices when not selected) are ignored. Blocks present in only one of
the H and S files are zero in the other; missing Hermitian partners are completed.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import h5py
import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from interfaces import orbitals
from interfaces._blockops import (
    basis_from_atoms,
    blocks_to_hsdata,
    complete_pairs,
    loadtxt,
    spinful_to_kind,
    write_keyed_blocks,
)
from interfaces.atomic import atomic_folder
from interfaces.checks import check_finite, check_structure
from interfaces.errors import FormatError, reading
from interfaces.hsdata import HSData

__all__ = ["read", "write", "detect_layout", "LEGACY_FILES", "NEW_FILES"]

#: H file names per ``which``, legacy layout (first existing one is used).
LEGACY_FILES = {"h": ("hamiltonians.h5",), "pred": ("hamiltonians_pred.h5",),
                "dm": ("density_matrixs.h5", "density_matrices.h5"), "s": ("overlaps.h5",)}
#: H file names per ``which``, new layout.
NEW_FILES = {"h": ("hamiltonian.h5",), "pred": ("hamiltonian_pred.h5",),
             "dm": ("density_matrix.h5",), "s": ("overlap.h5",)}
_KEY = re.compile(r"^\[\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\]$")


def detect_layout(path: str | os.PathLike) -> str:
    """Return ``"legacy"`` or ``"new"`` from the files in a DeepH folder (legacy wins)."""
    path = Path(path)
    if not path.is_dir():
        raise FormatError(path, "a DeepH dataset is a folder")
    files = {p.name for p in path.iterdir()}
    if "orbital_types.dat" in files or "element.dat" in files:
        return "legacy"
    if "POSCAR" in files and "info.json" in files:
        return "new"
    raise FormatError(path, "neither a legacy (orbital_types.dat) nor a new (POSCAR + "
                            "info.json) DeepH folder")


def read(path: str | os.PathLike, layout: str | None = None, which: str = "h") -> HSData:
    """Read a DeepH folder (legacy or new layout, auto-detected) into HSData.

    Parameters
    ----------
    path : path-like
        The structure folder.
    layout : {None, "legacy", "new"}
        Force a layout; default detects it from the files.
    which : {"h", "pred", "dm"}
        Which matrix to read as ``h`` (see module docstring). S is always read.

    Raises
    ------
    FormatError
        Missing or inconsistent files, malformed keys, wrong block shapes.
    """
    path = Path(path)
    layout = layout or detect_layout(path)
    if which not in LEGACY_FILES or which == "s":
        raise ValueError(f"which must be 'h', 'pred' or 'dm', got {which!r}")
    with reading(path):
        hs = _read_legacy(path, which) if layout == "legacy" else _read_new(path, which)
        return spinful_to_kind(complete_pairs(hs))


def _find(path: Path, names: tuple[str, ...]) -> Path | None:
    return next((path / n for n in names if (path / n).is_file()), None)


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise FormatError(path, "missing file")
    try:
        out = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(path, f"malformed JSON: {exc}") from exc
    if not isinstance(out, dict):
        raise FormatError(path, "expected a JSON object")
    return out


def _float(value) -> float:
    return math.nan if value is None else float(value)


# ----------------------------------------------------------------------------- legacy
def _legacy_atoms(path: Path) -> tuple[Atoms, dict]:
    numbers = loadtxt(path / "element.dat", ndmin=1).astype(np.int64)
    cell = loadtxt(path / "lat.dat", ndmin=2).T
    pos = loadtxt(path / "site_positions.dat", ndmin=2)
    if cell.shape != (3, 3):
        raise FormatError(path / "lat.dat", f"expected a 3 x 3 matrix, got {cell.shape}")
    if pos.shape != (3, len(numbers)):
        raise FormatError(path / "site_positions.dat",
                          f"expected 3 x {len(numbers)} numbers, got {pos.shape}")
    if numbers.min() < 1 or numbers.max() >= len(chemical_symbols):
        raise FormatError(path / "element.dat", "invalid atomic numbers")
    check_finite(path / "lat.dat", cell=cell)
    check_finite(path / "site_positions.dat", positions=pos)
    atoms = Atoms(numbers=numbers, positions=pos.T, cell=cell, pbc=True)
    ot_path = path / "orbital_types.dat"
    if not ot_path.is_file():
        raise FormatError(ot_path, "missing file")
    try:
        per_atom = [tuple(int(x) for x in line.split())
                    for line in ot_path.read_text().splitlines() if line.strip()]
    except ValueError as exc:
        raise FormatError(ot_path, f"malformed orbital types: {exc}") from exc
    if len(per_atom) != len(atoms) or any(lv < 0 for t in per_atom for lv in t):
        raise FormatError(ot_path, f"expected one line of l values per atom ({len(atoms)})")
    return atoms, per_atom


def _legacy_blocks(path: Path | None, n_atoms: int) -> dict | None:
    if path is None:
        return None
    out = {}
    try:
        with h5py.File(path, "r") as f:
            for key in f.keys():
                m = _KEY.match(key)
                if m is None:
                    raise FormatError(path, f"malformed block key {key!r}")
                r1, r2, r3, i, j = (int(x) for x in m.groups())
                if not (1 <= i <= n_atoms and 1 <= j <= n_atoms):
                    raise FormatError(path, f"block key {key} refers to atoms outside "
                                            f"1..{n_atoms}")
                if not isinstance(f[key], h5py.Dataset):
                    raise FormatError(path, f"block {key} is not a dataset")
                out[(i - 1, j - 1, r1, r2, r3)] = np.asarray(f[key][()])
    except (OSError, RuntimeError) as exc:  # h5py: RuntimeError on damaged heaps
        raise FormatError(path, f"not a readable HDF5 file: {exc}") from exc
    if not out:
        raise FormatError(path, "holds no blocks")
    return out


def _read_legacy(path: Path, which: str) -> HSData:
    atoms, per_atom = _legacy_atoms(path)
    info = _load_json(path / "info.json")
    symbols = atoms.get_chemical_symbols()
    file_order = basis_from_atoms(path / "orbital_types.dat", symbols, per_atom)
    basis = {el: tuple(sorted(ls)) for el, ls in file_order.items()}
    orders = {el: [int(p) for p in np.argsort(ls, kind="stable")] for el, ls in file_order.items()}
    h_path = _find(path, LEGACY_FILES[which])
    s_path = _find(path, LEGACY_FILES["s"])
    if h_path is None and (which != "h" or s_path is None):
        raise FormatError(path, f"no {LEGACY_FILES[which][0]} (nor overlaps.h5 for 'h')")
    extras = info.get("ase_deeph", {}) if isinstance(info.get("ase_deeph"), dict) else {}
    hs = blocks_to_hsdata(
        path, atoms, basis, _legacy_blocks(h_path, len(atoms)),
        _legacy_blocks(s_path, len(atoms)), bool(info.get("isspinful", False)),
        fermi_level=_float(info.get("fermi_level")),
        n_electrons=_float(extras.get("n_electrons")), source_code="deeph-legacy",
        source_version=str(extras.get("source", "")),
    )
    return orbitals.to_internal(hs, "deeph-legacy", orders)


def _write_legacy(hs: HSData, tmp: Path, which: str) -> None:
    per_atom = [hs.basis[s] for s in hs.atoms.get_chemical_symbols()]
    cell = np.asarray(hs.atoms.cell)
    np.savetxt(tmp / "element.dat", hs.atoms.numbers, fmt="%d")
    np.savetxt(tmp / "lat.dat", cell.T, fmt="%.17g")
    np.savetxt(tmp / "rlat.dat", (2 * np.pi * np.linalg.inv(cell).T).T, fmt="%.17g")
    np.savetxt(tmp / "site_positions.dat", hs.atoms.positions.T, fmt="%.17g")
    (tmp / "orbital_types.dat").write_text(
        "".join("  ".join(str(lv) for lv in ls) + "\n" for ls in per_atom))
    info = {"nsites": hs.n_atoms, "isorthogonal": False, "isspinful": hs.spin != "none",
            "norbits": hs.n_orbitals, "fermi_level": _json_float(hs.fermi_level),
            "ase_deeph": _extras(hs)}
    (tmp / "info.json").write_text(json.dumps(info, indent=1))
    code = orbitals.from_internal(_spinful(hs), "deeph-legacy")
    keys = [f"[{r[0]}, {r[1]}, {r[2]}, {i + 1}, {j + 1}]"
            for (i, j), r in zip(code.edge_index.T.tolist(), code.cell_shift.tolist(),
                                 strict=True)]
    if code.h is not None:
        _write_legacy_h5(tmp / LEGACY_FILES[which][0], code, keys, code.h[0],
                         code.spin == "spinor")
    if code.s is not None:
        _write_legacy_h5(tmp / "overlaps.h5", code, keys, code.s, False)


def _write_legacy_h5(path: Path, hs: HSData, keys: list[str], values, spinor: bool) -> None:
    with h5py.File(path, "w") as h5:
        write_keyed_blocks(h5, hs, keys, values, spinor)


# -------------------------------------------------------------------------------- new
def _read_new_h5(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        with h5py.File(path, "r") as f:
            pairs = np.asarray(f["atom_pairs"][()], dtype=np.int64)
            shapes = np.asarray(f["chunk_shapes"][()], dtype=np.int64)
            bounds = np.asarray(f["chunk_boundaries"][()], dtype=np.int64)
            entries = np.asarray(f["entries"][()])
    except (OSError, KeyError) as exc:
        raise FormatError(path, f"not a DeepH matrix file: {exc}") from exc
    n = len(pairs)
    if pairs.shape != (n, 5) or shapes.shape != (n, 2) or bounds.shape != (n + 1,):
        raise FormatError(path, "atom_pairs, chunk_shapes and chunk_boundaries disagree")
    if bounds[0] != 0 or np.any(np.diff(bounds) != shapes.prod(axis=1)) or (
            bounds[-1] != entries.size):
        raise FormatError(path, "chunk_boundaries do not match chunk_shapes and entries")
    entries = entries.reshape(-1)
    return {(int(p[3]), int(p[4]), int(p[0]), int(p[1]), int(p[2])):
            entries[b0:b1].reshape(sh) for p, b0, b1, sh in
            zip(pairs, bounds[:-1], bounds[1:], shapes.tolist(), strict=True)}


def _new_atoms(path: Path, info: dict) -> tuple[Atoms, dict]:
    from ase.io import read as ase_read

    try:
        atoms = ase_read(path / "POSCAR", format="vasp")
    except Exception as exc:  # ase raises many types for a malformed POSCAR
        raise FormatError(path / "POSCAR", f"cannot parse POSCAR: {exc}") from exc
    check_structure(atoms, path / "POSCAR")
    emap = info.get("elements_orbital_map")
    if not isinstance(emap, dict):
        raise FormatError(path / "info.json", "missing elements_orbital_map")
    basis = {}
    for el, ls in emap.items():
        sym = chemical_symbols[int(el)] if str(el).isdigit() else str(el)
        if sym not in atomic_numbers or not isinstance(ls, list):
            raise FormatError(path / "info.json", f"bad elements_orbital_map entry {el!r}")
        basis[sym] = tuple(int(x) for x in ls)
    if int(info.get("atoms_quantity", len(atoms))) != len(atoms):
        raise FormatError(path / "info.json", "atoms_quantity disagrees with POSCAR")
    return atoms, basis


def _read_new(path: Path, which: str) -> HSData:
    info = _load_json(path / "info.json")
    atoms, file_basis = _new_atoms(path, info)
    missing = set(atoms.get_chemical_symbols()) - set(file_basis)
    if missing:
        raise FormatError(path / "info.json", f"no orbitals for elements {sorted(missing)}")
    norb = sum(sum(2 * lv + 1 for lv in file_basis[s]) for s in atoms.get_chemical_symbols())
    if int(info.get("orbits_quantity", norb)) != norb:
        raise FormatError(path / "info.json", "orbits_quantity disagrees with the basis")
    basis = {el: tuple(sorted(ls)) for el, ls in file_basis.items()}
    orders = {el: [int(p) for p in np.argsort(ls, kind="stable")] for el, ls in file_basis.items()}
    h_path, s_path = _find(path, NEW_FILES[which]), _find(path, NEW_FILES["s"])
    if h_path is None and (which != "h" or s_path is None):
        raise FormatError(path, f"no {NEW_FILES[which][0]} (nor overlap.h5 for 'h')")
    extras = info.get("ase_deeph", {}) if isinstance(info.get("ase_deeph"), dict) else {}
    hs = blocks_to_hsdata(
        path, atoms, {el: basis[el] for el in set(atoms.get_chemical_symbols())},
        _read_new_h5(h_path), _read_new_h5(s_path), bool(info.get("spinful", False)),
        fermi_level=_float(info.get("fermi_energy_eV")),
        n_electrons=_float(info.get("occupation")), source_code="deeph",
        source_version=str(extras.get("source", "")),
    )
    hs = orbitals.to_internal(hs, "deeph", orders)
    return _restore_order(hs, extras.get("dft_atom_order"))


def _restore_order(hs: HSData, order) -> HSData:
    """Undo the POSCAR regrouping when the writer recorded the DFT atom order."""
    try:
        order = np.asarray(order, dtype=np.int64)
    except (TypeError, ValueError):
        return hs
    if order.shape != (hs.n_atoms,) or not np.array_equal(np.sort(order), np.arange(hs.n_atoms)):
        return hs
    inv = np.argsort(order)
    return hs.replace(atoms=hs.atoms[inv], edge_index=order[hs.edge_index])


def _poscar_order(symbols: list[str]) -> np.ndarray:
    first = {s: k for k, s in reversed(list(enumerate(symbols)))}
    return np.array(sorted(range(len(symbols)), key=lambda k: (first[symbols[k]], k)))


def _write_new(hs: HSData, tmp: Path, which: str) -> None:
    symbols = hs.atoms.get_chemical_symbols()
    order = _poscar_order(symbols)  # POSCAR atom k is DFT atom order[k]
    atoms = hs.atoms[order]
    species = list(dict.fromkeys(atoms.get_chemical_symbols()))
    counts = [atoms.get_chemical_symbols().count(s) for s in species]
    lines = ["POSCAR written by ase-deeph", "1.0"]
    lines += ["  " + "  ".join(f"{x:.16g}" for x in a) for a in np.asarray(atoms.cell)]
    lines += ["  " + "  ".join(species), "  " + "  ".join(str(c) for c in counts), "Cartesian"]
    lines += ["  " + "  ".join(f"{x:.16g}" for x in p) for p in atoms.positions]
    (tmp / "POSCAR").write_text("\n".join(lines) + "\n")
    info = {"atoms_quantity": hs.n_atoms, "orbits_quantity": hs.n_orbitals,
            "orthogonal_basis": False, "spinful": hs.spin != "none",
            "fermi_energy_eV": _json_float(hs.fermi_level),
            "elements_orbital_map": {s: list(hs.basis[s]) for s in species},
            "ase_deeph": {**_extras(hs), "dft_atom_order": order.tolist()}}
    if math.isfinite(hs.n_electrons):
        info["occupation"] = hs.n_electrons
    (tmp / "info.json").write_text(json.dumps(info, indent=1))
    inv = np.argsort(order)
    data = _spinful(hs)
    pairs = np.concatenate([data.cell_shift, inv[data.edge_index].T], axis=1)
    if data.h is not None:
        _write_new_h5(tmp / NEW_FILES[which][0], data, pairs, data.h[0], data.spin == "spinor")
    if data.s is not None:
        _write_new_h5(tmp / "overlap.h5", data, pairs, data.s, False)


def _write_new_h5(path: Path, hs: HSData, pairs, values, spinor: bool) -> None:
    f = 2 if spinor else 1
    shapes = np.stack([hs.norbs[hs.edge_index[0]], hs.norbs[hs.edge_index[1]]], axis=1) * f
    with h5py.File(path, "w") as h5:
        h5["atom_pairs"] = pairs.astype(np.int64)
        h5["chunk_shapes"] = shapes.astype(np.int64)
        h5["chunk_boundaries"] = hs.block_ptr * f * f
        h5["entries"] = values


# ----------------------------------------------------------------------------- common
def _json_float(x: float):
    return None if not math.isfinite(x) else float(x)


def _extras(hs: HSData) -> dict:
    return {"spin": hs.spin, "n_electrons": _json_float(hs.n_electrons),
            "source": f"{hs.source_code} {hs.source_version}".strip()}


def _spinful(hs: HSData) -> HSData:
    return hs.with_spin("spinor") if hs.spin == "collinear" else hs


def write(hs: HSData, path: str | os.PathLike, layout: str = "new", which: str = "h") -> Path:
    """Write HSData as a DeepH structure folder, atomically (temp folder, then rename).

    The folder gets the ordinary permissions (``0o777 & ~umask``, see
    :func:`interfaces.atomic.atomic_folder`); the path written is returned.

    Parameters
    ----------
    hs : HSData
        Data to write (collinear H is stored spinful block-diagonal).
    path : path-like
        Target folder; files already there and not written are left untouched.
    layout : {"new", "legacy"}
        DeepH-dock (default) or DeepH-pack / DeepH-E3 layout.
    which : {"h", "pred", "dm"}
        File name used for ``hs.h`` (``"pred"`` writes ``hamiltonian(s)_pred.h5``).
    """
    if layout not in ("new", "legacy"):
        raise ValueError(f"layout must be 'new' or 'legacy', got {layout!r}")
    if which not in ("h", "pred", "dm"):
        raise ValueError(f"which must be 'h', 'pred' or 'dm', got {which!r}")
    try:
        with atomic_folder(path) as tmp:
            (_write_new if layout == "new" else _write_legacy)(hs, tmp, which)
    except FormatError:
        raise
    except (ValueError, NotADirectoryError) as exc:
        raise FormatError(path, f"cannot write: {exc}") from exc
    return Path(path)
