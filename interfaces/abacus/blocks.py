"""Vectorised conversion between ABACUS CSR element lists and :class:`HSData` blocks.

Both directions work in ABACUS orbital order (the caller applies
:mod:`interfaces.orbitals`) and never loop in Python per matrix element: the CSR elements
are scattered into (and gathered from) the flat block arrays with index arithmetic.
nspin = 4 files index a row as ``2 * orbital + sigma``; blocks are stored spin-major
(``[[uu, ud], [du, dd]]``), i.e. the (n, 2, m, 2) -> (2, n, 2, m) reshape of
``docs/formats.md`` 3.4 is done element-wise.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.units import Ry

from interfaces.abacus.csr import CsrMatrix, format_csr
from interfaces.abacus.text import species_order
from interfaces.errors import FormatError
from interfaces.hsdata import HSData

__all__ = ["assemble", "csr_texts"]


def _keys(lay, shift, orb_r, orb_c, rmax: int):
    """Atoms i, j and int64 keys of (i, j, R) and of the partner (j, i, -R) per element."""
    base = 2 * rmax + 1
    b3 = base**3
    r = shift + rmax
    code = (r[:, 0] * base + r[:, 1]) * base + r[:, 2]
    i, j = lay.atom_of[orb_r], lay.atom_of[orb_c]
    return i, j, (i * lay.n_atoms + j) * b3 + code, (j * lay.n_atoms + i) * b3 + (b3 - 1 - code)


class _Layout:
    """Orbital bookkeeping of one structure and basis."""

    def __init__(self, atoms: Atoms, shells: dict):
        per_el = {el: sum(2 * l_val + 1 for l_val in ls) for el, ls in shells.items()}
        self.norbs = np.array([per_el[s] for s in atoms.get_chemical_symbols()], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.norbs)])
        self.n_orb = int(self.offsets[-1])
        self.atom_of = np.repeat(np.arange(len(atoms)), self.norbs)
        self.n_atoms = len(atoms)


def _check_dims(lay: _Layout, h_paths, h_mats, s_path, s_mat, spinor: bool) -> None:
    want = lay.n_orb * (2 if spinor else 1)
    for p, m in zip(h_paths, h_mats, strict=False):
        if m.dim != want:
            raise FormatError(p, f"matrix dimension {m.dim} but the structure and orbital "
                                 f"files give {want} ({lay.n_orb} orbitals"
                                 f"{', x2 for nspin 4' if spinor else ''})")
        if spinor != np.iscomplexobj(m.val):
            raise FormatError(p, "mixed real and complex H(R) files")
    if s_mat is not None and s_mat.dim not in (lay.n_orb, 2 * lay.n_orb):
        raise FormatError(s_path, f"S(R) dimension {s_mat.dim} but the structure and orbital "
                                  f"files give {lay.n_orb} orbitals")
    if len(h_mats) == 2 and spinor:
        raise FormatError(h_paths[1], "two H(R) files but complex (nspin 4) values")


def _spinless(m: CsrMatrix, n_orb: int):
    """(shift, row, col, real val) of S; the up-up part of a 2N nspin-4 file."""
    if m.dim == n_orb:
        return m.shift, m.row, m.col, m.val.real
    keep = (m.row % 2 == 0) & (m.col % 2 == 0)
    return m.shift[keep], m.row[keep] // 2, m.col[keep] // 2, m.val[keep].real


def assemble(atoms: Atoms, shells: dict, h_paths, h_mats, s_path, s_mat,
             spinor: bool) -> tuple[HSData, int]:
    """Build HSData (ABACUS order, eV) from parsed CSR files; returns it and the fill count."""
    lay = _Layout(atoms, shells)
    _check_dims(lay, h_paths, h_mats, s_path, s_mat, spinor)
    parts = [(p, m.shift, m.row, m.col, m.val * Ry, spinor)
             for p, m in zip(h_paths, h_mats, strict=True)]
    if s_mat is not None:
        parts.append((s_path, *_spinless(s_mat, lay.n_orb), False))
    rmax = max([int(np.abs(p[1]).max(initial=0)) for p in parts] + [0])
    if rmax >= 512:
        raise FormatError(h_paths[0] if h_paths else s_path, f"lattice vector component {rmax} "
                          "out of range (|R| < 512 supported)")
    keys = []
    for _, shift, row, col, _, spin_rows in parts:
        g = 2 if spin_rows else 1
        keys.append(_keys(lay, shift, row // g, col // g, rmax))
    edge_keys = np.unique(np.concatenate([k[2] for k in keys] + [k[3] for k in keys]))
    base = 2 * rmax + 1
    pair, rest = np.divmod(edge_keys, base**3)
    shift = np.stack([rest // base**2, (rest // base) % base, rest % base], axis=1) - rmax
    edge_index = np.stack(np.divmod(pair, lay.n_atoms))
    try:
        hs = HSData(atoms=atoms, basis=shells, edge_index=edge_index, cell_shift=shift)
    except ValueError as exc:
        raise FormatError(h_paths[0] if h_paths else s_path, str(exc)) from exc
    out = [_scatter(hs, lay, edge_keys, part, k) for part, k in zip(parts, keys, strict=True)]
    n_filled = sum(nf for _, nf in out)
    h = np.stack([v for v, _ in out[:len(h_mats)]]) if h_mats else None
    s = out[-1][0] if s_mat is not None else None
    spin = "spinor" if spinor else ("collinear" if len(h_mats) == 2 else "none")
    return hs.replace(h=h, s=s, spin=spin), n_filled


def _scatter(hs: HSData, lay: _Layout, edge_keys, part, keys):
    """Place elements into a flat value array; fill absent Hermitian partners with conj."""
    path, _, row, col, val, spinor = part
    i, j, key, key_rev = keys
    f = 2 if spinor else 1
    a, b = row // f - lay.offsets[i], col // f - lay.offsets[j]
    ni, nj = lay.norbs[i], lay.norbs[j]
    e = np.searchsorted(edge_keys, key)
    e_rev = np.searchsorted(edge_keys, key_rev)
    ptr = hs.block_ptr
    if spinor:
        sr, sc = row % 2, col % 2
        flat = 4 * ptr[e] + (sr * ni + a) * (2 * nj) + sc * nj + b
        mirror = 4 * ptr[e_rev] + (sc * nj + b) * (2 * ni) + sr * ni + a
        out = np.zeros(4 * hs.n_values, dtype=np.complex128)
    else:
        flat = ptr[e] + a * nj + b
        mirror = ptr[e_rev] + b * ni + a
        out = np.zeros(hs.n_values, dtype=val.dtype)
    present = np.zeros(out.shape, dtype=bool)
    present[flat] = True
    if int(present.sum()) != len(flat):
        raise FormatError(path, "an element is stored twice in one CSR file")
    out[flat] = val
    need = ~present[mirror]
    out[mirror[need]] = np.conj(val[need])
    return out, int(need.sum())


# ----------------------------------------------------------------------- writing
def _live_edges(hs: HSData) -> np.ndarray:
    """Blocks with a non-zero value in some H channel or in S, shape (n_edges,)."""
    live = np.zeros(hs.n_edges, dtype=bool)
    if not hs.n_edges:
        return live
    arrays = [(c, hs.spin == "spinor") for c in (hs.h if hs.h is not None else [])]
    arrays += [(hs.s, False)] if hs.s is not None else []
    for values, spinor in arrays:
        starts = (4 if spinor else 1) * hs.block_ptr[:-1]
        live |= np.logical_or.reduceat(values != 0, starts)
    return live


def _coo(hs: HSData, values: np.ndarray, spinor: bool, keep_zeros: np.ndarray):
    """(shift, row, col, val) of the non-zero elements (ABACUS row = 2 * orbital + sigma).

    Zeros are kept in the blocks flagged by ``keep_zeros`` (n_edges,).
    """
    f = 2 if spinor else 1
    i, j = hs.edge_index
    ni, nj = hs.norbs[i], hs.norbs[j]
    sizes = f * f * ni * nj
    e = np.repeat(np.arange(hs.n_edges), sizes)
    q = np.arange(len(values)) - (f * f * hs.block_ptr[:-1])[e]
    r, c = np.divmod(q, f * nj[e])
    off = hs.orbital_offsets
    if spinor:
        sr, a = np.divmod(r, ni[e])
        sc, b = np.divmod(c, nj[e])
        row, col = 2 * (off[i][e] + a) + sr, 2 * (off[j][e] + b) + sc
    else:
        row, col = off[i][e] + r, off[j][e] + c
    m = (values != 0) | keep_zeros[e]
    return hs.cell_shift[e][m], row[m], col[m], values[m]


def _spinor_s(shift, row, col, val):
    """Spin-diagonal 2N complex S in ABACUS nspin-4 interleaving."""
    return (np.concatenate([shift, shift]), np.concatenate([2 * row, 2 * row + 1]),
            np.concatenate([2 * col, 2 * col + 1]), np.concatenate([val, val]).astype(complex))


def _blocks(coo, shifts: np.ndarray, dim: int) -> list:
    """Split a COO list into per-R CSR triples in the order of ``shifts``."""
    shift, row, col, val = coo
    pos = np.searchsorted(_lex(shifts), _lex(shift))  # R index of each element
    order = np.argsort((pos * dim + row) * dim + col)
    pos, row, col, val = pos[order], row[order], col[order], val[order]
    bounds = np.searchsorted(pos, np.arange(len(shifts) + 1))
    out = []
    for k in range(len(shifts)):
        sl = slice(bounds[k], bounds[k + 1])
        ptr = np.concatenate([[0], np.cumsum(np.bincount(row[sl], minlength=dim))])
        out.append((val[sl], col[sl], ptr))
    return out


def _lex(shift: np.ndarray) -> np.ndarray:
    r = shift.astype(np.int64) + 1024
    return (r[:, 0] * 4096 + r[:, 1]) * 4096 + r[:, 2]


def _structure_text(atoms: Atoms) -> str:
    order = species_order(atoms)
    syms = atoms.get_chemical_symbols()
    lines = [" user_defined_lattice", " 1.0"]
    lines += [" " + " ".join(f"{x:.16f}" for x in v) for v in np.asarray(atoms.cell)]
    lines += [" " + " ".join(order), " " + " ".join(str(syms.count(el)) for el in order),
              " Direct"]
    lines += [" " + " ".join(f"{x:.16f}" for x in p)
              for p in atoms.get_scaled_positions(wrap=False)]
    return "\n".join(lines)


def csr_texts(hs: HSData, layout: str) -> dict[str, str]:
    """CSR file texts of ``hs`` (ABACUS orbital order, atoms grouped by species).

    Zero elements are dropped, as ABACUS does, except in blocks that are zero in every
    matrix: those are written as explicit zeros in the first file so that the edge set
    survives a round trip.
    """
    spinor = hs.spin == "spinor"
    dim = hs.n_orbitals * (2 if spinor else 1)
    shifts = np.unique(hs.cell_shift, axis=0) if hs.n_edges else np.zeros((0, 3), np.int64)
    struct = _structure_text(hs.atoms) if layout == "new" else ""
    new = layout == "new"
    out: dict[str, str] = {}
    dead = ~_live_edges(hs)  # all-zero blocks: explicit zeros in the first file only
    no_zeros = np.zeros(hs.n_edges, dtype=bool)
    if hs.h is not None:
        for ch, vals in enumerate(hs.h):
            coo = _coo(hs, vals / Ry, spinor, dead if ch == 0 else no_zeros)
            name = (f"hrs{ch + 1}_nao.csr" if new else f"data-HR-sparse_SPIN{ch}.csr")
            out[name] = format_csr(dim, shifts, _blocks(coo, shifts, dim), layout, "H", ch + 1,
                                   struct)
    if hs.s is not None:
        coo = _coo(hs, hs.s, False, dead if hs.h is None else no_zeros)
        if spinor:
            coo = _spinor_s(*coo)
        name = "srs1_nao.csr" if new else "data-SR-sparse_SPIN0.csr"
        out[name] = format_csr(dim, shifts, _blocks(coo, shifts, dim), layout, "S", 1, struct)
    return out
