"""DeePTB ``DefaultDataset`` folders (text structure files + HDF5 blocks).

Layout supported (as written by DeePTB's ``dptb/data/interfaces/abacus.py`` and read by
``dptb/data/dataset/_default_dataset.py``)::

    cell.dat            (3, 3) or (n_frames * 3, 3), rows are lattice vectors, Angstrom
    positions.dat       (n_frames * n_atoms, 3), Cartesian Angstrom (``pos_type`` "frac":
                        fractional)
    atomic_numbers.dat  (n_atoms,) or (n_frames * n_atoms,)
    basis.dat           one line per atom, e.g. ``2s2p1d`` (shell counts per l; optionally
                        preceded by the element symbol); ``info.json["basis"]`` as
                        ``{"Si": "2s2p1d"}`` or ``{"Si": ["2s", "2p", "d*"]}`` is used when
                        basis.dat is absent
    info.json           optional: nframes, natoms, pos_type ("cart" / "frac"), pbc, r_max
    hamiltonians.h5     one group per frame, one dataset per block named "i_j_Rx_Ry_Rz"
    overlaps.h5         same keys, spinless real blocks

Assumptions (documented because DeePTB versions differ):

* Frame groups are "0", "1", ... when a group "0" exists, else "1", "2", ... (DeePTB's own
  rule). Atom indices in keys are 0-based in current DeePTB (``block_to_feature`` with
  ``start_id=0``) but 1-based in files from some versions of its ABACUS parser; the reader
  detects the base from the on-site keys ``k_k_0_0_0``. The writer uses 0-based keys and
  frame group "0".
* Orbital order inside a shell is e3nn / Wikipedia m = -l..l (DeePTB's ``ABACUS2DeePTB``
  tables include the (-1)^m phase), i.e. identical to the internal order, code ``"deeptb"``.
* Blocks may be stored for one direction only; the missing (j, i, -R) partners are filled
  with X_ij(R)^dagger. Spinful (SOC) blocks are (2 n_i, 2 n_j) complex, spin-major.
  Collinear data is written spinful block-diagonal and read back as collinear when the
  spin-flip blocks are exactly zero (same rule as :mod:`interfaces.deeph`).
* DeePTB stores no Fermi level; the writer keeps ours in ``info.json["ase_deeph"]``.
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
from ase.data import chemical_symbols

from interfaces._blockops import (
    basis_from_atoms,
    blocks_to_hsdata,
    complete_pairs,
    loadtxt,
    spinful_to_kind,
    write_keyed_blocks,
)
from interfaces.atomic import atomic_folder
from interfaces.checks import check_finite
from interfaces.errors import FormatError, reading
from interfaces.hsdata import HSData

__all__ = ["read", "write", "parse_basis"]

_LETTERS = "spdfgh"
_KEY = re.compile(r"^(\d+)_(\d+)_(-?\d+)_(-?\d+)_(-?\d+)$")


def parse_basis(text) -> tuple[int, ...]:
    """Shells of a DeePTB basis: ``"2s2p1d"`` or ``["2s", "2p", "d*"]`` -> sorted l values."""
    if isinstance(text, (list, tuple)):
        shells = []
        for item in text:
            m = re.fullmatch(r"\d*([spdfgh])\*?", str(item))
            if m is None:
                raise ValueError(f"cannot parse DeePTB orbital {item!r}")
            shells.append(_LETTERS.index(m.group(1)))
        return tuple(sorted(shells))
    pairs = re.findall(r"(\d+)([spdfgh])", text)
    if not pairs or "".join(a + b for a, b in pairs) != text:
        raise ValueError(f"cannot parse DeePTB basis {text!r}")
    if any(int(a) > MAX_SHELLS_PER_L for a, _ in pairs):
        raise ValueError(f"DeePTB basis {text!r} has more than {MAX_SHELLS_PER_L} shells of one l")
    return tuple(sorted(_LETTERS.index(b) for a, b in pairs for _ in range(int(a))))


#: more shells of one l than any basis has: a corrupted basis.dat (checked before expanding)
MAX_SHELLS_PER_L = 16


def _basis_string(shells) -> str:
    return "".join(f"{list(shells).count(lv)}{_LETTERS[lv]}" for lv in sorted(set(shells)))


def _info(path: Path) -> dict:
    f = path / "info.json"
    if not f.is_file():
        return {}
    try:
        info = json.loads(f.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f, f"malformed JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise FormatError(f, "expected a JSON object")
    return info


def _structure(path: Path, info: dict, frame: int) -> Atoms:
    numbers = loadtxt(path / "atomic_numbers.dat", ndmin=1).astype(np.int64)
    pos = loadtxt(path / "positions.dat", ndmin=2)
    n_atoms = int(info.get("natoms", -1))
    n_atoms = len(numbers) if n_atoms < 0 else n_atoms
    if n_atoms < 1 or pos.shape[1:] != (3,) or len(pos) % n_atoms:
        raise FormatError(path / "positions.dat", f"shape {pos.shape} does not fit "
                                                  f"{n_atoms} atoms")
    n_frames = int(info.get("nframes", len(pos) // n_atoms))
    if not 0 <= frame < n_frames or len(pos) != n_frames * n_atoms:
        raise FormatError(path, f"frame {frame} not in the {n_frames} frames of positions.dat")
    if len(numbers) == n_frames * n_atoms:
        numbers = numbers[frame * n_atoms:(frame + 1) * n_atoms]
    if len(numbers) != n_atoms or numbers.min() < 1 or numbers.max() >= len(chemical_symbols):
        raise FormatError(path / "atomic_numbers.dat", f"expected {n_atoms} atomic numbers")
    pbc = info.get("pbc", True)
    pbc = [bool(pbc)] * 3 if isinstance(pbc, bool) else [bool(x) for x in pbc]
    cell = np.zeros((3, 3))
    if (path / "cell.dat").is_file():
        cells = loadtxt(path / "cell.dat", ndmin=2)
        if cells.shape not in ((3, 3), (3 * n_frames, 3)):
            raise FormatError(path / "cell.dat", f"shape {cells.shape} is not (3, 3) or "
                                                 f"({3 * n_frames}, 3)")
        cell = cells.reshape(-1, 3, 3)[frame if len(cells) > 3 else 0]
        check_finite(path / "cell.dat", cell=cell)
    elif any(pbc):
        raise FormatError(path / "cell.dat", "missing file")
    xyz = pos[frame * n_atoms:(frame + 1) * n_atoms]
    check_finite(path / "positions.dat", positions=xyz)
    if info.get("pos_type", "cart") == "frac":
        xyz = xyz @ cell
    return Atoms(numbers=numbers, positions=xyz, cell=cell, pbc=pbc)


def _basis(path: Path, info: dict, atoms: Atoms) -> dict:
    symbols = atoms.get_chemical_symbols()
    f = path / "basis.dat"
    try:
        if f.is_file():
            lines = [ln.split() for ln in f.read_text().splitlines() if ln.strip()]
            if len(lines) != len(atoms):
                raise FormatError(f, f"{len(lines)} lines for {len(atoms)} atoms")
            per_atom = [parse_basis(t[-1]) for t in lines]
            return basis_from_atoms(f, symbols, per_atom)
        if isinstance(info.get("basis"), dict):
            return {el: parse_basis(v) for el, v in info["basis"].items()}
    except FormatError:
        raise
    except ValueError as exc:
        raise FormatError(f, str(exc)) from exc
    raise FormatError(f, "missing file (and no 'basis' in info.json)")


def _group(f: h5py.File, frame: int, path: Path) -> h5py.Group:
    name = str(frame) if "0" in f else str(frame + 1)
    if name not in f or not isinstance(f[name], h5py.Group):
        raise FormatError(path, f"no group {name!r} for frame {frame}")
    return f[name]


def _blocks(path: Path | None, frame: int, n_atoms: int) -> dict | None:
    if path is None:
        return None
    raw = {}
    try:
        with h5py.File(path, "r") as f:
            grp = _group(f, frame, path)
            for key in grp.keys():
                m = _KEY.match(key)
                if m is None or not isinstance(grp[key], h5py.Dataset):
                    raise FormatError(path, f"malformed block key {key!r}")
                raw[tuple(int(x) for x in m.groups())] = np.asarray(grp[key][()])
    except (OSError, RuntimeError, KeyError) as exc:  # h5py: RuntimeError on damaged heaps
        raise FormatError(path, f"not a readable HDF5 file: {exc}") from exc
    if not raw:
        raise FormatError(path, f"frame {frame} holds no blocks")
    base = _index_base(raw, n_atoms, path)
    return {(i - base, j - base, r1, r2, r3): v for (i, j, r1, r2, r3), v in raw.items()}


def _index_base(raw: dict, n_atoms: int, path: Path) -> int:
    idx = np.array([k[:2] for k in raw], dtype=np.int64).reshape(-1, 2)
    if idx.size == 0:
        return 0
    if idx.min() == 0 or (0, 0, 0, 0, 0) in raw:
        base = 0
    elif idx.max() == n_atoms or (n_atoms, n_atoms, 0, 0, 0) in raw:
        base = 1
    else:
        base = 0
    if idx.min() < base or idx.max() >= n_atoms + base:
        raise FormatError(path, f"block keys refer to atoms outside the {n_atoms} atoms")
    return base


def read(path: str | os.PathLike, frame: int = 0) -> HSData:
    """Read one frame of a DeePTB DefaultDataset folder into HSData.

    Raises
    ------
    FormatError
        Missing or inconsistent files, malformed keys, wrong block shapes.
    """
    path = Path(path)
    if not path.is_dir():
        raise FormatError(path, "a DeePTB dataset is a folder")
    with reading(path):
        return _read(path, frame)


def _read(path: Path, frame: int) -> HSData:
    info = _info(path)
    atoms = _structure(path, info, frame)
    basis = _basis(path, info, atoms)
    h_path = path / "hamiltonians.h5" if (path / "hamiltonians.h5").is_file() else None
    s_path = path / "overlaps.h5" if (path / "overlaps.h5").is_file() else None
    if h_path is None and s_path is None:
        raise FormatError(path, "no hamiltonians.h5 and no overlaps.h5")
    h_blocks = _blocks(h_path, frame, len(atoms))
    spinful = bool(h_blocks) and np.iscomplexobj(next(iter(h_blocks.values())))
    if spinful:
        norbs = {el: sum(2 * lv + 1 for lv in ls) for el, ls in basis.items()}
        k = next(iter(h_blocks))
        spinful = next(iter(h_blocks.values())).shape[0] == 2 * norbs[atoms[k[0]].symbol]
    extras = info.get("ase_deeph", {}) if isinstance(info.get("ase_deeph"), dict) else {}
    hs = blocks_to_hsdata(
        path, atoms, {el: basis[el] for el in set(atoms.get_chemical_symbols())}, h_blocks,
        _blocks(s_path, frame, len(atoms)), spinful,
        fermi_level=_float(extras.get("fermi_level")),
        n_electrons=_float(extras.get("n_electrons")), source_code="deeptb",
        source_version=str(extras.get("source", "")),
    )
    return spinful_to_kind(complete_pairs(hs))


def _float(value) -> float:
    return math.nan if value is None else float(value)


def _json_float(x: float):
    return None if not math.isfinite(x) else float(x)


def write(hs: HSData, path: str | os.PathLike) -> Path:
    """Write HSData as a one-frame DeePTB DefaultDataset folder, atomically; return its path.

    Keys are 0-based ``"i_j_Rx_Ry_Rz"`` in group ``"0"``; both directions are written.
    ``info.json`` gets ``r_max`` = longest stored bond + 0.01 Angstrom (DeePTB builds its
    edges from it) and the Fermi level / electron count under ``"ase_deeph"``. The folder
    gets the ordinary permissions (``0o777 & ~umask``).
    """
    try:
        _write(hs, Path(path))
    except FormatError:
        raise
    except (ValueError, NotADirectoryError) as exc:
        raise FormatError(path, f"cannot write: {exc}") from exc
    return Path(path)


def _write(hs: HSData, path: Path) -> None:
    data = hs.with_spin("spinor") if hs.spin == "collinear" else hs
    lengths = np.linalg.norm(hs.edge_vectors(), axis=1)
    info = {"nframes": 1, "natoms": hs.n_atoms, "pos_type": "cart",
            "pbc": [bool(x) for x in hs.atoms.pbc],
            "r_max": math.ceil(100 * float(lengths.max(initial=0))) / 100 + 0.01,
            "ase_deeph": {"spin": hs.spin, "fermi_level": _json_float(hs.fermi_level),
                          "n_electrons": _json_float(hs.n_electrons),
                          "source": f"{hs.source_code} {hs.source_version}".strip()}}
    keys = [f"{i}_{j}_{r[0]}_{r[1]}_{r[2]}" for (i, j), r in
            zip(data.edge_index.T.tolist(), data.cell_shift.tolist(), strict=True)]
    with atomic_folder(path) as tmp:
        np.savetxt(tmp / "cell.dat", np.asarray(hs.atoms.cell), fmt="%.17g")
        np.savetxt(tmp / "positions.dat", hs.atoms.positions, fmt="%.17g")
        np.savetxt(tmp / "atomic_numbers.dat", hs.atoms.numbers, fmt="%d")
        (tmp / "basis.dat").write_text("".join(
            _basis_string(hs.basis[s]) + "\n" for s in hs.atoms.get_chemical_symbols()))
        (tmp / "info.json").write_text(json.dumps(info, indent=1))
        if data.h is not None:
            _write_h5(tmp / "hamiltonians.h5", data, keys, data.h[0], data.spin == "spinor")
        if data.s is not None:
            _write_h5(tmp / "overlaps.h5", data, keys, data.s, False)


def _write_h5(path: Path, hs: HSData, keys: list[str], values, spinor: bool) -> None:
    with h5py.File(path, "w") as h5:
        write_keyed_blocks(h5.create_group("0"), hs, keys, values, spinor)
