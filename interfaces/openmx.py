"""OpenMX 3.9 ``.scfout`` (format version 3) reader and writer, and ``.dat`` input writer.

Layout (``docs/formats.md`` section 2.1): native-endian C ``fwrite`` of int32 and
float64 records, no markers. The byte order is detected from the plausibility of the
header; the reader consumes the file exactly to EOF (trailing plain text, as left by the
legacy DeepH habit ``cat openmx.out >> openmx.scfout``, is tolerated and ignored).

* SpinP_switch 0 -> spin ``"none"``; 1 -> ``"collinear"``; 3 -> ``"spinor"`` assembled as
  ``uu = Hks0 + i iHks0``, ``dd = Hks1 + i iHks1``, ``ud = Hks2 + i (Hks3 + iHks2)``,
  ``du_ij(R) = ud_ji(-R)^dagger`` (docs/formats.md 2.3, unverified on a real file). The writer
  stores ``Im ud`` in Hks3 and zeros in iHks2.
* Shells come from the embedded input (``<Definition.of.Atomic.Species``, basis strings such
  as ``Fe6.0S-s2p2d1``); the element of a species is read from its pseudopotential name
  (third column, e.g. ``Fe_PBE19S``), falling back to the species name.
* Units: Hartree -> eV, Bohr -> Angstrom (``ase.units``); ChemP (Hartree) is the Fermi level
  and Valence_Electrons the electron count. Orbital order code ``"openmx"``.
* The writer fills OLPpo (order_max = 1), OLPmo, DM and iDM with zeros, and embeds an input
  text with the species definitions it needs to read the file back.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Ha, kB

from interfaces import orbitals
from interfaces._blockops import compose_spinor, ranges, split_spinor
from interfaces.atomic import write_bytes
from interfaces.checks import check_finite
from interfaces.errors import FormatError, reading
from interfaces.hsdata import HSData
from interfaces.openmx_input import (
    basis_string,
    input_lines,
    parse_species,
    shells_of,
    species_defs,
    write_input,
)

__all__ = ["read", "write", "write_input", "basis_string", "shells_of"]

_SPIN_KIND = {0: "none", 1: "collinear", 3: "spinor"}
_LINE = 256


# ----------------------------------------------------------------------------- reading
class _Cursor:
    def __init__(self, raw: bytes, endian: str, path):
        self.raw, self.endian, self.path, self.pos = raw, endian, path, 0

    def take(self, kind: str, count: int, what: str) -> np.ndarray:
        dtype = np.dtype(self.endian + ("i4" if kind == "i" else "f8"))
        count = int(count)
        end = self.pos + count * dtype.itemsize
        if count < 0 or end > len(self.raw):
            raise FormatError(self.path, f"truncated file: it ends inside {what}")
        out = np.frombuffer(self.raw, dtype, count, self.pos)
        self.pos = end
        return out.astype(np.int64 if kind == "i" else np.float64)


def _detect_endian(raw: bytes, path) -> str:
    if len(raw) < 28:
        raise FormatError(path, "truncated file: shorter than the header")
    reasons = []
    for endian in ("<", ">"):
        head = np.frombuffer(raw, endian + "i4", 6).astype(np.int64)
        atomnum, enc, _, latom, ratom, tcpy = head
        if not (0 < atomnum < 10**7 and 0 <= enc < 64 and latom >= 0 and ratom >= 0
                and 0 <= tcpy < 10**8):
            continue
        if enc // 4 != 3:
            reasons.append(f"format version {enc // 4} (only version 3 = OpenMX 3.9 is supported)")
        elif enc % 4 not in _SPIN_KIND:
            reasons.append(f"SpinP_switch {enc % 4} is not 0, 1 or 3")
        else:
            return endian
    raise FormatError(path, reasons[0] if reasons else "not an OpenMX scfout (implausible header)")


def _neighbours(cur: _Cursor, atomnum: int, tcpy: int) -> dict:
    tno = cur.take("i", atomnum, "Total_NumOrbs")
    fnan = cur.take("i", atomnum, "FNAN")
    if np.any(tno < 1) or np.any(tno > 10_000) or np.any(fnan < 0) or np.any(fnan > 10**6):
        raise FormatError(cur.path, "implausible Total_NumOrbs or FNAN (corrupted file)")
    n_blocks = int(np.sum(fnan + 1))
    natn = cur.take("i", n_blocks, "natn")
    ncn = cur.take("i", n_blocks, "ncn")
    if np.any(natn < 1) or np.any(natn > atomnum):
        raise FormatError(cur.path, "natn refers to atoms outside the structure")
    if np.any(ncn < 0) or np.any(ncn > tcpy):
        raise FormatError(cur.path, "ncn refers to cells outside atv")
    home = np.repeat(np.arange(atomnum), fnan + 1)
    sizes = tno[home] * tno[natn - 1]
    return {"tno": tno, "home": home, "natn": natn - 1, "ncn": ncn, "sizes": sizes}


def _parse_records(raw: bytes, path) -> dict:
    cur = _Cursor(raw, _detect_endian(raw, path), path)
    atomnum, enc, _, _, _, tcpy = (int(x) for x in cur.take("i", 6, "the header"))
    spin = enc % 4
    rec = {"spin": spin, "order_max": int(cur.take("i", 1, "order_max")[0])}
    if not 0 <= rec["order_max"] < 100:
        raise FormatError(path, f"implausible order_max {rec['order_max']}")
    cur.take("f", 4 * (tcpy + 1), "atv")
    rec["atv_ijk"] = cur.take("i", 4 * (tcpy + 1), "atv_ijk").reshape(-1, 4)[:, 1:]
    rec.update(_neighbours(cur, atomnum, tcpy))
    rec["tv"] = cur.take("f", 12, "tv").reshape(3, 4)[:, 1:] * Bohr
    cur.take("f", 12, "rtv")
    rec["gxyz"] = cur.take("f", 4 * atomnum, "Gxyz").reshape(-1, 4)[:, 1:] * Bohr
    n = int(rec["sizes"].sum())
    n_h = spin + 1
    rec["hks"] = cur.take("f", n_h * n, "Hks").reshape(n_h, n) * Ha
    rec["ihks"] = cur.take("f", 3 * n, "iHks").reshape(3, n) * Ha if spin == 3 else None
    rec["olp"] = cur.take("f", n, "OLP")
    cur.take("f", 3 * rec["order_max"] * n, "OLPpo")
    cur.take("f", 3 * n, "OLPmo")
    cur.take("f", (n_h + 2) * n, "DM and iDM")
    rec["solver"] = int(cur.take("i", 1, "Solver")[0])
    scalars = cur.take("f", 10, "ChemP ... Total_SpinS")
    rec["chemp"], rec["e_temp"], rec["n_electrons"] = scalars[0] * Ha, scalars[1], scalars[8]
    num_lines = int(cur.take("i", 1, "num_lines")[0])
    if not 0 <= num_lines <= (len(raw) - cur.pos) // _LINE:
        raise FormatError(path, f"truncated file: {num_lines} input lines announced")
    text = raw[cur.pos:cur.pos + num_lines * _LINE]
    cur.pos += num_lines * _LINE
    rec["lines"] = [
        text[k:k + _LINE].split(b"\0", 1)[0].decode("latin-1").rstrip("\r\n")
        for k in range(0, len(text), _LINE)
    ]
    _check_eof(raw, cur.pos, path)
    return rec


def _check_eof(raw: bytes, pos: int, path) -> None:
    tail = raw[pos:]
    if tail and (b"\0" in tail or not tail.isascii()):
        raise FormatError(path, f"{len(tail)} unexpected bytes after the last record")


def _basis(path, info: dict, atom_species: list[str], tno: np.ndarray):
    basis, orders, species_meta = {}, {}, {}
    for k, name in enumerate(atom_species):
        el, shells, basis_str, vps = info[name]
        if sum(2 * lv + 1 for lv in shells) != tno[k]:
            raise FormatError(path, f"atom {k + 1} ({name}, {basis_str}) needs "
                              f"{sum(2 * lv + 1 for lv in shells)} orbitals, Total_NumOrbs "
                              f"says {tno[k]}")
        sorted_shells = tuple(sorted(shells))
        if basis.setdefault(el, sorted_shells) != sorted_shells:
            raise FormatError(path, f"species of element {el} have different bases")
        orders[el] = [int(p) for p in np.argsort(shells, kind="stable")]
        species_meta[el] = [basis_str, vps]
    return basis, orders, species_meta


def read(path: str | os.PathLike) -> HSData:
    """Read an OpenMX 3.9 ``.scfout`` (or a folder holding exactly one) into HSData.

    A ``path`` that does not exist but whose ``<path>.scfout`` does (what :func:`write`
    writes for a name without the extension) reads that file.

    Raises
    ------
    FormatError
        For missing, truncated, corrupted or unsupported files.
    """
    path = _scfout_path(Path(path))
    with reading(path):
        rec = _parse_records(path.read_bytes(), path)
        check_finite(path, cell=rec["tv"], positions=rec["gxyz"])
        info, atom_species = parse_species(rec["lines"], path, len(rec["tno"]))
        basis, orders, species_meta = _basis(path, info, atom_species, rec["tno"])
        symbols = [info[name][0] for name in atom_species]
        atoms = Atoms(symbols=symbols, positions=rec["gxyz"], cell=rec["tv"], pbc=True)
        fields = dict(
            fermi_level=float(rec["chemp"]), n_electrons=float(rec["n_electrons"]),
            source_code="openmx", source_version="3.9 (scfout version 3)",
            metadata={"openmx_species": species_meta, "openmx_solver": rec["solver"],
                      "openmx_electronic_temperature_K": float(rec["e_temp"] * Ha / kB)},
        )
        hs = HSData(atoms=atoms, basis=basis, edge_index=np.stack([rec["home"], rec["natn"]]),
                    cell_shift=rec["atv_ijk"][rec["ncn"]], s=rec["olp"], **fields)
        hs.find_edges([0], [0], np.zeros((1, 3)))  # validates: no duplicate (i, j, R)
        return orbitals.to_internal(_with_h(hs, rec, path), "openmx", orders)


def _scfout_path(path: Path) -> Path:
    """Return ``path``, the one ``*.scfout`` of a folder, or the file ``write(path)`` wrote."""
    if not path.exists() and path.with_name(path.name + ".scfout").is_file():
        return path.with_name(path.name + ".scfout")  # the writer added the extension
    if path.is_dir():
        found = [p for p in sorted(path.glob("*.scfout")) if not p.name.startswith(".")]
        if len(found) != 1:
            raise FormatError(path, f"expected one *.scfout in the folder, found {len(found)}")
        return found[0]
    return path


def _with_h(hs: HSData, rec: dict, path) -> HSData:
    spin, hks = rec["spin"], rec["hks"]
    if spin != 3:
        return hs.replace(h=hks, spin=_SPIN_KIND[spin])
    ihks = rec["ihks"]
    uu = hks[0] + 1j * ihks[0]
    dd = hks[1] + 1j * ihks[1]
    ud = hks[2] + 1j * (hks[3] + ihks[2])
    rev = hs.reverse_edges
    if np.any(rev < 0):
        raise FormatError(path, "non-collinear file lacks some Hermitian partner blocks")
    du = np.zeros_like(ud)
    for g in hs.shape_groups():
        du[hs.block_index(g)] = np.conj(ud[hs.block_index(rev[g])].transpose(0, 2, 1))
    return hs.replace(h=compose_spinor(hs, np.stack([uu, ud, du, dd]))[None], spin="spinor")


# ----------------------------------------------------------------------------- writing
def _neighbour_order(hs: HSData) -> np.ndarray:
    """Block order of the scfout: per atom its on-site block first, then the others."""
    i, j = hs.edge_index
    onsite = (i == j) & np.all(hs.cell_shift == 0, axis=1)
    if np.bincount(i[onsite], minlength=hs.n_atoms).min(initial=1) < 1:
        raise ValueError("every atom needs its on-site block (i, i, R = 0) for OpenMX")
    return np.lexsort((np.arange(hs.n_edges), ~onsite, i))


def _channels(hs: HSData) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Hks (n, n_values) and iHks (3, n_values) or None, in Hartree, and SpinP_switch."""
    if hs.h is None:
        return np.zeros((1, hs.n_values)), None, 0
    if hs.spin != "spinor":
        return hs.h / Ha, None, 0 if hs.spin == "none" else 1
    uu, ud, _, dd = split_spinor(hs, hs.h[0]) / Ha
    hks = np.stack([uu.real, dd.real, ud.real, ud.imag])
    return hks, np.stack([uu.imag, dd.imag, np.zeros(hs.n_values)]), 3


def _records(hs: HSData, lines: list[str]) -> bytes:
    order = _neighbour_order(hs)
    i, j = hs.edge_index[:, order]
    shifts = hs.cell_shift[order]
    cells, ncn = np.unique(shifts, axis=0, return_inverse=True)
    home = np.flatnonzero(np.all(cells == 0, axis=1))
    if len(home) == 0:
        cells, ncn, home = np.vstack([np.zeros((1, 3), int), cells]), ncn + 1, np.array([0])
    perm = np.concatenate([home, np.setdiff1d(np.arange(len(cells)), home)])
    rank = np.empty_like(perm)
    rank[perm] = np.arange(len(perm))
    cells, ncn = cells[perm], rank[ncn.ravel()]
    idx = ranges(hs.block_ptr[order], np.diff(hs.block_ptr)[order])
    hks, ihks, spin_sw = _channels(hs)
    fnan = np.bincount(i, minlength=hs.n_atoms) - 1
    pad = np.zeros((len(cells), 1))
    ints = np.int32
    out = [np.array([hs.n_atoms, 12 + spin_sw, hs.n_atoms, 0, 0, len(cells) - 1, 1], ints),
           np.hstack([pad, cells @ np.asarray(hs.atoms.cell) / Bohr]),
           np.hstack([pad, cells]).astype(ints), hs.norbs.astype(ints), fnan.astype(ints),
           (j + 1).astype(ints), ncn.astype(ints)]
    cell = np.asarray(hs.atoms.cell) / Bohr
    rtv = 2 * math.pi * np.linalg.inv(cell).T if abs(np.linalg.det(cell)) > 1e-12 else cell * 0
    out += [np.hstack([np.zeros((3, 1)), cell]), np.hstack([np.zeros((3, 1)), rtv]),
            np.hstack([np.zeros((hs.n_atoms, 1)), hs.atoms.positions / Bohr])]
    n = hs.n_values
    out += [hks[:, idx]] + ([] if ihks is None else [ihks[:, idx]])
    s = np.zeros(n) if hs.s is None else hs.s
    # OLPpo (3 x order_max = 1), OLPmo (3), DM (SpinP_switch + 1), iDM (2): zeros
    out += [s[idx], np.zeros((3 + 3 + hks.shape[0] + 2) * n)]
    out += [np.array([3 if hs.atoms.pbc.any() else 2], ints)]
    e_temp = float(hs.metadata.get("openmx_electronic_temperature_K", 300.0)) * kB / Ha
    out += [np.array([hs.fermi_level / Ha, e_temp, 0, 0, 0, 0, 0, 0, hs.n_electrons, 0.0])]
    out += [np.array([len(lines)], ints)]
    blob = b"".join(np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("=")).tobytes()
                    for a in out)
    text = b"".join((line.encode("latin-1")[:_LINE - 2] + b"\n").ljust(_LINE, b"\0")
                    for line in lines)
    return blob + text


def write(hs: HSData, path: str | os.PathLike, valence: dict | None = None) -> Path:
    """Write HSData as an OpenMX 3.9 ``.scfout`` (native byte order), atomically.

    Every atom needs its on-site block. Spinor H is written as SpinP_switch 3 (its
    spin-flip part from the ud blocks; du is implied by Hermiticity). ``valence`` only
    fills the initial occupations in the embedded input text. ``.scfout`` is appended to
    a ``path`` without it (so that :func:`interfaces.read` recognises the file); the
    path written is returned.
    """
    path = Path(path)
    if not path.name.endswith(".scfout"):
        path = path.with_name(path.name + ".scfout")
    try:
        code = orbitals.from_internal(hs, "openmx")
        defs = species_defs(hs.basis, hs.metadata.get("openmx_species", {}))
        lines = input_lines(hs.atoms, defs, hs.spin, valence)
        data = _records(code, lines)
    except ValueError as exc:
        raise FormatError(path, f"cannot write: {exc}") from exc
    write_bytes(path, data)
    return path
