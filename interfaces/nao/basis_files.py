"""Readers of numerical atomic-orbital (NAO) radial basis files.

Supported formats (``docs/formats.md`` section 6):

* SIESTA ``.ion.xml`` and ``.ion`` (plain text): per orbital ``l, n, zeta`` and
  ``f(r) = R(r) / r^l`` on a uniform grid from r = 0 to the cutoff, in Bohr;
  Kleinman-Bylander projector cutoffs are read too.
* ABACUS ``.orb``: header (element, cutoff, ``Mesh``, ``dr``), then per radial
  function a ``Type L N`` block (N = 0-based zeta) with R(r) itself, 4 values per line.
* OpenMX ``.pao`` (**assumption**, no sample at hand; layout as read by OpenMX's
  ``Read_PAO``): keys ``AtomSpecies``, ``grid.num.output``, ``radial.cutoff.pao`` (Bohr),
  ``PAO.Lmax``, ``PAO.Mul`` and blocks ``<pseudo.atomic.orbitals.L=l`` ...
  ``pseudo.atomic.orbitals.L=l>`` of lines ``x = ln r, r, R_0(r) .. R_{Mul-1}(r)`` on a
  logarithmic grid; the tabulated function is taken to be R(r) itself and the k-th
  column to be zeta k+1. The reader resamples it onto a uniform grid 0..cutoff.

Every file may be gzip-compressed (``.gz`` suffix). Every problem (unreadable or damaged
gzip, truncation, bad numbers, fewer shells or projectors than the file's header declares)
raises :class:`~interfaces.errors.FormatError` naming the file. All readers return a
:class:`RadialBasis` in Angstrom: grids in Angstrom and R(r) in Angstrom^-3/2, so that
``int r^2 R(r)^2 dr = 1`` for a normalised orbital and overlaps are dimensionless
(:class:`RadialOrbital` and :class:`RadialBasis` are defined in :mod:`interfaces.nao.radial`).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import re
import zlib

import numpy as np
from ase.data import atomic_numbers, chemical_symbols
from ase.units import Bohr
from scipy.interpolate import CubicSpline

from interfaces.errors import FormatError, reader, reading
from interfaces.nao.radial import RadialBasis, RadialOrbital

__all__ = [
    "RadialOrbital",
    "RadialBasis",
    "read_basis",
    "read_basis_text",
    "read_ion_xml",
    "read_ion",
    "read_abacus_orb",
    "read_openmx_pao",
]

_R_UNIT = Bohr**-1.5  # R(r) in Bohr^-3/2 -> Angstrom^-3/2


# --------------------------------------------------------------------------- files
def read_text_digest(path) -> tuple[str, str]:
    """Return (text, sha256 of the uncompressed bytes); ``.gz`` is read transparently."""
    path = os.fspath(path)
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise FormatError(path, f"cannot read basis file: {exc}") from exc
    try:
        return raw.decode("utf-8", errors="strict"), hashlib.sha256(raw).hexdigest()
    except UnicodeDecodeError as exc:
        raise FormatError(path, "not a text basis file") from exc


def basis_file_name(path) -> str:
    """Return the file name of ``path`` without a ``.gz`` suffix (the name of the format)."""
    name = os.path.basename(os.fspath(path))
    return name[:-3] if name.endswith(".gz") else name


def read_basis(path, **kw) -> RadialBasis:
    """Read any supported basis file, chosen by its name (``.gz`` allowed).

    ``.ion.xml`` -> :func:`read_ion_xml`, ``.ion`` -> :func:`read_ion`,
    ``.orb`` -> :func:`read_abacus_orb`, ``.pao`` -> :func:`read_openmx_pao` (``kw`` are
    passed on, e.g. ``multiplicity`` for OpenMX).
    """
    name = basis_file_name(path).lower()
    if name.endswith(".pao"):
        return read_openmx_pao(path, **kw)
    return text_parser(name, path)(*read_text_digest(path), path)


def _guarded(parse):
    """Make a text parser ``parse(text, digest, path)`` raise only FormatError naming path."""

    @functools.wraps(parse)
    def wrapper(text: str, digest: str, path) -> RadialBasis:
        with reading(path, "malformed basis file"):
            return parse(text, digest, path)

    return wrapper


def _declared(path, what: str, declared, found: int) -> None:
    """Raise unless ``found`` items match the count the file's own header declares."""
    if declared is not None and int(declared) != found:
        raise FormatError(path, f"the header declares {int(declared)} {what}, the file holds "
                                f"{found} (truncated file?)")


def text_parser(name: str, path):
    """Text parser of a basis file name (``.ion.xml``, ``.ion``, ``.orb``)."""
    for suffix, parser in ((".ion.xml", _parse_ion_xml), (".ion", _parse_ion),
                           (".orb", _parse_abacus_orb)):
        if name.lower().endswith(suffix):
            return parser
    raise FormatError(path, "unknown basis file type (expected .ion.xml, .ion, .orb or .pao)")


def read_basis_text(text: str, filename: str) -> RadialBasis:
    """Parse the content of a ``.ion.xml``, ``.ion`` or ``.orb`` file named ``filename``.

    The sha256 is that of the UTF-8 encoded text (equal to the file's when the file was
    read as UTF-8 text, as :func:`read_basis` does).
    """
    name = basis_file_name(filename)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    return text_parser(name, filename)(text, digest, name)


def _uniform_orbital(path, l_val, n, zeta, r_bohr, f, *, divided, pol=False, pop=np.nan):
    """Build a RadialOrbital from a uniform Bohr grid; ``divided``: f = R / r^l."""
    r_bohr = np.asarray(r_bohr, dtype=np.float64)
    f = np.asarray(f, dtype=np.float64)
    if len(r_bohr) < 4 or len(f) != len(r_bohr) or not np.all(np.isfinite(f)):
        raise FormatError(path, f"radial function l={l_val} zeta={zeta} is truncated or invalid")
    step = np.diff(r_bohr)
    if abs(r_bohr[0]) > 1e-12 or np.ptp(step) > 1e-6 * step.mean():
        raise FormatError(path, f"radial grid of l={l_val} zeta={zeta} is not uniform from 0")
    values = f * r_bohr**l_val if divided else f
    return RadialOrbital(
        l=int(l_val), n=int(n), zeta=int(zeta), cutoff=float(r_bohr[-1] * Bohr),
        r=r_bohr * Bohr, values=values * _R_UNIT, polarization=bool(pol), population=float(pop),
    )


# --------------------------------------------------------------------------- SIESTA
def _xml_tag(block: str, tag: str, path) -> str:
    m = re.search(rf"<{tag}>(.*?)</{tag}>", block, re.S)
    if m is None:
        raise FormatError(path, f"missing <{tag}>")
    return m.group(1)


def _xml_radfunc(block: str, path) -> tuple[np.ndarray, np.ndarray, float]:
    npts = int(_xml_tag(block, "npts", path))
    data = np.array(_xml_tag(block, "data", path).split(), dtype=np.float64)
    if data.size != 2 * npts:
        raise FormatError(path, f"<data> holds {data.size} numbers, expected {2 * npts}")
    data = data.reshape(npts, 2)
    return data[:, 0], data[:, 1], float(_xml_tag(block, "cutoff", path))


def read_ion_xml(path) -> RadialBasis:
    """Read a SIESTA ``.ion.xml`` file (f(r) = R(r)/r^l on a uniform Bohr grid)."""
    return _parse_ion_xml(*read_text_digest(path), path)


@_guarded
def _parse_ion_xml(text: str, digest: str, path) -> RadialBasis:
    symbol = _xml_tag(text, "symbol", path).strip()
    orbitals = []
    for m in re.finditer(r"<orbital\s([^>]*)>(.*?)</orbital>", text, re.S):
        attrs = dict(re.findall(r'(\w+)="\s*([^"]*?)\s*"', m.group(1)))
        try:
            l_val, n, z = int(attrs["l"]), int(attrs["n"]), int(attrs["z"])
        except (KeyError, ValueError) as exc:
            raise FormatError(path, f"bad <orbital> attributes {attrs}") from exc
        r, f, _ = _xml_radfunc(m.group(2), path)
        orbitals.append(
            _uniform_orbital(path, l_val, n, z, r, f, divided=True,
                             pol=int(attrs.get("ispol", "0")) != 0,
                             pop=float(attrs.get("population", "nan")))
        )
    projectors = []
    for m in re.finditer(r"<projector\s([^>]*)>(.*?)</projector>", text, re.S):
        attrs = dict(re.findall(r'(\w+)="\s*([^"]*?)\s*"', m.group(1)))
        projectors.append((int(attrs.get("l", -1)), _xml_radfunc(m.group(2), path)[2] * Bohr))
    for tag, what, found in (("norbs_nl", "orbitals", orbitals), ("nprojs_nl", "KB projectors",
                                                                   projectors)):
        m = re.search(rf"<{tag}>(.*?)</{tag}>", text, re.S)
        _declared(path, what, m and m.group(1), len(found))
    return _finish(path, symbol, orbitals, "siesta", digest, projectors)


def read_ion(path) -> RadialBasis:
    """Read a SIESTA plain-text ``.ion`` file (same content as ``.ion.xml``)."""
    return _parse_ion(*read_text_digest(path), path)


@_guarded
def _parse_ion(text: str, digest: str, path) -> RadialBasis:
    lines = text.splitlines()
    start = next((k for k, s in enumerate(lines) if s.rstrip().endswith("# Symbol")), None)
    if start is None:
        raise FormatError(path, "no '# Symbol' line: not a SIESTA .ion file")
    symbol = lines[start].split()[0]
    orbitals, projectors, k = [], [], start
    try:
        while k < len(lines):
            line = lines[k]
            if "#orbital l, n, z, is_polarized, population" in line:
                l_val, n, z, pol = (int(x) for x in line.split()[:4])
                pop = float(line.split()[4])
                r, f, k = _ion_table(lines, k + 1)
                orbitals.append(_uniform_orbital(path, l_val, n, z, r, f, divided=True,
                                                 pol=pol != 0, pop=pop))
                continue
            if "#kb l," in line:
                cut = float(lines[k + 1].split()[2])
                projectors.append((int(line.split()[0]), cut * Bohr))
            k += 1
    except (IndexError, ValueError) as exc:
        raise FormatError(path, f"malformed radial table near line {k + 1}") from exc
    for key, what, found in (("no. of nl orbitals", "orbitals", orbitals),
                             ("no. of nl KB projectors", "KB projectors", projectors)):
        line = next((ln for ln in lines if ln.rstrip().endswith(key)), None)
        _declared(path, what, line and line.split()[1], len(found))
    return _finish(path, symbol, orbitals, "siesta", digest, projectors)


def _ion_table(lines: list[str], k: int) -> tuple[np.ndarray, np.ndarray, int]:
    npts = int(lines[k].split()[0])
    data = np.array(" ".join(lines[k + 1:k + 1 + npts]).split(), dtype=np.float64)
    data = data.reshape(npts, 2)
    return data[:, 0], data[:, 1], k + 1 + npts


# --------------------------------------------------------------------------- ABACUS
def read_abacus_orb(path) -> RadialBasis:
    """Read an ABACUS ``.orb`` file (R(r) itself on a uniform Bohr grid)."""
    return _parse_abacus_orb(*read_text_digest(path), path)


@_guarded
def _parse_abacus_orb(text: str, digest: str, path) -> RadialBasis:
    head = {}
    for key, pat in (("element", r"Element\s+(\S+)"), ("mesh", r"Mesh\s+(\d+)"),
                     ("dr", r"\bdr\s+(\S+)"), ("rcut", r"Radius Cutoff\(a\.u\.\)\s+(\S+)")):
        m = re.search(pat, text)
        if m is None:
            raise FormatError(path, f"missing header field {key!r}: not an ABACUS .orb file")
        head[key] = m.group(1)
    mesh, dr = int(head["mesh"]), float(head["dr"])
    r = dr * np.arange(mesh)
    blocks = re.split(r"Type\s+L\s+N\s*\n", text)[1:]
    if not blocks:
        raise FormatError(path, "no 'Type L N' radial blocks")
    orbitals = []
    for blk in blocks:
        tokens = blk.split()
        try:
            _, l_val, zeta = (int(x) for x in tokens[:3])
            values = np.array(tokens[3:3 + mesh], dtype=np.float64)
        except ValueError as exc:
            raise FormatError(path, "malformed 'Type L N' block") from exc
        if values.size != mesh:
            raise FormatError(path, f"block L={l_val} N={zeta} has {values.size} of {mesh} values")
        orbitals.append(_uniform_orbital(path, l_val, 0, zeta + 1, r, values, divided=False))
    for letter, count in re.findall(r"Number of\s+([SPDFGHI])orbital-->\s+(\d+)", text):
        l_val = "SPDFGHI".index(letter)
        _declared(path, f"l={l_val} orbitals", count, sum(o.l == l_val for o in orbitals))
    return _finish(path, head["element"], orbitals, "abacus", digest, [])


# --------------------------------------------------------------------------- OpenMX
def _pao_key(text: str, key: str, path) -> str:
    m = re.search(rf"^\s*{re.escape(key)}\s+(\S+)", text, re.M)
    if m is None:
        raise FormatError(path, f"missing key {key!r}: not an OpenMX .pao file")
    return m.group(1)


@reader
def read_openmx_pao(path, multiplicity: dict[int, int] | None = None,
                    n_grid: int = 1001) -> RadialBasis:
    """Read an OpenMX ``.pao`` file (format assumed as in the module docstring).

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    multiplicity : dict of int to int, optional
        Radial functions to keep per l (the ``s2p2d1`` part of an OpenMX basis name:
        ``{0: 2, 1: 2, 2: 1}``); default: all ``PAO.Mul`` functions of every l.
    n_grid : int
        Points of the uniform grid the log-grid data are resampled onto.
    """
    text, digest = read_text_digest(path)
    z = int(round(float(_pao_key(text, "AtomSpecies", path))))
    rc = float(_pao_key(text, "radial.cutoff.pao", path))
    lmax, mul = int(_pao_key(text, "PAO.Lmax", path)), int(_pao_key(text, "PAO.Mul", path))
    keep = multiplicity if multiplicity is not None else {l_val: mul for l_val in range(lmax + 1)}
    r_uni = np.linspace(0.0, rc, n_grid)
    orbitals = []
    for l_val, count in sorted(keep.items()):
        m = re.search(rf"<pseudo\.atomic\.orbitals\.L={l_val}\s*\n(.*?)"
                      rf"pseudo\.atomic\.orbitals\.L={l_val}>", text, re.S)
        if m is None or count > mul:
            raise FormatError(path, f"no data for {count} radial functions with l={l_val}")
        rows = np.array(m.group(1).split(), dtype=np.float64)
        if rows.size % (mul + 2):
            raise FormatError(path, f"block L={l_val} is not a table of {mul + 2} columns")
        rows = rows.reshape(-1, mul + 2)
        for zeta in range(count):
            orbitals.append(_uniform_orbital(
                path, l_val, 0, zeta + 1, r_uni,
                _resample_log(rows[:, 1], rows[:, 2 + zeta], l_val, r_uni), divided=False))
    return _finish(path, chemical_symbols[z], orbitals, "openmx", digest, [])


def _resample_log(r_log: np.ndarray, values: np.ndarray, l_val: int, r_uni: np.ndarray):
    """Spline f = R / r^l in ln r (quadratic in r below the first point), return R on ``r_uni``."""
    f = values / r_log**l_val
    out = CubicSpline(np.log(r_log), f)(np.log(np.clip(r_uni, r_log[0], r_log[-1])))
    inner = r_uni < r_log[0]
    out[inner] = np.polyval(np.polyfit(r_log[:3], f[:3], 2), r_uni[inner])
    out = out * r_uni**l_val
    out[r_uni > r_log[-1]] = 0.0
    out[-1] = 0.0
    return out


def _finish(path, symbol: str, orbitals: list, source: str, digest: str,
            projectors: list) -> RadialBasis:
    if symbol not in atomic_numbers:
        raise FormatError(path, f"unknown element symbol {symbol!r}")
    if not orbitals:
        raise FormatError(path, "no radial orbitals found")
    return RadialBasis(symbol=symbol, orbitals=tuple(orbitals), source=source, sha256=digest,
                       filename=basis_file_name(path), projector_cutoffs=tuple(projectors))
