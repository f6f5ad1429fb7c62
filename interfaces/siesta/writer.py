"""Write :class:`HSData` as a SIESTA ``.HSX`` file (version 1 double precision by default).

Version 1 is what sisl (``hsxSileSiesta``) and SIESTA >= 5 tools read; version 2 adds the
k-grid record; version 0 (single precision, xij, SIESTA 4.1 layout) exists so that the v0
reader can be tested. The species table, shell order and valence charges come from the
``siesta_*`` metadata written by :func:`interfaces.siesta.reader.read` when present, otherwise
one species per element with shells in sorted order. Spinor H is written as nspin 8
(spin-orbit storage rule, ``docs/formats.md`` section 1.5), or nspin 4 on request.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from ase.units import Bohr, Ry

from interfaces import orbitals
from interfaces._fortran import RecordWriter, atomic_write_bytes
from interfaces.hsdata import HSData
from interfaces.siesta.records import default_isc_off
from interfaces.siesta.text import write_fdf

__all__ = ["write", "write_fdf", "shells_from_nlz", "hsx_path"]


def hsx_path(path: str | os.PathLike) -> Path:
    """``path`` with the ``.HSX`` extension that format detection needs, added when missing.

    ``out`` -> ``out.HSX``, ``out.gz`` -> ``out.HSX.gz``; ``x.HSX`` and ``x.HSX.gz`` stay.
    """
    path = Path(path)
    gz = path.name.endswith(".gz")
    stem = path.name[:-3] if gz else path.name
    if stem.endswith(".HSX"):
        return path
    return path.with_name(stem + ".HSX" + (".gz" if gz else ""))


def shells_from_nlz(nlz: np.ndarray) -> tuple[tuple[int, ...], list[int]]:
    """Shells of one species from its per-orbital (n, l, zeta) table.

    Returns the l of each shell sorted by (l, zeta) (stable) and ``shell_order``, the file
    position of each sorted shell (as :func:`interfaces.orbitals.atom_map` expects).
    """
    nlz = np.asarray(nlz).reshape(-1, 3)
    shells, k = [], 0
    while k < len(nlz):
        l_val = int(nlz[k, 1])
        run = nlz[k:k + 2 * l_val + 1]
        if l_val < 0 or len(run) != 2 * l_val + 1 or np.any(run != nlz[k]):
            raise ValueError(f"orbital {k}: (n, l, zeta) = {nlz[k].tolist()} does not start a "
                             f"complete shell of 2l+1 orbitals")
        shells.append((l_val, int(nlz[k, 2])))
        k += 2 * l_val + 1
    order = sorted(range(len(shells)), key=lambda p: (shells[p][0], shells[p][1], p))
    return tuple(shells[p][0] for p in order), order


def _species(hs: HSData) -> tuple[list[dict], np.ndarray, dict]:
    """Species tables, 0-based species per atom and per-element shell orders for ``hs``."""
    meta = hs.metadata or {}
    symbols = hs.atoms.get_chemical_symbols()
    species, isa = meta.get("siesta_species"), meta.get("siesta_isa")
    if species and isa is not None and len(isa) == len(symbols):
        orders, ok = {}, True
        for a, k in enumerate(isa):
            try:
                shells, order = shells_from_nlz(species[k]["nlz"])
            except (ValueError, IndexError, KeyError):
                ok = False
                break
            ok &= shells == hs.basis[symbols[a]] and orders.setdefault(symbols[a], order) == order
        if ok:
            return species, np.asarray(isa), orders
    elements = list(dict.fromkeys(symbols))
    zval = meta.get("zval") or {}
    species = []
    for el in elements:
        rows, count = [], {}
        for l_val in hs.basis[el]:
            count[l_val] = count.get(l_val, 0) + 1
            rows += [[l_val + 1, l_val, count[l_val]]] * (2 * l_val + 1)
        species.append({"label": el, "nlz": rows, "zval": zval.get(el, 0.0)})
    isa = np.array([elements.index(s) for s in symbols])
    return species, isa, {el: list(range(len(hs.basis[el]))) for el in elements}


def _elements(hs: HSData, nspin: int):
    """Orbital-level (row, col, R, components [nspin, nnz] in Ry, S) in SIESTA storage."""
    bp, norbs, off = hs.block_ptr, hs.norbs, hs.orbital_offsets
    ei, ej = hs.edge_index
    e = np.repeat(np.arange(hs.n_edges), np.diff(bp))  # [n_values] edge of each value
    local = np.arange(hs.n_values) - bp[e]
    ni, nj = norbs[ei][e], norbs[ej][e]
    a, b = local // nj, local % nj
    row, col, shift = off[ei][e] + a, off[ej][e] + b, hs.cell_shift[e]
    s = hs.s if hs.s is not None else np.zeros(hs.n_values)
    if hs.h is None:
        raise ValueError("HSData without H cannot be written as HSX")
    if hs.spin != "spinor":
        return row, col, shift, hs.h / Ry, s
    h = hs.h[0] / Ry
    uu, ud, du, dd = (h[4 * bp[e] + (sa * ni + a) * 2 * nj + sb * nj + b]
                      for sa, sb in ((0, 0), (0, 1), (1, 0), (1, 1)))
    if nspin == 4:
        if max(np.abs(du - ud.conj()).max(initial=0), np.abs(uu.imag).max(initial=0),
               np.abs(dd.imag).max(initial=0)) > 1e-12:
            raise ValueError("spinor H with spin-orbit terms needs nspin = 8")
        return row, col, shift, np.stack([uu.real, dd.real, ud.real, -ud.imag]), s
    comps = np.stack([uu.real, dd.real, ud.real, -ud.imag, uu.imag, dd.imag, du.real, du.imag])
    return col, row, -shift, comps, s  # stored (i, j, R) holds element H_ji(-R)


def _supercell(shift: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """nsc, isc_off (n_s, 3) and the image index of every shift (sisl's order)."""
    nsc = 2 * np.abs(shift).max(0, initial=0) + 1
    isc_off = default_isc_off(nsc)
    m = shift % nsc
    return nsc, isc_off, m[:, 0] + nsc[0] * (m[:, 1] + nsc[1] * m[:, 2])


def write(hs: HSData, path: str | os.PathLike, version: int = 1, nspin: int | None = None,
          kgrid: tuple | None = None) -> Path:
    """Write ``hs`` as a SIESTA HSX file, atomically (``*.gz`` names are gzipped).

    Parameters
    ----------
    hs : HSData
        Data in the internal convention (eV, Angstrom).
    path : str or os.PathLike
        Output file; ``.HSX`` is appended when the name lacks it (:func:`hsx_path`), so
        that :func:`interfaces.read` recognises the file.
    version : {1, 2, 0}
        1: double precision (default, read by sisl); 2: adds the k-grid record;
        0: SIESTA 4.1 layout, single precision with xij (for tests of the v0 reader).
    nspin : int, optional
        For spinor H: 8 (spin-orbit; default unless the data came from an nspin 4 file) or
        4 (non-collinear, needs real uu, dd and ``du = conj(ud)``). Ignored otherwise.
    kgrid : tuple, optional
        ``(kcell (3, 3) int, kdispl (3,))`` for version 2; zeros by default.

    Returns
    -------
    Path
        The file written.
    """
    if version not in (0, 1, 2):
        raise ValueError(f"HSX version must be 0, 1 or 2, got {version}")
    species, isa, orders = _species(hs)
    sh = orbitals.from_internal(hs, "siesta", orders)
    default = 4 if (hs.metadata or {}).get("siesta_nspin") == 4 else 8
    nspin = {"none": 1, "collinear": 2}.get(hs.spin, nspin or default)
    if nspin not in (1, 2, 4, 8):
        raise ValueError(f"nspin must be 4 or 8 for spinor H, got {nspin}")
    row, col, shift, comps, s = _elements(sh, nspin)
    nsc, isc_off, image = _supercell(shift)
    no_u = hs.n_orbitals
    scol = image * no_u + col
    order = np.lexsort((scol, row))
    row, scol, shift, comps, s = row[order], scol[order], shift[order], comps[:, order], s[order]
    numh = np.bincount(row, minlength=no_u).astype("<i4")
    w = RecordWriter()
    dims = dict(hs=hs, species=species, isa=isa, nsc=nsc, isc_off=isc_off, numh=numh)
    if version == 0:
        _write_v0(w, dims, scol, shift, row, comps, s)
    else:
        _write_v12(w, version, dims, scol, comps, s, kgrid)
    data = w.tobytes()
    path = hsx_path(path)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)
    return path


def _species_record(species: list[dict]) -> bytes:
    spec_t = np.dtype([("label", "S20"), ("zval", "<f8"), ("no", "<i4")])
    rec = np.zeros(len(species), dtype=spec_t)
    rec["label"] = [sp["label"].ljust(20)[:20].encode() for sp in species]
    rec["zval"] = [sp.get("zval") or 0.0 for sp in species]
    rec["no"] = [len(sp["nlz"]) for sp in species]
    return rec.tobytes()


def _header_values(hs: HSData) -> tuple[float, float, float]:
    """E_F (Ry), electron count and temperature (Ry); unknown values stay NaN.

    NaN (not 0) keeps an unknown E_F or electron count unknown on reading back: a 0
    would put E_F at 0 eV, or the Fermi level at the band bottom (issue 17).
    """
    ef = hs.fermi_level / Ry
    qtot = float(hs.n_electrons)
    temp = (hs.metadata or {}).get("temperature_ev") or 0.0
    return ef, qtot, temp / Ry


def _write_v12(w: RecordWriter, version, d, scol, comps, s, kgrid) -> None:
    hs, numh = d["hs"], d["numh"]
    ef, qtot, temp = _header_values(hs)
    w.record(np.array([version], "<i4"))
    w.record(np.array([1], "<i4"))  # is_dp
    w.record(np.array([hs.n_atoms, hs.n_orbitals, len(comps), len(d["species"]), *d["nsc"]],
                      "<i4"))
    w.record(np.asarray(hs.atoms.cell, "<f8") / Bohr, np.array([ef, qtot, temp], "<f8"))
    w.record(d["isc_off"].astype("<i4"), (hs.atoms.positions / Bohr).astype("<f8"),
             (d["isa"] + 1).astype("<i4"), hs.orbital_offsets[1:].astype("<i4"))
    w.record(_species_record(d["species"]))
    for sp in d["species"]:
        w.record(np.asarray(sp["nlz"], "<i4"))
    if version == 2:
        kcell, kdispl = kgrid if kgrid is not None else (np.zeros((3, 3)), np.zeros(3))
        w.record(np.asarray(kcell, "<i4"), np.asarray(kdispl, "<f8"))
    w.record(numh)
    w.rows((scol + 1).astype("<i4"), numh)
    w.rows(comps.astype("<f8"), np.tile(numh, len(comps)))
    w.rows(s.astype("<f8"), numh)


def _write_v0(w: RecordWriter, d, scol, shift, row, comps, s) -> None:
    hs, numh = d["hs"], d["numh"]
    no_u, n_s = hs.n_orbitals, len(d["isc_off"])
    gamma = n_s == 1
    w.record(np.array([no_u, no_u * n_s, len(comps), len(scol)], "<i4"))
    w.record(np.array([int(gamma)], "<i4"))
    if not gamma:
        w.record(np.tile(np.arange(1, no_u + 1), n_s).astype("<i4"))
    w.record(numh)
    w.rows((scol + 1).astype("<i4"), numh)
    w.rows(comps.astype("<f4"), np.tile(numh, len(comps)))
    w.rows(s.astype("<f4"), numh)
    _, qtot, temp = _header_values(hs)
    w.record(np.array([qtot, temp], "<f8"))
    orb_atom = np.repeat(np.arange(hs.n_atoms), hs.norbs)
    if not gamma:
        pos = hs.atoms.positions / Bohr
        xij = shift @ (np.asarray(hs.atoms.cell) / Bohr) + pos[orb_atom[scol % no_u]] \
            - pos[orb_atom[row]]
        w.rows(xij.astype("<f4"), numh, width=3)
    w.record(np.array([len(d["species"])], "<i4"))
    w.record(_species_record(d["species"]))
    nlz = np.concatenate([np.asarray(sp["nlz"]).reshape(-1, 3) for sp in d["species"]])
    w.rows(nlz.astype("<i4"), np.ones(len(nlz), np.int64), width=3)
    w.record(np.array([hs.n_atoms], "<i4"))
    w.record((d["isa"] + 1).astype("<i4"))
    iph = np.arange(no_u) - hs.orbital_offsets[orb_atom]
    w.record(np.stack([orb_atom + 1, iph + 1], 1).astype("<i4"))
