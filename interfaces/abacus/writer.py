"""ABACUS (LCAO) writer: :class:`HSData` -> CSR H(R)/S(R) files and STRU; run inputs.

The files are those :func:`interfaces.abacus.reader.read` reads back (``docs/formats.md``
section 3): orbitals in ABACUS order (:mod:`interfaces.orbitals`, code ``"abacus"``), H in
Ry, atoms grouped by species. Every file of one call is written to a temporary name first
and renamed at the end (no partial output).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms

from interfaces import orbitals
from interfaces.abacus.blocks import csr_texts
from interfaces.abacus.text import format_input, format_kpt, format_stru, shells_tag, species_order
from interfaces.hsdata import HSData, parse_irreps

__all__ = ["write", "write_input"]


def write(hs: HSData, path: str | os.PathLike, layout: str = "old", *,
          orbital_files: dict | None = None, pseudo_files: dict | None = None) -> list[Path]:
    """Write ABACUS CSR files (and a STRU) into the folder ``path``, atomically.

    Parameters
    ----------
    hs : HSData
        Data to write. Atoms are regrouped by species (ABACUS order) if needed.
    path : str or path-like
        Output folder (created).
    layout : {"old", "new"}
        ``"old"``: ``data-HR-sparse_SPIN0.csr`` (+ ``_SPIN1`` for collinear spin) and
        ``data-SR-sparse_SPIN0.csr`` with a ``STEP: 0`` line; ``"new"``: ``hrs1_nao.csr``
        (+ ``hrs2_nao.csr``) and ``srs1_nao.csr`` with the embedded structure.
    orbital_files, pseudo_files : dict, optional
        Per element, file names to record in STRU (default: from ``hs.metadata`` or
        ``<El>_<tag>.orb`` / ``<El>.upf``).

    Returns
    -------
    list of Path
        The files written. Values use 17 significant digits (exact float64 round
        trip up to the Ry conversion). Zeros are dropped as in ABACUS output, except for
        blocks that are zero everywhere (written as explicit zeros, so the edge set
        survives). ``hs`` should be Hermitian: the reader restores a dropped element
        from its partner (see :func:`interfaces.abacus.reader.read`).
    """
    if layout not in ("old", "new"):
        raise ValueError(f"layout must be 'old' or 'new', got {layout!r}")
    hs = _grouped(hs)
    meta = hs.metadata.get("abacus", {}) if isinstance(hs.metadata, dict) else {}
    orbs = {el: (orbital_files or {}).get(el) or meta.get("orbital_files", {}).get(el)
            or f"{el}_{shells_tag(ls)}.orb" for el, ls in hs.basis.items()}
    pps = {el: (pseudo_files or {}).get(el) or meta.get("pseudo_files", {}).get(el)
           or f"{el}.upf" for el in hs.basis}
    texts = csr_texts(orbitals.from_internal(hs, "abacus"), layout)
    texts["STRU"] = format_stru(hs.atoms, orbs, pps, hs.basis)
    return _write_all(Path(path), texts)


def _grouped(hs: HSData) -> HSData:
    """Reorder atoms so that each species is contiguous (ABACUS's orbital order)."""
    syms = hs.atoms.get_chemical_symbols()
    order = species_order(hs.atoms)
    perm = np.argsort([order.index(s) for s in syms], kind="stable")
    if np.all(perm == np.arange(len(perm))):
        return hs
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return hs.replace(atoms=hs.atoms[perm], edge_index=inv[hs.edge_index])


def _write_all(folder: Path, texts: dict[str, str]) -> list[Path]:
    """Write every file to a temporary name first, then rename all (no partial output)."""
    folder.mkdir(parents=True, exist_ok=True)
    temps: list[tuple[str, Path]] = []
    try:
        for name, text in texts.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            os.chmod(tmp, 0o644)
            temps.append((name, Path(tmp)))
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
        for name, tmp in temps:
            os.replace(tmp, folder / name)
    except BaseException:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    return [folder / name for name in texts]


def write_input(atoms: Atoms, basis_files: dict[str, str], path: str | os.PathLike, *,
                pseudo_files: dict[str, str] | None = None, kpts=(1, 1, 1), nspin: int = 1,
                ecutwfc: float = 100.0, basis: dict | None = None, digits: int | None = None,
                **input_keys) -> list[Path]:
    """Write STRU, INPUT (with ``out_mat_hs2 1``) and KPT for a new structure.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom); atoms are written grouped by species (ABACUS requires it),
        which is also the atom order of the resulting CSR files.
    basis_files, pseudo_files : dict of str to str
        Per element, the ``.orb`` and pseudopotential file names (default ``<El>.upf``).
    path : str or path-like
        Run folder (created).
    kpts : sequence of 3 int
        Gamma-centred k-point grid.
    nspin : {1, 2, 4}
        ABACUS ``nspin``.
    ecutwfc : float
        Plane-wave cutoff for the local potential, Ry.
    basis : dict, optional
        Per element shells, recorded as a STRU comment for
        :func:`interfaces.abacus.reader.read`.
    digits : int, optional
        Printed digits of H(R)/S(R) (``out_mat_hs2 1 <digits>``).
    **input_keys
        Extra or overriding INPUT keys.
    """
    order = species_order(atoms)
    syms = atoms.get_chemical_symbols()
    atoms = atoms[np.argsort([order.index(s) for s in syms], kind="stable")]
    missing = sorted(set(order) - set(basis_files))
    if missing:
        raise ValueError(f"basis_files lacks {missing}")
    params = {"suffix": "ABACUS", "calculation": "scf", "basis_type": "lcao", "nspin": nspin,
              "ecutwfc": ecutwfc, "scf_thr": "1e-7", "pseudo_dir": "./", "orbital_dir": "./",
              "out_mat_hs2": "1" if digits is None else f"1 {digits}"}
    params.update(input_keys)
    texts = {"STRU": format_stru(atoms, basis_files, pseudo_files or {},
                                 {el: (parse_irreps(v) if isinstance(v, str) else tuple(v))
                                  for el, v in (basis or {}).items()}),
             "INPUT": format_input(params), "KPT": format_kpt(kpts)}
    return _write_all(Path(path), texts)

