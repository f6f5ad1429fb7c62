"""SIESTA ``.HSX`` (versions 0, 1, 2) and ``.TSHS`` (version 1) reader; HSX writer.

Layouts, units and the spin-orbit storage rule follow ``docs/formats.md`` section 1.
The reader turns SIESTA's orbital-level sparse rows into :class:`HSData` blocks with numpy
(no Python loop per element), converts Ry -> eV and Bohr -> Angstrom with ``ase.units``,
re-sorts the shells of every species by (l, zeta) and converts SIESTA's ``(-1)^m`` signs
with :func:`interfaces.orbitals.to_internal`; the per-element shell order is kept in
``metadata["siesta_shell_orders"]`` so that :func:`write` restores SIESTA's order.

Spin: nspin 1 -> ``"none"``, 2 -> ``"collinear"``, 4 (non-collinear:
``uu = X1, dd = X2, ud = X3 - i X4, du = X3 + i X4`` as sisl's ``_mat_siesta2sisl`` documents
SIESTA's convention; no SIESTA sample verifies it) and
8 (spin-orbit: the value stored at row i, column j, image R is element ``H_ji(-R)`` with
``uu = X1 + i X5, dd = X2 + i X6, ud = X3 - i X4, du = X7 + i X8``) -> ``"spinor"``.
Only little-endian files with 4-byte record markers are read.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.units import Bohr, Ry

from interfaces import orbitals
from interfaces.checks import check_finite, check_structure
from interfaces.errors import FormatError, reading
from interfaces.hsdata import HSData
from interfaces.siesta import text as txt
from interfaces.siesta.records import RawSiesta
from interfaces.siesta.records import parse as _parse
from interfaces.siesta.writer import hsx_path, shells_from_nlz, write, write_fdf

__all__ = ["read", "write", "write_fdf", "read_eig", "read_kp", "shells_from_nlz"]

read_eig = txt.read_eig
read_kp = txt.read_kp


# --------------------------------------------------------------------------- neighbours
def _neighbour_structure(folder: Path, label: str) -> tuple[Atoms, np.ndarray] | None:
    for suffix, fn in (("XV", txt.read_xv), ("STRUCT_OUT", txt.read_struct_out),
                       ("fdf", txt.fdf_atoms)):
        f = txt.find_sibling(folder, suffix, label)
        if f is not None:
            atoms, species = fn(f)
            return check_structure(atoms, f), species
    return None


def _code_version(folder: Path, label: str) -> str:
    """SIESTA version from the run's standard output (``RUN.out`` or ``<label>.out``)."""
    for name in ("RUN.out", f"{label}.out"):
        try:
            with open(folder / name, errors="replace") as fh:
                for _, line in zip(range(400), fh, strict=False):
                    if line.strip().startswith("Version") and ":" in line:
                        return line.split(":", 1)[1].strip()
        except OSError:
            continue
    return ""


def _complete(raw: RawSiesta, folder: Path, label: str) -> None:
    """Fill structure, species and basis that the binary file lacks from neighbouring files."""
    need = raw.cell is None or raw.isa is None or raw.labels is None
    struct = _neighbour_structure(folder, label) if need else None
    if raw.cell is None:
        if struct is None:
            raise FormatError(raw.path, "no cell/positions: put the run's XV, STRUCT_OUT or "
                                        "fdf next to this v0 HSX")
        raw.cell, raw.xa = np.asarray(struct[0].cell) / Bohr, struct[0].positions / Bohr
    if raw.isa is None and struct is not None:
        raw.isa, raw.numbers = struct[1], struct[0].numbers
    if raw.nlz is None or raw.isa is None or raw.lasto is None:
        orb = txt.find_sibling(folder, "ORB_INDX", label)
        if orb is None:
            raise FormatError(raw.path, "no basis table in the file and no ORB_INDX next to it")
        _basis_from_orb_indx(raw, txt.read_orb_indx(orb))
    if raw.numbers is None:
        z = np.array([txt.element_of_label(lb) for lb in raw.labels])
        if np.any(z == 0):
            struct = struct or _neighbour_structure(folder, label)
            if struct is None:
                raise FormatError(raw.path, f"cannot tell the elements of species {raw.labels}")
            raw.numbers = struct[0].numbers
        else:
            raw.numbers = z[raw.isa]


def _basis_from_orb_indx(raw: RawSiesta, orb: txt.OrbIndex) -> None:
    if len(orb.atom) != raw.no_u:
        raise FormatError(raw.path, f"ORB_INDX lists {len(orb.atom)} orbitals, file has "
                                    f"{raw.no_u}")
    na = int(orb.atom.max()) + 1
    lasto = np.concatenate([[0], np.searchsorted(orb.atom, np.arange(na), "right")])
    if raw.lasto is not None and not np.array_equal(raw.lasto, lasto):
        raise FormatError(raw.path, "ORB_INDX assigns orbitals to atoms differently")
    raw.lasto = lasto
    atom_species = orb.species[raw.lasto[:-1]]
    if raw.isa is None:
        raw.isa = atom_species
    n_sp = int(atom_species.max()) + 1
    first = [int(np.flatnonzero(atom_species == k)[0]) for k in range(n_sp)]
    raw.nlz = [np.stack([orb.n, orb.l, orb.zeta], 1)[raw.lasto[a]:raw.lasto[a + 1]] for a in first]
    raw.labels = raw.labels or [orb.labels[raw.lasto[a]] for a in first]


# --------------------------------------------------------------------------- building
def _image_shift(raw: RawSiesta, ia: np.ndarray, ja: np.ndarray) -> np.ndarray:
    """Integer R of every stored element, shape (nnz, 3)."""
    if raw.xij is None:
        if raw.col.max(initial=0) >= raw.no_u * len(raw.isc_off):
            raise FormatError(raw.path, "column index beyond the supercell")
        return raw.isc_off[raw.col // raw.no_u]
    frac = (raw.xij - (raw.xa[ja] - raw.xa[ia])) @ np.linalg.inv(raw.cell)
    shift = np.rint(frac)
    if not np.all(np.abs(frac) < 1000) or np.abs(frac - shift).max(initial=0) > 1e-3:
        raise FormatError(raw.path, "xij is not a lattice translation of the neighbouring "
                                    "structure's positions (wrong XV/STRUCT_OUT?)")
    return shift.astype(np.int64)


def _layout(raw: RawSiesta):
    """Per element, (basis, shell order), checked against every species of that element."""
    symbols = [txt.symbol_of(z) for z in raw.numbers]
    basis, orders = {}, {}
    for a, sp in enumerate(raw.isa):
        try:
            shells, order = shells_from_nlz(raw.nlz[sp])
        except (ValueError, IndexError) as exc:
            raise FormatError(raw.path, f"species table: {exc}") from exc
        if sum(2 * x + 1 for x in shells) != raw.lasto[a + 1] - raw.lasto[a]:
            raise FormatError(raw.path, f"atom {a}: basis has {sum(2 * x + 1 for x in shells)} "
                                        f"orbitals, lasto gives {raw.lasto[a + 1] - raw.lasto[a]}")
        if basis.setdefault(symbols[a], shells) != shells or orders.setdefault(
                symbols[a], order) != order:
            raise FormatError(raw.path, f"element {symbols[a]} has species with different bases"
                                        " (one basis per element is supported)")
    return symbols, basis, orders


def _build(raw: RawSiesta) -> HSData:
    na = len(raw.isa)
    lasto = raw.lasto
    if (len(lasto) != na + 1 or lasto[-1] != raw.no_u or np.any(np.diff(lasto) < 1)
            or raw.isa.min() < 0 or raw.isa.max() >= len(raw.nlz) or len(raw.xa) != na):
        raise FormatError(raw.path, "atom/orbital tables are inconsistent with no_u")
    symbols, basis, orders = _layout(raw)
    atoms = Atoms(symbols=symbols, positions=raw.xa * Bohr, cell=raw.cell * Bohr, pbc=True)
    if raw.col.size and (raw.col.min() < 0):
        raise FormatError(raw.path, "negative column index")
    norb = np.diff(lasto)
    orb_atom = np.repeat(np.arange(na), norb)
    row = np.repeat(np.arange(raw.no_u), raw.numh)
    col = raw.unit_col if raw.unit_col is not None else raw.col % raw.no_u
    shift = _image_shift(raw, orb_atom[row], orb_atom[col])
    if raw.nspin == 8:  # stored (i, j, R) holds element H_ji(-R)
        row, col, shift = col, row, -shift
    ia, ja = orb_atom[row], orb_atom[col]
    lo = shift.min(0, initial=0)
    span = shift.max(0, initial=0) - lo + 1
    if float(na) ** 2 * float(np.prod(span.astype(float))) > 2.0**62:
        raise FormatError(raw.path, "implausible supercell indices")
    key = (((ia * na + ja) * span[0] + shift[:, 0] - lo[0]) * span[1]
           + shift[:, 1] - lo[1]) * span[2] + shift[:, 2] - lo[2]
    ukey, inv = np.unique(key, return_inverse=True)
    rem, r2 = np.divmod(ukey, span[2])
    rem, r1 = np.divmod(rem, span[1])
    pair, r0 = np.divmod(rem, span[0])
    ei, ej = np.divmod(pair, na)
    cell_shift = np.stack([r0, r1, r2], 1) + lo
    sizes = norb[ei] * norb[ej]
    ptr = np.concatenate([[0], np.cumsum(sizes)])
    a, b, nj = row - lasto[ia], col - lasto[ja], norb[ja]
    pos = ptr[inv] + a * nj + b  # [nnz] position in the spinless flat arrays
    if np.bincount(pos, minlength=int(ptr[-1])).max(initial=0) > 1:
        raise FormatError(raw.path, "duplicate matrix elements in the sparse rows")
    s = np.zeros(int(ptr[-1]))
    s[pos] = raw.s
    h, spin = _spin_values(raw, ptr, inv, a, b, norb[ia], nj, pos)
    hs = HSData(atoms=atoms, basis=basis, edge_index=np.stack([ei, ej]), cell_shift=cell_shift,
                h=h, s=s, spin=spin, fermi_level=raw.ef_ry * Ry, n_electrons=raw.qtot,
                source_code="siesta", source_version=raw.extra.get("siesta_version") or raw.kind,
                metadata=_metadata(raw, orders))
    return orbitals.to_internal(hs, "siesta", orders)


def _spin_values(raw: RawSiesta, ptr, inv, a, b, ni, nj, pos) -> tuple[np.ndarray, str]:
    x = raw.vals * Ry  # [nspin, nnz] eV
    n_val = int(ptr[-1])
    if raw.nspin in (1, 2):
        h = np.zeros((raw.nspin, n_val))
        h[:, pos] = x
        return h, "none" if raw.nspin == 1 else "collinear"
    if raw.nspin == 4:
        parts = (x[0], x[2] - 1j * x[3], x[2] + 1j * x[3], x[1])
    elif raw.nspin == 8:
        parts = (x[0] + 1j * x[4], x[2] - 1j * x[3], x[6] + 1j * x[7], x[1] + 1j * x[5])
    else:
        raise FormatError(raw.path, f"unsupported nspin = {raw.nspin}")
    h = np.zeros(4 * n_val, dtype=np.complex128)
    for q, part in enumerate(parts):  # (uu, ud, du, dd), spin-major (2 ni, 2 nj) blocks
        sa, sb = divmod(q, 2)
        h[4 * ptr[inv] + (sa * ni + a) * 2 * nj + sb * nj + b] = part
    return h[None], "spinor"


def _metadata(raw: RawSiesta, orders: dict) -> dict:
    species = [{"label": raw.labels[k], "nlz": np.asarray(raw.nlz[k]).tolist(),
                "zval": None if raw.zval is None else float(raw.zval[k])}
               for k in range(len(raw.nlz))]
    zval = {}
    if raw.zval is not None:
        for a, k in enumerate(raw.isa):
            zval.setdefault(txt.symbol_of(raw.numbers[a]), float(raw.zval[k]))
    meta = {"siesta_format": raw.kind, "siesta_nspin": raw.nspin, "siesta_species": species,
            "siesta_isa": raw.isa.tolist(), "siesta_shell_orders": orders, "zval": zval,
            "temperature_ev": None if math.isnan(raw.temp_ry) else raw.temp_ry * Ry,
            "file": raw.path.name}
    meta.update(raw.extra)
    if raw.isc_off is not None and len(raw.isc_off) == 1:
        # Gamma-only run without auxiliary supercell: blocks are sums over periodic images
        meta["siesta_single_image"] = True
    return meta


# --------------------------------------------------------------------------- basis files
def _embed_basis(hs: HSData, folder: Path) -> HSData:
    """Record the run's basis files in ``metadata["overlap"]`` when all are in ``folder``.

    Per element, the file ``<species label>.ion.xml`` (else ``.ion``; ``.gz`` allowed) of its
    first species is embedded with :func:`interfaces.nao.overlap.embed_basis_files` (name, sha256,
    gzip + base64 content, ~100 kB per element), so that a model trained on this run can
    recompute S exactly for new structures. Nothing is added when a file is missing or
    unreadable.
    """
    from interfaces.nao.overlap import embed_basis_files

    labels = [sp["label"] for sp in hs.metadata.get("siesta_species", [])]
    symbols = hs.atoms.get_chemical_symbols()
    paths = {}
    for atom, sp in enumerate(hs.metadata.get("siesta_isa", [])):
        for suffix in (".ion.xml", ".ion.xml.gz", ".ion", ".ion.gz"):
            cand = folder / f"{labels[sp]}{suffix}"
            if symbols[atom] not in paths and cand.is_file():
                paths[symbols[atom]] = cand
    if not paths or set(paths) != set(symbols):
        return hs
    try:
        return hs.replace(metadata={**hs.metadata, "overlap": embed_basis_files(paths)})
    except FormatError:
        return hs


# --------------------------------------------------------------------------- public API
def _locate(path: Path) -> Path:
    if path.is_file():
        return path
    if not path.exists() and hsx_path(path).is_file():
        return hsx_path(path)  # what write(hs, path) wrote: the extension added
    if not path.is_dir():
        raise FormatError(path, "no such file or folder")
    for suffix in ("HSX", "TSHS"):
        hits = [h for h in sorted(path.glob(f"*.{suffix}")) + sorted(path.glob(f"*.{suffix}.gz"))
                if not h.name.startswith(".")]  # never a hidden temporary
        if len(hits) > 1:
            raise FormatError(path, f"several .{suffix} files: {[h.name for h in hits]}")
        if hits:
            return hits[0]
    raise FormatError(path, "folder holds no .HSX or .TSHS file")


def read(path: str | os.PathLike) -> HSData:
    """Read a SIESTA ``.HSX``/``.TSHS`` file (optionally ``.gz``) or a run folder into HSData.

    In a folder the HSX is preferred over the TSHS; a ``path`` that does not exist reads
    the file :func:`write` wrote for it (``.HSX`` added). Neighbouring files supply what the
    binary file lacks: the structure (``.XV``, ``.STRUCT_OUT`` or the fdf) for HSX v0,
    the basis (``.ORB_INDX``) for TSHS and v0 files without species tables, and the Fermi
    level (``.EIG``, eV) when the file has none. When the run folder holds the basis files
    (``<label>.ion.xml`` or ``.ion``) they are embedded in ``metadata["overlap"]`` (see
    :func:`_embed_basis`).

    Raises
    ------
    FormatError
        For a missing, truncated, corrupted, wrong-version or inconsistent file.
    """
    path = _locate(Path(path))
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    label = name.rsplit(".", 1)[0]
    with reading(path, "corrupted or inconsistent file"):  # whatever breaks deep inside
        raw = _parse(path)
        _complete(raw, path.parent, label)
        check_finite(path, cell=raw.cell, positions=raw.xa)
        if math.isnan(raw.ef_ry):
            eig = txt.find_sibling(path.parent, "EIG", label)
            if eig is not None:
                raw.ef_ry = txt.read_eig(eig).fermi_level / Ry
        raw.extra["siesta_version"] = _code_version(path.parent, label)
        return _embed_basis(_build(raw), path.parent)
