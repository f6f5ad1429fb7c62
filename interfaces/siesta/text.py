"""SIESTA text files: EIG, KP, ORB_INDX, XV, STRUCT_OUT and fdf (read), fdf and XV (write).

Units follow the files (``docs/formats.md`` section 1.6): EIG in eV, KP in
Cartesian Bohr^-1 (2 pi included), ORB_INDX cutoffs in Bohr, XV in Bohr, STRUCT_OUT in
Angstrom (fractional positions). Returned structures are :class:`ase.Atoms` in Angstrom.
All parsers accept ``*.gz`` files and raise :class:`~interfaces.errors.FormatError`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from ase.units import Bohr

from interfaces._fortran import atomic_write_bytes, read_bytes
from interfaces.errors import FormatError, reader

__all__ = [
    "SiestaEig", "SiestaKP", "OrbIndex", "read_eig", "read_kp", "read_orb_indx", "read_xv",
    "read_struct_out", "read_fdf", "fdf_atoms", "write_fdf", "write_xv", "find_sibling",
    "element_of_label",
]


def _text(path: str | os.PathLike) -> str:
    try:
        return read_bytes(path).decode()
    except UnicodeDecodeError as exc:
        raise FormatError(path, f"cannot read text file: {exc}") from exc


def _floats(path, tokens) -> np.ndarray:
    try:
        return np.array([float(t.replace("D", "E").replace("d", "e")) for t in tokens])
    except ValueError as exc:
        raise FormatError(path, f"non-numeric value: {exc}") from exc


def find_sibling(folder: Path, suffix: str, label: str | None = None) -> Path | None:
    """Return ``folder/label.suffix`` (or ``.gz``), else the only ``*.suffix`` there, else None."""
    names = [f"{label}.{suffix}", f"{label}.{suffix}.gz"] if label else []
    for name in names:
        if (folder / name).is_file():
            return folder / name
    hits = sorted(folder.glob(f"*.{suffix}")) + sorted(folder.glob(f"*.{suffix}.gz"))
    return hits[0] if len(hits) == 1 or (hits and not label) else None


def element_of_label(label: str) -> int:
    """Atomic number of a species label such as ``"Si"``, ``"Si_surf"`` or ``"Pt2"`` (0 if none)."""
    letters = re.match(r"[A-Za-z]*", label.strip()).group(0)
    for cand in (letters[:2], letters[:1]):
        sym = cand.capitalize()
        if sym in atomic_numbers and sym != "X":
            return atomic_numbers[sym]
    return 0

# ----------------------------------------------------------------------------- EIG / KP
@dataclass(frozen=True)
class SiestaEig:
    """Eigenvalues printed by SIESTA (``*.EIG``).

    Attributes
    ----------
    fermi_level : float
        Fermi level, eV.
    eigenvalues : ndarray, shape (n_k, n_blocks, n_bands)
        eV; n_blocks = 2 for collinear spin, else 1 (spinor runs print 2 no_u bands).
    nspin : int
        The nspin field of the file (1, 2, 4 or 8).
    """

    fermi_level: float
    eigenvalues: np.ndarray
    nspin: int


@reader
def read_eig(path: str | os.PathLike) -> SiestaEig:
    """Read a SIESTA ``.EIG`` file (Fermi level and eigenvalues in eV)."""
    tok = _text(path).split()
    if len(tok) < 4:
        raise FormatError(path, "EIG file too short")
    head = _floats(path, tok[:4])
    n_b, nspin, n_k = (int(x) for x in head[1:4])
    blocks = nspin if nspin in (1, 2) else 1
    if min(n_b, n_k) < 1 or nspin not in (1, 2, 4, 8):
        raise FormatError(path, f"bad EIG header: nbands={n_b}, nspin={nspin}, nk={n_k}")
    vals = _floats(path, tok[4:])
    if vals.size != n_k * (1 + n_b * blocks):
        raise FormatError(path, f"expected {n_k} k-points of {n_b * blocks} values, got "
                                f"{vals.size} numbers")
    vals = vals.reshape(n_k, 1 + n_b * blocks)
    if not np.array_equal(vals[:, 0], np.arange(1, n_k + 1)):
        raise FormatError(path, "k-point indices are not 1..nk")
    return SiestaEig(float(head[0]), vals[:, 1:].reshape(n_k, blocks, n_b), nspin)


@dataclass(frozen=True)
class SiestaKP:
    """k-points of a SIESTA run (``*.KP``).

    Attributes
    ----------
    kpts : ndarray, shape (n_k, 3)
        Cartesian k, Bohr^-1, 2 pi included.
    weights : ndarray, shape (n_k,)
    """

    kpts: np.ndarray
    weights: np.ndarray

    def fractional(self, cell: np.ndarray) -> np.ndarray:
        """Return k in reduced coordinates, (n_k, 3), for a cell in Angstrom (rows = vectors)."""
        return self.kpts @ (np.asarray(cell, dtype=float).T / Bohr) / (2 * np.pi)


@reader
def read_kp(path: str | os.PathLike) -> SiestaKP:
    """Read a SIESTA ``.KP`` file."""
    tok = _text(path).split()
    if not tok:
        raise FormatError(path, "empty KP file")
    n_k = int(_floats(path, tok[:1])[0])
    vals = _floats(path, tok[1:])
    if n_k < 1 or vals.size != 5 * n_k:
        raise FormatError(path, f"expected {n_k} lines 'ik kx ky kz w', got {vals.size} numbers")
    vals = vals.reshape(n_k, 5)
    return SiestaKP(vals[:, 1:4].copy(), vals[:, 4].copy())


# ----------------------------------------------------------------------------- ORB_INDX
@dataclass(frozen=True)
class OrbIndex:
    """Unit-cell rows of ``*.ORB_INDX`` (0-based atom and species indices).

    Attributes
    ----------
    atom, species, iao, n, l, m, zeta : ndarray of int, shape (no_u,)
    labels : list of str
        Species label of each orbital.
    polarisation : ndarray of bool, shape (no_u,)
    rc : ndarray, shape (no_u,)
        Cutoff radius, Bohr.
    no_s : int
        Orbitals in the supercell.
    """

    atom: np.ndarray
    species: np.ndarray
    iao: np.ndarray
    n: np.ndarray
    l: np.ndarray  # noqa: E741
    m: np.ndarray
    zeta: np.ndarray
    labels: list
    polarisation: np.ndarray
    rc: np.ndarray
    no_s: int


@reader
def read_orb_indx(path: str | os.PathLike) -> OrbIndex:
    """Read the unit-cell orbital table of a SIESTA ``.ORB_INDX`` file."""
    lines = _text(path).splitlines()
    try:
        no_u, no_s = (int(x) for x in lines[0].split()[:2])
        rows = [ln.split() for ln in lines[3:3 + no_u]]
        if len(rows) != no_u or any(len(r) < 16 for r in rows):
            raise ValueError("fewer orbital rows than no_u")
        ints = np.array([[int(r[k]) for k in (0, 1, 2, 4, 5, 6, 7, 8)] for r in rows])
        rc = np.array([float(r[11]) for r in rows])
    except (ValueError, IndexError) as exc:
        raise FormatError(path, f"bad ORB_INDX table: {exc}") from exc
    if not np.array_equal(ints[:, 0], np.arange(1, no_u + 1)):
        raise FormatError(path, "orbital indices are not 1..no_u")
    return OrbIndex(
        atom=ints[:, 1] - 1, species=ints[:, 2] - 1, iao=ints[:, 3], n=ints[:, 4], l=ints[:, 5],
        m=ints[:, 6], zeta=ints[:, 7], labels=[r[3] for r in rows],
        polarisation=np.array([r[9] == "T" for r in rows]), rc=rc, no_s=no_s,
    )


# ----------------------------------------------------------------------------- XV / STRUCT_OUT
def _structure(path, text: str, pos_bohr: bool) -> tuple[Atoms, np.ndarray]:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        cell = np.array([[float(x) for x in lines[k].split()[:3]] for k in range(3)])
        n_at = int(lines[3].split()[0])
        rows = [lines[4 + a].split() for a in range(n_at)]
        species = np.array([int(r[0]) for r in rows]) - 1
        numbers = np.array([int(r[1]) for r in rows])
        coords = np.array([[float(x) for x in r[2:5]] for r in rows]).reshape(n_at, 3)
    except (ValueError, IndexError) as exc:
        raise FormatError(path, f"bad structure file: {exc}") from exc
    if pos_bohr:
        atoms = Atoms(numbers=numbers, positions=coords * Bohr, cell=cell * Bohr, pbc=True)
    else:
        atoms = Atoms(numbers=numbers, scaled_positions=coords, cell=cell, pbc=True)
    return atoms, species


@reader
def read_xv(path: str | os.PathLike) -> tuple[Atoms, np.ndarray]:
    """Read ``*.XV`` (Bohr): returns the structure and the 0-based species of each atom."""
    return _structure(path, _text(path), pos_bohr=True)


@reader
def read_struct_out(path: str | os.PathLike) -> tuple[Atoms, np.ndarray]:
    """Read ``*.STRUCT_OUT`` (Angstrom, fractional positions): structure and 0-based species."""
    return _structure(path, _text(path), pos_bohr=False)


def write_xv(atoms: Atoms, path: str | os.PathLike, species: np.ndarray | None = None) -> None:
    """Write ``*.XV`` (Bohr, zero velocities) atomically; species default to one per element."""
    if species is None:
        order = list(dict.fromkeys(atoms.get_chemical_symbols()))
        species = np.array([order.index(s) for s in atoms.get_chemical_symbols()])
    out = [" ".join(f"{x:20.12f}" for x in v / Bohr) + "   0.0 0.0 0.0" for v in atoms.cell]
    out.append(f"{len(atoms):12d}")
    for s, z, p in zip(species, atoms.numbers, atoms.positions / Bohr, strict=True):
        out.append(f"{s + 1:3d} {z:5d} " + " ".join(f"{x:20.12f}" for x in p) + "   0.0 0.0 0.0")
    atomic_write_bytes(path, ("\n".join(out) + "\n").encode())


# ----------------------------------------------------------------------------- fdf
def _norm(label: str) -> str:
    return re.sub(r"[._\-]", "", label.lower())


@reader
def read_fdf(path: str | os.PathLike) -> tuple[dict, dict]:
    """Parse an fdf file into ``(values, blocks)`` keyed by normalised labels.

    Labels are lower-cased with ``.``, ``-``, ``_`` removed; ``values[key]`` is the rest of
    the line, ``blocks[key]`` the list of lines inside ``%block ... %endblock``.
    """
    values: dict[str, str] = {}
    blocks: dict[str, list[str]] = {}
    current = None
    for raw in _text(path).splitlines():
        line = raw.split("#")[0].split("!")[0].strip()
        if not line:
            continue
        low = line.lower()
        if low.startswith("%block"):
            current = _norm(line.split()[1]) if len(line.split()) > 1 else ""
            blocks[current] = []
        elif low.startswith("%endblock"):
            current = None
        elif current is not None:
            blocks[current].append(line)
        else:
            key, _, rest = line.partition(" ")
            values.setdefault(_norm(key), rest.strip())
    return values, blocks


def _length(path, text: str, default_unit: str = "bohr") -> float:
    parts = text.split()
    if not parts:
        raise FormatError(path, "empty length value")
    unit = parts[1].lower() if len(parts) > 1 else default_unit
    scale = {"ang": 1.0, "angstrom": 1.0, "bohr": Bohr, "nm": 10.0}.get(unit)
    if scale is None:
        raise FormatError(path, f"unknown length unit {unit!r}")
    return float(_floats(path, parts[:1])[0]) * scale


@reader
def fdf_atoms(path: str | os.PathLike) -> tuple[Atoms, np.ndarray]:
    """Structure and 0-based species from an fdf input (Angstrom)."""
    values, blocks = read_fdf(path)
    try:
        alat = _length(path, values.get("latticeconstant", "1.0 Ang"), "bohr")
        vec = blocks.get("latticevectors", ["1 0 0", "0 1 0", "0 0 1"])
        cell = _floats(path, " ".join(vec[:3]).split()).reshape(3, 3) * alat
        species_rows = blocks["chemicalspecieslabel"]
        z_of = {int(r.split()[0]) - 1: int(r.split()[1]) for r in species_rows}
        coords = [r.split() for r in blocks["atomiccoordinatesandatomicspecies"]]
        xyz = _floats(path, [c for r in coords for c in r[:3]]).reshape(-1, 3)
        species = np.array([int(r[3]) - 1 for r in coords])
        numbers = np.array([z_of[s] for s in species])
    except (KeyError, ValueError, IndexError) as exc:
        raise FormatError(path, f"fdf lacks a usable structure: {exc!r}") from exc
    fmt = _norm(values.get("atomiccoordinatesformat", "bohr"))
    if fmt in ("ang", "notscaledcartesianang"):
        pos = xyz
    elif fmt in ("bohr", "notscaledcartesianbohr"):
        pos = xyz * Bohr
    elif fmt == "scaledcartesian":
        pos = xyz * alat
    elif fmt in ("fractional", "scaledbylatticevectors"):
        pos = xyz @ cell
    else:
        raise FormatError(path, f"unsupported AtomicCoordinatesFormat {fmt!r}")
    return Atoms(numbers=numbers, positions=pos, cell=cell, pbc=True), species


_SPIN = {"none": "non-polarized", "collinear": "polarized", "noncollinear": "non-collinear",
         "spinor": "spin-orbit", "spin-orbit": "spin-orbit", "polarized": "polarized"}


def write_fdf(
    atoms: Atoms,
    basis_info: str | dict,
    path: str | os.PathLike,
    system_label: str = "siesta",
    spin: str = "none",
    kgrid: tuple[int, int, int] | None = None,
    mesh_cutoff_ry: float = 300.0,
    extra: dict | None = None,
) -> None:
    """Write a SIESTA input that saves H and S (``SaveHS true``) for a new structure.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom); species are numbered per element in order of appearance.
    basis_info : str or dict
        A global ``PAO.BasisSize`` (``"DZP"``), or per element symbol either a basis size
        name (written to ``%block PAO.BasisSizes``) or the body of that species'
        ``%block PAO.Basis`` entry (any text containing a newline).
    path : str or os.PathLike
        Output fdf file (written atomically).
    system_label : str
        ``SystemLabel`` (names the HSX file).
    spin : str
        ``"none"``, ``"collinear"``, ``"noncollinear"`` or ``"spinor"`` (spin-orbit).
    kgrid : tuple of int, optional
        Monkhorst-Pack grid; ``ForceAuxCell true`` is always written so that Gamma-only
        runs keep the R-resolved H.
    mesh_cutoff_ry : float
        ``MeshCutoff`` in Ry.
    extra : dict, optional
        Further ``key: value`` lines.
    """
    symbols = list(dict.fromkeys(atoms.get_chemical_symbols()))
    if spin not in _SPIN:
        raise ValueError(f"spin must be one of {sorted(_SPIN)}")
    out = [f"SystemLabel {system_label}", f"SystemName {atoms.get_chemical_formula()}",
           f"NumberOfAtoms {len(atoms)}", f"NumberOfSpecies {len(symbols)}",
           "%block ChemicalSpeciesLabel"]
    out += [f"  {k + 1} {atomic_numbers[s]} {s}" for k, s in enumerate(symbols)]
    out += ["%endblock ChemicalSpeciesLabel"] + _basis_lines(basis_info, symbols)
    out += ["LatticeConstant 1.0 Ang", "%block LatticeVectors"]
    out += ["  " + " ".join(f"{x:18.12f}" for x in v) for v in np.asarray(atoms.cell)]
    out += ["%endblock LatticeVectors", "AtomicCoordinatesFormat Ang",
            "%block AtomicCoordinatesAndAtomicSpecies"]
    out += ["  " + " ".join(f"{x:18.12f}" for x in p) + f"  {symbols.index(s) + 1}"
            for p, s in zip(atoms.positions, atoms.get_chemical_symbols(), strict=True)]
    out += ["%endblock AtomicCoordinatesAndAtomicSpecies"]
    if kgrid is not None:
        out += ["%block kgrid.MonkhorstPack"]
        out += [" ".join(str(int(kgrid[a])) if b == a else "0" for b in range(3)) + " 0.0"
                for a in range(3)]
        out += ["%endblock kgrid.MonkhorstPack"]
    out += [f"Spin {_SPIN[spin]}", f"MeshCutoff {mesh_cutoff_ry} Ry", "DM.Tolerance 1.d-9",
            "SaveHS true", "ForceAuxCell true", "WriteEigenvalues true"]
    out += [f"{k} {v}" for k, v in (extra or {}).items()]
    atomic_write_bytes(path, ("\n".join(out) + "\n").encode())


def _basis_lines(basis_info: str | dict, symbols: list[str]) -> list[str]:
    if isinstance(basis_info, str):
        return [f"PAO.BasisSize {basis_info}"]
    missing = [s for s in symbols if s not in basis_info]
    if missing:
        raise ValueError(f"basis_info lacks elements {missing}")
    sizes = [s for s in symbols if "\n" not in basis_info[s]]
    full = [s for s in symbols if "\n" in basis_info[s]]
    out: list[str] = []
    if sizes:
        out += ["%block PAO.BasisSizes"] + [f"  {s} {basis_info[s]}" for s in sizes]
        out += ["%endblock PAO.BasisSizes"]
    if full:
        out += ["%block PAO.Basis"] + [basis_info[s].rstrip("\n") for s in full]
        out += ["%endblock PAO.Basis"]
    return out


def symbol_of(z: int) -> str:
    """Chemical symbol of atomic number ``z``."""
    return chemical_symbols[int(z)]
