"""Block-level helpers shared by the OpenMX, DeepH and DeePTB interfaces (private).

Everything here works on :class:`~interfaces.hsdata.HSData` flat value arrays
(``values[block_ptr[e]:block_ptr[e+1]]`` is block e in C order, spinor blocks at
``4 * block_ptr[e]``) and loops at most over element-pair shape groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms

from interfaces.errors import FormatError
from interfaces.hsdata import HSData

__all__ = [
    "ranges", "split_spinor", "compose_spinor", "loadtxt", "write_keyed_blocks",
    "spinful_to_kind", "complete_pairs",
    "blocks_to_hsdata", "basis_from_atoms",
]


def ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenate ``arange(s, s + n)`` for every (start, size) pair, vectorised."""
    starts = np.asarray(starts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    return np.repeat(starts - offsets, sizes) + np.arange(total, dtype=np.int64)


def split_spinor(hs: HSData, values: np.ndarray) -> np.ndarray:
    """Split a spinor flat array (4 n_values,) into (uu, ud, du, dd), shape (4, n_values)."""
    return hs.spinor_parts(values)


def compose_spinor(hs: HSData, parts: np.ndarray) -> np.ndarray:
    """Inverse of :func:`split_spinor`: (4, n_values) parts -> (4 n_values,) spinor array."""
    return hs.spinor_from_parts(parts)


def loadtxt(path: Path, **kw) -> np.ndarray:
    """``np.loadtxt`` raising :class:`FormatError` for a missing or malformed file."""
    if not path.is_file():
        raise FormatError(path, "missing file")
    try:
        return np.loadtxt(path, **kw)
    except ValueError as exc:
        raise FormatError(path, f"malformed numbers: {exc}") from exc


def spinful_to_kind(hs: HSData) -> HSData:
    """Return spinor data as ``"collinear"`` when it is exactly block-diagonal and real.

    Spinful files (DeepH, DeePTB) also carry collinear runs, stored block-diagonal.
    The rule is exact (no tolerance): spin-flip blocks identically zero and the
    up/down blocks without imaginary part. ``with_spin("spinor")`` restores the
    original spinor array bit for bit, so nothing is lost either way.
    """
    if hs.spin != "spinor" or hs.h is None:
        return hs
    uu, ud, du, dd = split_spinor(hs, hs.h[0])
    if np.any(ud != 0) or np.any(du != 0) or np.any(uu.imag != 0) or np.any(dd.imag != 0):
        return hs
    return hs.replace(h=np.stack([uu.real, dd.real]), spin="collinear")


def complete_pairs(hs: HSData) -> HSData:
    """Add the missing Hermitian partners (j, i, -R) of stored blocks as X_ij(R)^dagger."""
    missing = hs.reverse_edges < 0
    if not np.any(missing):
        return hs
    sub = hs.select_edges(missing)
    spinor = hs.spin == "spinor"
    new_edges, new_shift = [], []
    new_h = [[] for _ in range(0 if hs.h is None else hs.h.shape[0])]
    new_s = []
    for g in sub.shape_groups():
        new_edges.append(sub.edge_index[::-1, g])
        new_shift.append(-sub.cell_shift[g])
        for c, vals in enumerate([] if hs.h is None else sub.h):
            new_h[c].append(np.conj(vals[sub.block_index(g, spinor)].transpose(0, 2, 1)).ravel())
        if hs.s is not None:
            new_s.append(sub.s[sub.block_index(g)].transpose(0, 2, 1).ravel())
    h = None if hs.h is None else np.stack(
        [np.concatenate([hs.h[c], *new_h[c]]) for c in range(hs.h.shape[0])]
    )
    s = None if hs.s is None else np.concatenate([hs.s, *new_s])
    return hs.replace(
        edge_index=np.concatenate([hs.edge_index, *new_edges], axis=1),
        cell_shift=np.concatenate([hs.cell_shift, *new_shift]), h=h, s=s,
    )


def basis_from_atoms(path, symbols: list[str], per_atom: list[tuple[int, ...]]) -> dict:
    """Collapse per-atom shell lists to per-element ones (FormatError if they disagree)."""
    basis: dict[str, tuple[int, ...]] = {}
    for sym, shells in zip(symbols, per_atom, strict=True):
        if basis.setdefault(sym, tuple(shells)) != tuple(shells):
            raise FormatError(path, f"atoms of element {sym} have different orbital types")
    return basis


def _gather(path, keys: list, norbs: np.ndarray, blocks: dict, factor: int, what: str,
            complex_ok: bool) -> np.ndarray:
    """Concatenate the blocks of ``keys`` (zeros where absent), checking every shape."""
    out = []
    for key in keys:
        want = (factor * int(norbs[key[0]]), factor * int(norbs[key[1]]))
        blk = blocks.get(key)
        blk = np.zeros(want) if blk is None else np.asarray(blk)
        if blk.shape != want:
            raise FormatError(path, f"{what} block (i, j, R) = {key} (0-based) has shape "
                                    f"{blk.shape}, the orbital counts need {want}")
        out.append(blk.ravel())
    values = np.concatenate(out)
    if np.iscomplexobj(values) and not complex_ok:
        if np.any(values.imag != 0):
            raise FormatError(path, f"{what} has complex values where real ones are expected")
        values = values.real
    return values.astype(np.complex128 if complex_ok else np.float64)


def blocks_to_hsdata(
    path, atoms: Atoms, basis: dict, h_blocks: dict | None, s_blocks: dict | None,
    spinful: bool, **fields,
) -> HSData:
    """Build HSData from per-block dictionaries keyed by ``(i, j, R1, R2, R3)`` (0-based).

    The key set is the union of both dictionaries; a block absent from one file
    is zero there. Shapes are checked against the basis: (n_i, n_j) for S and
    spinless H, (2 n_i, 2 n_j) complex for spinful H. Raises FormatError on
    mismatch. Blocks are kept in the code's orbital order (convert afterwards).
    """
    keys = sorted(set(h_blocks or {}) | set(s_blocks or {}))
    if not keys:
        raise FormatError(path, "no matrix blocks found")
    karr = np.array(keys, dtype=np.int64).reshape(-1, 5)
    if karr[:, :2].min() < 0 or karr[:, :2].max() >= len(atoms):
        raise FormatError(path, f"block keys refer to atoms outside the {len(atoms)} atoms")
    if np.abs(karr[:, 2:]).max() >= 512:
        raise FormatError(path, "a block key has |R| >= 512")
    per_el = {el: sum(2 * lv + 1 for lv in ls) for el, ls in basis.items()}
    norbs = np.array([per_el[s] for s in atoms.get_chemical_symbols()])
    h = None if h_blocks is None else _gather(
        path, keys, norbs, h_blocks, 2 if spinful else 1, "H", spinful)[None]
    s = None if s_blocks is None else _gather(path, keys, norbs, s_blocks, 1, "S", False)
    try:
        return HSData(
            atoms=atoms, basis=basis, edge_index=karr[:, :2].T, cell_shift=karr[:, 2:], h=h,
            s=s, spin="spinor" if spinful else "none", **fields,
        )
    except ValueError as exc:
        raise FormatError(path, str(exc)) from exc


def write_keyed_blocks(group, hs: HSData, keys: list[str], values: np.ndarray,
                       spinor: bool) -> None:
    """Write one HDF5 dataset per block (the DeepH legacy / DeePTB layout).

    ``keys[e]`` names block e; each dataset is the C-order (n_i, n_j) block (spinor:
    (2 n_i, 2 n_j)) taken from the flat ``values``.
    """
    f = 2 if spinor else 1
    ptr = hs.block_ptr * f * f
    ni = hs.norbs[hs.edge_index[0]] * f
    nj = hs.norbs[hs.edge_index[1]] * f
    for e, key in enumerate(keys):
        group[key] = values[ptr[e]:ptr[e + 1]].reshape(ni[e], nj[e])
