"""ABACUS (LCAO) reader and writer: CSR H(R)/S(R) files <-> :class:`HSData`.

The writer (:func:`write`, :func:`write_input`) lives in :mod:`interfaces.abacus.writer`.

Supported (``docs/formats.md`` section 3):

* old CSR (ABACUS <= 3.9, ``data-HR-sparse_SPIN{0,1}.csr``, ``data-SR-sparse_SPIN0.csr``,
  ``SR.csr``) with or without the ``STEP:`` line, and new CSR (>= 3.10, ``hrs1_nao.csr``,
  ``hrs2_nao.csr``, ``srs1_nao.csr``, ``sr_nao.csr``) with its embedded structure; any of
  these names may carry ``.gz``, ``.ref`` or ``.ref.gz``; multi-step files give the last step;
* nspin 1 (spin ``"none"``), 2 (two H files -> ``"collinear"``) and 4 (``"(re,im)"`` tokens,
  index 2 * orbital + sigma -> spin-major ``"spinor"`` blocks; spinless S from the up-up part).

Conventions: H is converted from Ry with ``ase.units.Ry``, lengths from Bohr with
``ase.units.Bohr`` (ABACUS itself uses 13.605698 eV/Ry, a 1e-7 relative difference).
Block (R, row i, column j) is ``<phi_i, 0 | H | phi_j, R>``. Orbitals are converted from
ABACUS order (m = 0, +1, -1, ..., times (-1)^m) with :mod:`interfaces.orbitals`, code
``"abacus"``, after the spin de-interleaving.

Edges and missing elements: the edge set is the union of the H and S keys, so every H block
is kept even where S has none (S is zero there, ``docs/formats.md`` 3.7). ABACUS drops elements
below a threshold, so an element (or a whole block) may be stored while its Hermitian partner
``(j, i, -R)`` is not; the reader fills every such missing partner element with the conjugate
of the stored one (count in ``metadata["abacus"]["n_filled_partners"]``); elements absent in
both directions stay zero. Hence ``hermiticity_error()`` is finite for every file read.

Where things come from: structure from STRU (beside the CSR files or one folder up), else
the new-layout embedded structure (checked against STRU when both exist), else the running
log. Shells from, in order: the ``basis`` argument, the ``// ase-deeph shells`` note written
by :func:`write`, the ``.orb`` headers named in STRU (searched in ``orbital_dir``, the run and
CSR folders), the log (``L=0, number of zeta = 2``), an ``NsNpNd`` tag in the orbital file
name, or an ``sz``/``dzp``-style tag resolved by the matrix dimension. Fermi level (eV) from
the last ``EFERMI = x eV`` in a ``running_*.log``; electron count from the log
(``number of electrons``) or the UPF ``z_valence`` of the pseudopotentials; NaN when none
of these files is present. When the .orb files named in STRU are found, they are embedded
in ``metadata["overlap"]`` (``{"kind": "nao", "files": ...}``, see
:func:`interfaces.nao.overlap.embed_basis_files`) so that S of new structures can be recomputed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from ase import Atoms

from interfaces import orbitals
from interfaces.abacus.blocks import assemble
from interfaces.abacus.csr import parse_csr
from interfaces.abacus.text import (
    LogData,
    StruData,
    parse_input,
    parse_log,
    parse_orb_header,
    parse_shells_tag,
    parse_stru,
    parse_upf_valence,
    read_text,
    shells_from_tags,
)
from interfaces.abacus.writer import write, write_input
from interfaces.checks import check_structure
from interfaces.errors import FormatError, reader
from interfaces.hsdata import HSData, parse_irreps

__all__ = ["read", "write", "write_input", "H_NAMES", "S_NAMES"]

#: H file names per spin channel (old, new layout).
H_NAMES = (("data-HR-sparse_SPIN0.csr", "hrs1_nao.csr"),
           ("data-HR-sparse_SPIN1.csr", "hrs2_nao.csr"))
#: S file names (old scf, new scf, new get_S, old get_S).
S_NAMES = ("data-SR-sparse_SPIN0.csr", "srs1_nao.csr", "sr_nao.csr", "SR.csr")
_SUFFIXES = ("", ".gz", ".ref", ".ref.gz")
_ALL_NAMES = {n + suf for names in (*H_NAMES, S_NAMES) for n in names for suf in _SUFFIXES}


# ---------------------------------------------------------------------- locating
def _find(folder: Path, names) -> Path | None:
    for name in names:
        for suf in _SUFFIXES:
            if (folder / (name + suf)).is_file():
                return folder / (name + suf)
    return None


def _csr_folder(path: Path) -> Path:
    if path.is_file():
        if path.name not in _ALL_NAMES:
            raise FormatError(path, "not an ABACUS H(R)/S(R) CSR file name")
        return path.parent
    if not path.is_dir():
        raise FormatError(path, "no such file or folder")
    if any((path / n).is_file() for n in _ALL_NAMES):
        return path
    outs = [d for d in sorted(path.glob("OUT.*")) if d.is_dir()
            and any((d / n).is_file() for n in _ALL_NAMES)]
    if len(outs) != 1:
        raise FormatError(path, "no ABACUS CSR files here" if not outs else
                          f"several OUT.* folders with CSR files ({[d.name for d in outs]}); "
                          "pass one of them")
    return outs[0]


def _named(folders, name: str) -> Path | None:
    """Return the file ``name`` (or ``name.gz``) in the first folder that has it."""
    for d in folders:
        for cand in (d / name, d / (name + ".gz")):
            if cand.is_file():
                return cand
    return None


def _first(folders, pattern: str) -> Path | None:
    for d in folders:
        hits = sorted(d.glob(pattern))
        if hits:
            return hits[0]
    return None


# ---------------------------------------------------------------------- reading
@reader
def read(path: str | os.PathLike, basis: dict | None = None) -> HSData:
    """Read an ABACUS run into :class:`HSData` (eV, Angstrom, internal orbital order).

    Parameters
    ----------
    path : str or path-like
        A run folder, an ``OUT.<suffix>`` folder, or one of the CSR files.
    basis : dict, optional
        Per element the shells (tuple of l, or an irreps string such as ``"1x0e+1x1o"``);
        overrides every file-based source.

    Raises
    ------
    FormatError
        For missing, truncated, corrupted or mutually inconsistent files, and NaN or
        infinite cells or positions (naming the file).
    """
    folder = _csr_folder(Path(path))
    roots = [folder, folder.parent]
    h_paths = [p for p in (_find(folder, names) for names in H_NAMES) if p is not None]
    s_path = _find(folder, S_NAMES)
    if not h_paths and s_path is None:
        raise FormatError(folder, "no H(R) or S(R) CSR file")
    if _find(folder, H_NAMES[0]) is None and h_paths:
        raise FormatError(h_paths[0], "spin-down H(R) without the spin-up file")
    h_mats = [parse_csr(read_text(p), p) for p in h_paths]
    s_mat = parse_csr(read_text(s_path), s_path) if s_path else None
    stru_path = _first(roots, "STRU")
    stru = parse_stru(read_text(stru_path), stru_path) if stru_path else None
    log_path = _first([folder, *sorted(folder.glob("OUT.*"))], "running_*.log")
    log = parse_log(read_text(log_path), log_path) if log_path else LogData()
    mats = [(p, m) for p, m in zip([*h_paths, s_path], [*h_mats, s_mat], strict=True)
            if m is not None]
    atoms = _structure(folder, stru, stru_path, mats, log, log_path)
    spinor = any(np.iscomplexobj(m.val) for m in h_mats)
    shells = _shells(atoms, basis, stru, stru_path, log, mats[0][1].dim // (2 if spinor else 1),
                     roots)
    hs, n_filled = assemble(atoms, shells, h_paths, h_mats, s_path, s_mat, spinor)
    hs = orbitals.to_internal(hs, "abacus")
    layout = mats[0][1].layout
    meta = {"abacus": {
        "layout": layout, "step": mats[0][1].step, "files": [str(p) for p, _ in mats],
        "n_filled_partners": n_filled,
        "orbital_files": stru.orbital_files if stru else {},
        "pseudo_files": stru.pseudo_files if stru else {},
        "units": "H from Ry with ase.units.Ry; lengths from Bohr with ase.units.Bohr",
    }, **_embed_orbitals(stru, stru_path, roots)}
    n_el = log.n_electrons if not math.isnan(log.n_electrons) else _upf_electrons(
        atoms, stru, stru_path)
    return hs.replace(fermi_level=log.fermi_level, n_electrons=n_el, source_code="abacus",
                      source_version=">=3.10" if layout == "new" else "<=3.9", metadata=meta)


def _structure(folder, stru: StruData | None, stru_path, mats, log: LogData, log_path) -> Atoms:
    embedded = next(((p, m.structure) for p, m in mats if m.structure is not None), None)
    if embedded is not None:
        check_structure(embedded[1], embedded[0])
    if stru is not None:
        if embedded is not None:
            _check_same(check_structure(stru.atoms, stru_path), embedded[1], stru_path,
                        embedded[0])
        return check_structure(stru.atoms, stru_path)
    if embedded is not None:
        return embedded[1]
    if log.atoms is not None:
        return check_structure(log.atoms, log_path)
    raise FormatError(folder, "no structure: no STRU beside the CSR files (or one folder up), "
                              "no structure in the CSR header and none in a running_*.log")


def _check_same(a: Atoms, b: Atoms, path_a, path_b) -> None:
    """Structures must agree to the ~6 printed digits of the embedded header."""
    tol = 1e-4 * max(1.0, float(np.abs(a.cell).max()))
    same = (a.get_chemical_symbols() == b.get_chemical_symbols()
            and np.abs(np.asarray(a.cell) - np.asarray(b.cell)).max() < tol
            and np.abs(a.positions - b.positions).max() < tol)
    if not same:
        raise FormatError(path_b, f"structure in the CSR header disagrees with {path_a}")


def _shells(atoms, basis, stru, stru_path, log, n_orb, roots) -> dict[str, tuple[int, ...]]:
    out: dict[str, tuple[int, ...]] = {}
    for el, v in (basis or {}).items():
        out[el] = parse_irreps(v) if isinstance(v, str) else tuple(sorted(v))
    labels = dict(zip(stru.labels, stru.elements, strict=True)) if stru else {}
    for lab, el in labels.items():
        if el not in out and stru.shell_notes.get(lab):
            out[el] = stru.shell_notes[lab]
    tags = _orb_shells(stru, stru_path, roots, out) if stru else {}
    for el, ls in log.shells.items():
        out.setdefault(el, ls)
    for el, name in tags.items():
        if el not in out and parse_shells_tag(name):
            out[el] = parse_shells_tag(name)
    missing = sorted(set(atoms.get_chemical_symbols()) - set(out))
    if missing:
        out.update(shells_from_tags(atoms, out, {el: tags.get(el, "") for el in missing}, n_orb,
                                     stru_path or roots[0]))
    return out


def _orb_shells(stru: StruData, stru_path, roots, out: dict) -> dict[str, str]:
    """Add shells from the .orb headers to ``out``; return the names of the files not found."""
    orb_dirs = _orb_dirs(stru_path, roots)
    tags: dict[str, str] = {}
    from_orb: dict[str, tuple[int, ...]] = {}
    for lab, el in zip(stru.labels, stru.elements, strict=True):
        name = stru.orbital_files.get(lab)
        orb = _named(orb_dirs, name) if name else None
        if orb is None:
            if name:
                tags[el] = name
            continue
        o_el, _, ls = parse_orb_header(read_text(orb, 8192), orb)
        if o_el != el:
            raise FormatError(orb, f"orbital file of element {o_el} given for species {lab}")
        if from_orb.setdefault(el, ls) != ls:
            raise FormatError(stru_path, f"species of element {el} with different orbital "
                                         "shells are not supported")
    for el, ls in from_orb.items():
        out.setdefault(el, ls)
    return tags


def _orb_dirs(stru_path: Path, roots) -> list[Path]:
    """Folders searched for the .orb files: INPUT's ``orbital_dir``, then ``roots``."""
    orb_dirs = list(roots)
    inp = _first([stru_path.parent], "INPUT")
    o_dir = parse_input(read_text(inp)).get("orbital_dir", "").split() if inp else []
    if o_dir:
        orb_dirs.insert(0, stru_path.parent / o_dir[0])
    return orb_dirs


def _embed_orbitals(stru: StruData | None, stru_path, roots) -> dict:
    """``{"overlap": ...}`` embedding the run's .orb files when all are found, else ``{}``.

    Uses :func:`interfaces.nao.overlap.embed_basis_files` (name, sha256, gzip + base64 content), so
    that a model trained on this run recomputes S exactly for new structures.
    """
    from interfaces.nao.overlap import embed_basis_files

    if stru is None:
        return {}
    dirs = _orb_dirs(stru_path, roots)
    paths = {el: _named(dirs, stru.orbital_files[lab]) if stru.orbital_files.get(lab) else None
             for lab, el in zip(stru.labels, stru.elements, strict=True)}
    if not paths or any(p is None for p in paths.values()):
        return {}
    try:
        return {"overlap": embed_basis_files(paths)}
    except FormatError:
        return {}


def _upf_electrons(atoms, stru, stru_path) -> float:
    if stru is None or stru_path is None:
        return math.nan
    inp = _first([stru_path.parent], "INPUT")
    pdir = parse_input(read_text(inp)).get("pseudo_dir", "").split() if inp else []
    dirs = ([stru_path.parent / pdir[0]] if pdir else []) + [stru_path.parent]
    zval: dict[str, float] = {}
    for lab, el in zip(stru.labels, stru.elements, strict=False):
        upf = _named(dirs, stru.pseudo_files[lab]) if stru.pseudo_files.get(lab) else None
        z = parse_upf_valence(read_text(upf, 200_000)) if upf else None
        if z is None:
            return math.nan
        zval[el] = z
    return float(sum(zval[s] for s in atoms.get_chemical_symbols()))
