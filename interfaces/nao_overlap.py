"""Overlap S(R) and orbital-gradient blocks of a structure from numerical radial basis files.

``overlap(atoms, basis)`` returns an :class:`~interfaces.hsdata.HSData` holding S only, in
the internal orbital convention (shells sorted by l, m = -l..l Wikipedia harmonics), with
one block for every atom pair closer than the sum of the two atoms' largest orbital
cutoffs (both (i, j, R) and (j, i, -R), on-site blocks included). Writers export it to a
code's convention with :func:`interfaces.orbitals.from_internal` (pass
``hs.metadata["overlap"]["shell_orders"]`` for SIESTA's file shell order).

``overlap_gradient(atoms, basis)`` returns :class:`OverlapGradient`:
``D^a_{mu nu} = <d phi_mu / d tau_i^a | phi_nu>`` for block (i, j, R), where only the
centre tau_i of the bra orbital moves (``epc.md`` section 2.4). Off-site it equals
``-dS_ij(R)/dd`` with d = tau_j + R.A - tau_i; on-site it is the antisymmetric block
between shells l and l +- 1. Hence ``dS_e/dtau_i = D_e`` and
``dS_e/dtau_j = D_{rev(e)}^T`` for i != j.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.spatial import cKDTree

from .hsdata import HSData
from .nao import RadialBasis, read_basis
from .twocenter import TwoCenterSettings, TwoCenterTables

__all__ = ["overlap", "overlap_gradient", "OverlapGradient", "load_bases", "overlap_edges"]

_CHUNK = 20000  # edges per vectorised batch (bounds temporary memory)


@dataclass(frozen=True, eq=False)
class OverlapGradient:
    """Orbital-gradient blocks aligned with the block layout of an overlap HSData.

    Parameters
    ----------
    overlap : HSData
        S(R) of the structure; its ``edge_index``, ``cell_shift`` and ``block_ptr``
        define the layout of ``values``.
    values : ndarray, shape (3, n_values)
        ``D^a`` (a = x, y, z), Angstrom^-1: block e = (i, j, R) of component a is
        ``values[a, block_ptr[e]:block_ptr[e+1]]`` reshaped C-order to (n_i, n_j) and
        equals ``<d phi_{i mu} / d tau_i^a | phi_{j nu}, R>``.
    """

    overlap: HSData
    values: np.ndarray

    def block(self, i: int, j: int, shift=(0, 0, 0)) -> np.ndarray:
        """Return D of block (i, j, R), shape (3, n_i, n_j) (KeyError if absent)."""
        hs = self.overlap
        e = int(hs.find_edges([i], [j], np.array(shift).reshape(1, 3))[0])
        if e < 0:
            raise KeyError(f"no block (i={i}, j={j}, R={tuple(shift)})")
        return self.values[:, hs.block_index([e])[0]]


def load_bases(basis) -> dict[str, RadialBasis]:
    """Normalise ``basis`` to ``{element symbol: RadialBasis}``.

    Accepts a RadialBasis or a file path, a sequence of them, or a mapping from element
    symbol to RadialBasis or path.
    """
    if isinstance(basis, (RadialBasis, str, os.PathLike)):
        basis = [basis]
    if isinstance(basis, Mapping):
        items = [(str(k), v) for k, v in basis.items()]
    else:
        items = [(None, v) for v in basis]
    out = {}
    for key, value in items:
        b = value if isinstance(value, RadialBasis) else read_basis(value)
        out[key or b.symbol] = b
    return out


def _frame(atoms: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Cell whose non-periodic rows are replaced by an orthonormal complement, and pbc."""
    cell = np.array(atoms.cell, dtype=np.float64)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if not pbc.all():
        per = cell[pbc]
        cell[~pbc] = np.linalg.svd(per)[2][len(per):] if len(per) else np.eye(3)
    if abs(np.linalg.det(cell)) < 1e-12:
        raise ValueError("the periodic cell vectors are zero or linearly dependent")
    return cell, pbc


def _pairs(atoms: Atoms, radii: np.ndarray):
    """Directed pairs (i, j, R), i != j or R != 0, with |d| < radii[i] + radii[j] (k-d tree)."""
    r_max = 2 * radii.max()
    cell, pbc = _frame(atoms)
    frac = atoms.positions @ np.linalg.inv(cell)
    wrap = np.where(pbc, np.floor(frac), 0).astype(np.int64)  # atoms moved into the cell
    pos = atoms.positions - wrap @ cell
    margin = np.where(pbc, r_max * np.linalg.norm(np.linalg.inv(cell), axis=0), 0.0)
    n_img = np.ceil(margin).astype(np.int64)
    shifts = np.stack(np.meshgrid(*[np.arange(-n, n + 1) for n in n_img], indexing="ij"),
                      axis=-1).reshape(-1, 3)  # [n_shift, 3]
    img = (frac - wrap)[None] + shifts[:, None]  # [n_shift, n_atoms, 3]
    bound = np.where(pbc, margin, np.inf)
    s_idx, a_idx = np.nonzero(np.all((img > -bound) & (img < 1 + bound), axis=2))
    found = cKDTree(pos).sparse_distance_matrix(
        cKDTree(pos[a_idx] + shifts[s_idx] @ cell), r_max, output_type="ndarray")
    i, k = found["i"].astype(np.int64), found["j"].astype(np.int64)
    j, shift = a_idx[k], shifts[s_idx[k]]
    ok = (found["v"] < radii[i] + radii[j]) & ((i != j) | np.any(shift != 0, axis=1))
    i, j = i[ok], j[ok]
    return i, j, shift[ok] - wrap[j] + wrap[i]


def overlap_edges(atoms: Atoms, cutoffs: dict[str, float], r_cut: float | None = None):
    """Atom pairs (i, j, R) with |d| < rc_i + rc_j (or < ``r_cut``), on-site included.

    ``cutoffs`` maps element symbols to orbital cutoff radii (Angstrom). Returns
    ``edge_index`` (2, E) int64 and ``cell_shift`` (E, 3) int64, sorted by element pair,
    then i, j, R.
    """
    n = len(atoms)
    if r_cut is not None:
        radii = np.full(n, 0.5 * r_cut)
    else:
        radii = np.array([cutoffs[s] for s in atoms.get_chemical_symbols()], dtype=np.float64)
    i, j, shift = _pairs(atoms, radii) if n else (np.zeros(0, int),) * 2 + (np.zeros((0, 3)),)
    i = np.concatenate([i, np.arange(n)])
    j = np.concatenate([j, np.arange(n)])
    shift = np.concatenate([shift, np.zeros((n, 3))]).astype(np.int64)
    z = atoms.numbers.astype(np.int64)
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], j, i, z[j], z[i]))
    return np.stack([i[order], j[order]]).astype(np.int64), shift[order]


def _engine(basis, settings) -> TwoCenterTables:
    if isinstance(basis, TwoCenterTables):
        return basis
    return TwoCenterTables(load_bases(basis), settings)


def _metadata(tables: TwoCenterTables) -> dict:
    files = {el: {"file": b.filename, "sha256": b.sha256, "format": b.source}
             for el, b in tables.basis.items()}
    return {"overlap": {
        "method": "two-centre numerical atomic orbitals (interfaces.twocenter)",
        "basis_files": files,
        "shell_orders": {el: list(b.shell_order) for el, b in tables.basis.items()},
        "settings": dataclasses.asdict(tables.settings),
    }}


def _compute(atoms: Atoms, tables: TwoCenterTables, r_cut, gradient: bool):
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(tables.basis))
    if missing:
        raise ValueError(f"no radial basis for elements {missing}")
    cutoffs = {el: b.cutoff for el, b in tables.basis.items()}
    edge_index, shift = overlap_edges(atoms, cutoffs, r_cut)
    used = sorted(set(symbols))
    hs = HSData(atoms.copy(), {el: tables.basis[el].shells for el in used}, edge_index, shift,
                source_code="nao", metadata=_metadata(tables))
    s = np.zeros(hs.n_values)
    ds = np.zeros((3, hs.n_values)) if gradient else None
    vec = hs.edge_vectors()
    sym = np.array(symbols)
    for group in hs.shape_groups():  # contiguous: edges are sorted by element pair
        el_a, el_b = sym[hs.edge_index[:, group[0]]]
        for lo in range(0, len(group), _CHUNK):
            g = group[lo:lo + _CHUNK]
            span = slice(hs.block_ptr[g[0]], hs.block_ptr[g[-1] + 1])
            out = tables.blocks(el_a, el_b, vec[g], gradient=gradient)
            if gradient:
                s[span] = out[0].ravel()
                ds[:, span] = -out[1].reshape(3, -1)
            else:
                s[span] = out.ravel()
    return hs.replace(s=s), ds


def overlap(atoms: Atoms, basis, r_cut: float | None = None,
            settings: TwoCenterSettings | None = None) -> HSData:
    """Overlap S(R) of ``atoms`` from numerical radial basis files.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom); periodic directions follow ``atoms.pbc``.
    basis : RadialBasis, path, sequence or mapping of them, or TwoCenterTables
        Radial basis per element (see :func:`load_bases`); pass a prebuilt
        :class:`~interfaces.twocenter.TwoCenterTables` to reuse its tables.
    r_cut : float, optional
        Keep every pair with |d| < r_cut (Angstrom) instead of |d| < rc_i + rc_j (S is zero
        beyond the cutoff sum; use this to add e.g. non-local projector pairs).
    settings : TwoCenterSettings, optional
        Numerical parameters of the tables.

    Returns
    -------
    HSData
        S only (``h`` is None), internal orbital convention, basis hashes in
        ``metadata["overlap"]``.
    """
    hs, _ = _compute(atoms, _engine(basis, settings), r_cut, gradient=False)
    return hs


def overlap_gradient(atoms: Atoms, basis, r_cut: float | None = None,
                     settings: TwoCenterSettings | None = None) -> OverlapGradient:
    """Overlap and orbital-gradient blocks D (module docstring); arguments as :func:`overlap`."""
    hs, ds = _compute(atoms, _engine(basis, settings), r_cut, gradient=True)
    return OverlapGradient(overlap=hs, values=ds)
