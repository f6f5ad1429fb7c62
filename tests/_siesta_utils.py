"""Test-only helpers for the SIESTA interface tests: dense Bloch sums and eigenvalues."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from interfaces.hsdata import HSData


def bloch(hs: HSData, k_frac, which: str = "h", channel: int = 0) -> np.ndarray:
    """Dense X(k) = sum_R X(R) exp(+i 2 pi k.R); spinor H is spin-major (2N, 2N)."""
    spinor = which == "h" and hs.spin == "spinor"
    f = 2 if spinor else 1
    n = hs.n_orbitals
    off = hs.orbital_offsets
    values = hs.s if which == "s" else hs.h[channel]
    out = np.zeros((f * n, f * n), dtype=np.complex128)
    phase = np.exp(2j * np.pi * hs.cell_shift @ np.asarray(k_frac, dtype=float))
    for g in hs.shape_groups():
        blocks = values[hs.block_index(g, spinor)] * phase[g][:, None, None]
        i, j = hs.edge_index[:, g]
        ni, nj = blocks.shape[1] // f, blocks.shape[2] // f
        for sa in range(f):
            for sb in range(f):
                rows = sa * n + off[i][:, None, None] + np.arange(ni)[None, :, None]
                cols = sb * n + off[j][:, None, None] + np.arange(nj)[None, None, :]
                sub = blocks[:, sa * ni:(sa + 1) * ni, sb * nj:(sb + 1) * nj]
                np.add.at(out, (np.broadcast_to(rows, sub.shape), np.broadcast_to(cols, sub.shape)),
                          sub)
    return out


def eigvals(hs: HSData, k_frac, channel: int = 0) -> np.ndarray:
    """Generalised eigenvalues of H(k), S(k) (eV); S is doubled for spinor H."""
    h = bloch(hs, k_frac, "h", channel)
    s = bloch(hs, k_frac, "s")
    if hs.spin == "spinor":
        s = np.kron(np.eye(2), s)
    return scipy.linalg.eigh(h, s, eigvals_only=True)


def write_tshs_v0(hs: HSData, path) -> None:
    """Test-only writer of the old (SIESTA <= 4.0) TSHS layout, record by record."""
    from ase.units import Bohr, Ry

    from interfaces import orbitals
    from interfaces._fortran import RecordWriter
    from interfaces.siesta.writer import _elements, _species, _supercell

    _, _, orders = _species(hs)
    sh = orbitals.from_internal(hs, "siesta", orders)
    nspin = {"none": 1, "collinear": 2}.get(hs.spin, 8)
    row, col, shift, comps, s = _elements(sh, nspin)
    _, isc_off, image = _supercell(shift)
    no_u, n_s = hs.n_orbitals, len(isc_off)
    scol = image * no_u + col
    order = np.lexsort((scol, row))
    row, scol, shift, comps, s = row[order], scol[order], shift[order], comps[:, order], s[order]
    numh = np.bincount(row, minlength=no_u).astype("<i4")
    gamma = n_s == 1
    w = RecordWriter()
    w.record(np.array([hs.n_atoms, no_u, no_u * n_s, nspin, len(row)], "<i4"))
    w.record((hs.atoms.positions / Bohr).astype("<f8"))
    w.record(hs.atoms.numbers.astype("<i4"))
    w.record((np.asarray(hs.atoms.cell) / Bohr).astype("<f8"))
    for flag in (gamma, False, gamma):  # Gamma, onlyS, TSGamma
        w.record(np.array([int(flag)], "<i4"))
    w.record(np.eye(3, dtype="<i4"))
    w.record(np.zeros(3, "<f8"))
    w.record(np.zeros(2, "<i4"))
    w.record(hs.orbital_offsets.astype("<i4"))
    if not gamma:
        w.record(np.tile(np.arange(1, no_u + 1), n_s).astype("<i4"))
    w.record(numh)
    w.record(np.array([hs.n_electrons, 0.0], "<f8"))
    w.record(np.array([hs.fermi_level / Ry], "<f8"))
    w.rows((scol + 1).astype("<i4"), numh)
    w.rows(s.astype("<f8"), numh)
    w.rows(comps.astype("<f8"), np.tile(numh, nspin))
    if not gamma:
        orb_atom = np.repeat(np.arange(hs.n_atoms), hs.norbs)
        pos = hs.atoms.positions / Bohr
        xij = shift @ (np.asarray(hs.atoms.cell) / Bohr) + pos[orb_atom[scol % no_u]] \
            - pos[orb_atom[row]]
        w.rows(xij.astype("<f8"), numh, width=3)
    with open(path, "wb") as fh:
        fh.write(w.tobytes())
