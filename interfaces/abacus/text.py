"""Small ABACUS text files: STRU, INPUT, KPT, running logs, ``.orb`` headers, UPF valence.

Layouts follow ``docs/formats.md`` sections 3.8-3.9. Lengths in STRU are Bohr (times
``LATTICE_CONSTANT``); results are returned in Angstrom. Every parse error raises
:class:`interfaces.errors.FormatError` naming the file.
"""

from __future__ import annotations

import gzip
import itertools
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import Bohr

from interfaces.errors import FormatError

__all__ = [
    "StruData", "LogData", "read_text", "element_of", "parse_stru", "format_stru",
    "format_input", "format_kpt", "parse_orb_header", "parse_log", "parse_upf_valence",
    "shells_tag", "parse_shells_tag", "parse_input", "species_order", "shells_from_tags",
]

_L_LETTERS = "spdfghi"
_SECTIONS = ("ATOMIC_SPECIES", "NUMERICAL_ORBITAL", "LATTICE_CONSTANT", "LATTICE_VECTORS",
             "LATTICE_PARAMETERS", "ATOMIC_POSITIONS", "NUMERICAL_DESCRIPTOR", "ABFS_ORBITAL",
             "PAW_FILES")
_SHELL_NOTE = "ase-deeph shells"


@dataclass(frozen=True)
class StruData:
    """Content of a STRU file.

    Attributes
    ----------
    atoms : ase.Atoms
        Structure in Angstrom, atoms grouped by species in ATOMIC_SPECIES order.
    labels : list of str
        Species labels in ATOMIC_SPECIES order.
    pseudo_files, orbital_files : dict of str to str
        Per label, the pseudopotential and numerical-orbital file names.
    shell_notes : dict of str to tuple of int
        Per label, shells recorded by ase-deeph's writer in a ``//`` comment.
    elements : list of str
        Chemical symbol of each label.
    """

    atoms: Atoms
    labels: list[str]
    pseudo_files: dict[str, str] = field(default_factory=dict)
    orbital_files: dict[str, str] = field(default_factory=dict)
    shell_notes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    elements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class LogData:
    """What a running log gives: Fermi level (eV), electrons, shells, structure (or None)."""

    fermi_level: float = float("nan")
    n_electrons: float = float("nan")
    shells: dict[str, tuple[int, ...]] = field(default_factory=dict)
    atoms: Atoms | None = None


def read_text(path: str | Path, max_chars: int | None = None) -> str:
    """Return the text of ``path``, transparently gunzipping (detected by magic bytes)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            gz = fh.read(2) == b"\x1f\x8b"
        with (gzip.open if gz else open)(path, "rb") as fh:
            raw = fh.read() if max_chars is None else fh.read(max_chars)
    except (OSError, EOFError, zlib.error) as exc:
        raise FormatError(path, f"cannot read file ({exc})") from exc
    return raw.decode("utf-8", errors="replace")


def element_of(label: str) -> str:
    """Chemical symbol of an ABACUS species label (``"Si1"``, ``"Fe_up"`` -> ``"Si"``, ``"Fe"``)."""
    for pattern in (r"([A-Z][a-z]?)", r"([A-Z])"):
        m = re.match(pattern, label.strip())
        if m and m.group(1) in atomic_numbers:
            return m.group(1)
    raise ValueError(f"cannot tell the element of species label {label!r}")


def shells_tag(shells) -> str:
    """``(0, 0, 1, 1, 2)`` -> ``"2s2p1d"`` (the ABACUS orbital-file naming)."""
    return "".join(f"{list(shells).count(l_val)}{_L_LETTERS[l_val]}"
                   for l_val in sorted(set(shells)))


def parse_shells_tag(text: str) -> tuple[int, ...] | None:
    """``"...2s2p1d..."`` -> ``(0, 0, 1, 1, 2)``; None if the text holds no such tag."""
    m = re.search(r"((?:\d+[spdfghi])+)(?![a-z])", text)
    if not m:
        return None
    out: list[int] = []
    for count, letter in re.findall(r"(\d+)([spdfghi])", m.group(1)):
        out += [_L_LETTERS.index(letter)] * int(count)
    return tuple(sorted(out))


def _tag_candidates(name: str) -> list[tuple[int, ...]]:
    m = re.search(r"(?<![a-z])([sdtq])z(?:([sdt]?)p)?(?![a-z])", name.lower())
    if not m:
        return []
    zeta = "sdtq".index(m.group(1)) + 1
    pol = 0 if m.group(0)[-1] != "p" else ("sdt".index(m.group(2)) + 1 if m.group(2) else 1)
    return [tuple([l_val for l_val in range(lv + 1) for _ in range(zeta)] + [lv + 1] * pol)
            for lv in range(4)]


def shells_from_tags(atoms, known, tags, n_orb, where) -> dict[str, tuple[int, ...]]:
    """Resolve ``sz``/``dzp`` tags: the one candidate set whose orbital count gives n_orb.

    ``known`` maps elements to shells already known, ``tags`` the other elements to the
    names of their orbital files; ``where`` is the file named in a FormatError.
    """
    syms = atoms.get_chemical_symbols()
    fixed = sum(sum(2 * l_val + 1 for l_val in known[s]) for s in syms if s in known)
    els = sorted(tags)
    cands = [_tag_candidates(tags[el]) for el in els]
    if not all(cands):
        raise FormatError(where, f"no orbital shells for {els}: no .orb file, no log, and no "
                                 "recognisable basis tag; pass basis={{element: shells}}")
    hits = [combo for combo in itertools.product(*cands)
            if fixed + sum(syms.count(el) * sum(2 * x + 1 for x in ls)
                           for el, ls in zip(els, combo, strict=False)) == n_orb]
    if len(hits) != 1:
        raise FormatError(where, f"cannot infer the shells of {els} from the file names and "
                                 f"the dimension {n_orb}; pass basis={{element: shells}}")
    return dict(zip(els, hits[0], strict=False))


# ---------------------------------------------------------------------------- STRU
def _strip(line: str) -> str:
    return re.split(r"//|#", line, maxsplit=1)[0]


def _sections(text: str, path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        key = _strip(line).split()
        if key and key[0] in _SECTIONS:
            current = key[0]
            out[current] = []
        elif current is not None and key:
            out[current].append(line)
    for need in ("ATOMIC_SPECIES", "ATOMIC_POSITIONS"):
        if need not in out:
            raise FormatError(path, f"STRU lacks the {need} block")
    return out


def parse_stru(text: str, path) -> StruData:
    """Parse a STRU file (``Direct``, ``Cartesian`` [lat0], ``Cartesian_angstrom``/``_bohr``)."""
    sec = _sections(text, path)
    labels, pseudo = [], {}
    for line in sec["ATOMIC_SPECIES"]:
        tok = _strip(line).split()
        labels.append(tok[0])
        if len(tok) > 2:
            pseudo[tok[0]] = tok[2]
    orbs, notes = {}, {}
    for lab, line in zip(labels, sec.get("NUMERICAL_ORBITAL", []), strict=False):
        orbs[lab] = _strip(line).split()[0]
        if _SHELL_NOTE in line:
            notes[lab] = parse_shells_tag(line.split(_SHELL_NOTE, 1)[1]) or ()
    try:
        lat0 = float(_strip(sec.get("LATTICE_CONSTANT", ["1.0"])[0]).split()[0]) * Bohr
        if "LATTICE_VECTORS" not in sec:
            raise ValueError("no LATTICE_VECTORS block (latname lattices are not supported)")
        vecs = [_strip(ln).split()[:3] for ln in sec["LATTICE_VECTORS"][:3]]
        cell = np.array(vecs, dtype=float).reshape(3, 3) * lat0
        symbols, coords, kind = _stru_positions(sec["ATOMIC_POSITIONS"], labels)
        if not (np.all(np.isfinite(cell)) and np.all(np.isfinite(coords))):
            raise ValueError("NaN or infinite lattice or position")
        atoms = _make_atoms(symbols, coords, kind, cell, lat0)
        elements = [element_of(lab) for lab in labels]
    except (ValueError, IndexError, KeyError, AssertionError) as exc:
        raise FormatError(path, f"cannot parse STRU ({exc})") from exc
    return StruData(atoms, labels, pseudo, orbs, notes, elements)


def _stru_positions(lines: list[str], labels: list[str]):
    rows = [_strip(ln).split() for ln in lines]
    kind = rows[0][0].lower()
    blocks: dict[str, list] = {}
    k = 1
    while k < len(rows):
        label, count = rows[k][0], int(rows[k + 2][0])
        blocks[label] = [r[:3] for r in rows[k + 3:k + 3 + count]]
        if len(blocks[label]) != count or any(len(r) < 3 for r in blocks[label]):
            raise ValueError(f"species {label}: fewer than {count} position lines")
        k += 3 + count
    if set(blocks) - set(labels):
        raise ValueError(f"positions for undeclared species {sorted(set(blocks) - set(labels))}")
    symbols = [element_of(lab) for lab in labels for _ in blocks.get(lab, [])]
    coords = np.array([r for lab in labels for r in blocks.get(lab, [])], dtype=float)
    return symbols, coords.reshape(-1, 3), kind


def _make_atoms(symbols, coords, kind: str, cell, lat0: float) -> Atoms:
    if kind == "direct":
        return Atoms(symbols, scaled_positions=coords, cell=cell, pbc=True)
    scale = {"cartesian": lat0, "cartesian_angstrom": 1.0, "cartesian_bohr": Bohr,
             "cartesian_au": Bohr}.get(kind)
    if scale is None:
        raise ValueError(f"unsupported coordinate type {kind!r}")
    return Atoms(symbols, positions=coords * scale, cell=cell, pbc=True)


def species_order(atoms: Atoms) -> list[str]:
    """Element symbols in order of first appearance."""
    return list(dict.fromkeys(atoms.get_chemical_symbols()))


def format_stru(atoms: Atoms, orbital_files: dict[str, str], pseudo_files: dict[str, str],
                shells: dict[str, tuple[int, ...]] | None = None) -> str:
    """STRU text: lattice constant 1 Angstrom (in Bohr), vectors in Angstrom, Direct positions.

    Atoms must be grouped by species (see :func:`species_order`). ``shells`` are recorded
    in a ``//`` comment after each orbital file so that ase-deeph can read them back.
    """
    order = species_order(atoms)
    syms = atoms.get_chemical_symbols()
    out = ["ATOMIC_SPECIES"]
    for el in order:
        mass = atomic_masses[atomic_numbers[el]]
        out.append(f"{el} {mass:.4f} {pseudo_files.get(el, el + '.upf')}")
    out += ["", "NUMERICAL_ORBITAL"]
    for el in order:
        note = f"  // {_SHELL_NOTE} {shells_tag(shells[el])}" if shells and el in shells else ""
        out.append(f"{orbital_files.get(el, el + '.orb')}{note}")
    out += ["", "LATTICE_CONSTANT", f"{1.0 / Bohr:.16f}  // 1 Angstrom in Bohr", "",
            "LATTICE_VECTORS"]
    out += [" ".join(f"{x:.16f}" for x in v) for v in np.asarray(atoms.cell)]
    out += ["", "ATOMIC_POSITIONS", "Direct", ""]
    frac = atoms.get_scaled_positions(wrap=False)
    for el in order:
        idx = [k for k, s in enumerate(syms) if s == el]
        out += [el, "0.0", str(len(idx))]
        out += [" ".join(f"{x:.16f}" for x in frac[k]) + " 1 1 1" for k in idx]
        out.append("")
    return "\n".join(out)


def format_input(params: dict) -> str:
    """INPUT text from an ordered dict of keys and values."""
    width = max(len(k) for k in params) + 2
    return "INPUT_PARAMETERS\n" + "".join(f"{k:<{width}}{v}\n" for k, v in params.items())


def format_kpt(kpts=(1, 1, 1), shift=(0, 0, 0)) -> str:
    """KPT text of a Gamma-centred Monkhorst-Pack grid."""
    return "K_POINTS\n0\nGamma\n" + " ".join(str(int(x)) for x in (*kpts, *shift)) + "\n"


# ------------------------------------------------------------------ orb, log, upf
def parse_orb_header(text: str, path) -> tuple[str, float, tuple[int, ...]]:
    """Element, cutoff radius (Bohr) and shells from an ABACUS ``.orb`` header."""
    el = re.search(r"Element\s+(\S+)", text)
    rc = re.search(r"Radius Cutoff\(a\.u\.\)\s+(\S+)", text)
    counts = re.findall(r"Number of\s+([SPDFGHI])orbital-->\s+(\d+)", text)
    if not (el and rc and counts):
        raise FormatError(path, "not an ABACUS .orb file (header lacks Element, "
                                "Radius Cutoff(a.u.) or 'Number of Sorbital-->')")
    shells: list[int] = []
    for letter, n in counts:
        shells += [_L_LETTERS.index(letter.lower())] * int(n)
    try:
        return el.group(1), float(rc.group(1)), tuple(sorted(shells))
    except ValueError as exc:
        raise FormatError(path, f"bad .orb header value ({exc})") from exc


def parse_log(text: str, path) -> LogData:
    """Fermi level, electrons, shells and (if printed) the structure from a running log."""
    fermi = re.findall(r"EFERMI\s*=\s*(\S+)\s*eV", text)
    nel = re.findall(r"number of electrons\s*[:=\s]\s*=?\s*([0-9.eE+-]+)", text)
    shells: dict[str, tuple[int, ...]] = {}
    for m in re.finditer(r"atom label\s*=\s*(\S+)((?:\s*L=\d+,\s*number of zeta\s*=\s*\d+)+)",
                         text):
        ls = []
        for l_val, nz in re.findall(r"L=(\d+),\s*number of zeta\s*=\s*(\d+)", m.group(2)):
            ls += [int(l_val)] * int(nz)
        try:
            shells[element_of(m.group(1))] = tuple(sorted(ls))
        except ValueError as exc:
            raise FormatError(path, str(exc)) from exc
    try:
        return LogData(float(fermi[-1]) if fermi else float("nan"),
                       float(nel[-1]) if nel else float("nan"), shells, _log_atoms(text))
    except (ValueError, IndexError) as exc:
        raise FormatError(path, f"bad number in the log ({exc})") from exc


def _log_atoms(text: str) -> Atoms | None:
    lat0 = re.search(r"lattice constant \(Angstrom\)\s*=\s*(\S+)", text)
    vec = re.search(r"Lattice vectors: \(Cartesian coordinate: in unit of a_0\)\s*\n"
                    r"((?:\s*\S+\s+\S+\s+\S+\s*\n){3})", text)
    coord = re.search(r"(DIRECT|CARTESIAN) COORDINATES[^\n]*\n[^\n]*\n((?:\s*tau\S*(?:\s+\S+){3}"
                      r"[^\n]*\n)+)", text)
    if not (lat0 and vec and coord):
        return None
    a0 = float(lat0.group(1))
    cell = np.array(vec.group(1).split(), dtype=float).reshape(3, 3) * a0
    rows = [ln.split() for ln in coord.group(2).strip().splitlines()]
    symbols = [element_of(re.sub(r"^tau[a-z]?_", "", r[0])) for r in rows]
    xyz = np.array([r[1:4] for r in rows], dtype=float)
    if coord.group(1) == "DIRECT":
        return Atoms(symbols, scaled_positions=xyz, cell=cell, pbc=True)
    return Atoms(symbols, positions=xyz * a0, cell=cell, pbc=True)


def parse_upf_valence(text: str) -> float | None:
    """Valence charge ``z_valence`` of a UPF (v1 or v2) pseudopotential; None if absent."""
    m = re.search(r'z_valence\s*=\s*"\s*([0-9.eE+-]+)', text) or re.search(
        r"([0-9.eE+-]+)\s+Z valence", text)
    return float(m.group(1)) if m else None


def parse_input(text: str) -> dict[str, str]:
    """Keys and values (as written) of an ABACUS INPUT file; ``#`` and ``//`` start comments."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        tok = _strip(line).split(None, 1)
        if len(tok) == 2 and tok[0] != "INPUT_PARAMETERS":
            out[tok[0].lower()] = tok[1].strip()
    return out
