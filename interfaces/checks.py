"""Convention checks that work on a single HSData (numpy/scipy/spglib only).

* :func:`symmetry_error`: H and S of a crystal must be invariant under its space
  group. For an operation ``x -> W x + t`` (fractional, spglib) the Cartesian
  rotation is ``Q = A^T W A^{-T}`` (A rows = lattice vectors); atom i goes to
  ``g(i)`` with lattice offset ``L_i``, block (i, j, R) to
  ``(g(i), g(j), L_j + W R - L_i)``, and

      X_{g(i) g(j)}(L_j + W R - L_i) = D^{l_i}(Q) X_ij(R) D^{l_j}(Q)^T

  (spinors: ``U X U^dagger`` with ``U = kron(D^{1/2}(det(Q) Q), D(Q))``).
* :func:`check_structure` / :func:`check_finite`: the reader-boundary validation every
  reader applies, finite cell and positions (NaN or inf raises ``FormatError``).
* :func:`bond_axis_error`: S is two-centre, so every off-site block is invariant
  under rotations about its bond axis (``docs/conventions.md`` section 4.1). It needs
  no symmetry at all and catches wrong orbital permutations, signs and R signs.

Both return the largest absolute violation (eV for H, dimensionless for S); data in
the internal (e3nn) convention give round-off level values (SCF noise for H).

Limits: Gamma-only runs that fold periodic images into R = 0 (e.g. SIESTA with a
small cell) are not two-centre and fail the bond-axis test legitimately; magnetic
spinor data break the spatial symmetry of the full H, so test ``which="h0"`` (the
spin-averaged H) there; a sign flip of a whole shell is a harmless gauge and is not
detected; cost is O(n_ops * n_values) (a 2x2x2 Si supercell has 1536 operations).
"""

from __future__ import annotations

import os
import warnings
from functools import lru_cache

import numpy as np
import spglib
from ase import Atoms
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from interfaces.errors import FormatError
from interfaces.hsdata import HSData
from interfaces.sph import orbital_rotation, real_sph_harm

__all__ = [
    "check_finite", "check_structure", "symmetry_operations", "symmetry_error",
    "bond_axis_error", "spin_half_rotation", "spin_scalar_h",
]

_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


def check_finite(path: str | os.PathLike, **arrays) -> None:
    """Raise :class:`FormatError` naming ``path`` unless every array is finite.

    Parameters
    ----------
    path : str or os.PathLike
        The file the numbers were read from.
    **arrays : array_like
        Named arrays (e.g. ``cell=..., positions=...``); None entries are skipped.
    """
    for name, values in arrays.items():
        if values is None:
            continue
        arr = np.asarray(values, dtype=np.float64)
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            where = tuple(int(x) for x in bad[0])
            raise FormatError(path, f"{name} holds {np.count_nonzero(~np.isfinite(arr))} NaN "
                                    f"or infinite number(s) (first at index {where})")


def check_structure(atoms: Atoms, path: str | os.PathLike) -> Atoms:
    """Return ``atoms`` after checking that its cell and positions are finite.

    Raises
    ------
    FormatError
        Naming ``path`` for a NaN or infinite lattice vector or position.
    """
    check_finite(path, cell=np.asarray(atoms.cell), positions=atoms.positions)
    return atoms


def spin_half_rotation(rotation: np.ndarray) -> np.ndarray:
    """``D^{1/2}(Q) = exp(-i theta n.sigma / 2)`` of the proper part of Q, shape (2, 2).

    Improper Q are reduced to ``det(Q) Q`` (inversion acts trivially on spin). The
    overall sign (double cover) is arbitrary and cancels in ``U X U^dagger``.
    """
    q = np.asarray(rotation, dtype=np.float64)
    rotvec = Rotation.from_matrix(np.linalg.det(q) * q).as_rotvec()
    theta = np.linalg.norm(rotvec)
    axis = rotvec / theta if theta > 0 else np.array([0.0, 0.0, 1.0])
    n_sigma = np.einsum("k,kab->ab", axis, _PAULI)
    return np.cos(theta / 2) * np.eye(2) - 1j * np.sin(theta / 2) * n_sigma


def symmetry_operations(hs: HSData, symprec: float = 1e-4):
    """Space-group operations of ``hs.atoms`` with their atom maps.

    Returns
    -------
    list of (Q, W, perm, offsets)
        Cartesian rotation Q (3, 3); integer rotation W (3, 3) on fractional
        coordinates; ``perm`` (n_atoms,) the image atom g(i); ``offsets``
        (n_atoms, 3) int, the lattice vector L_i with ``W x_i + t = x_g(i) + L_i``.
    """
    cell = np.asarray(hs.atoms.cell, dtype=np.float64)
    if abs(np.linalg.det(cell)) < 1e-9:
        raise ValueError("symmetry_error needs a 3-D cell (put molecules in a box)")
    frac = np.linalg.solve(cell.T, hs.atoms.positions.T).T  # [n_atoms, 3]
    with warnings.catch_warnings():  # spglib >= 2.5 warns about its legacy error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            sym = spglib.get_symmetry((cell, frac, hs.atoms.numbers), symprec=symprec)
        except Exception as exc:  # spglib.error.SpglibError with the new error handling
            raise ValueError(f"spglib failed: {exc}") from None
    if sym is None:
        raise ValueError(f"spglib found no symmetry operations ({spglib.get_error_message()})")
    tree = cKDTree(np.mod(frac, 1.0) % 1.0, boxsize=1.0 + 1e-12)
    tol = 10 * symprec * np.linalg.norm(np.linalg.inv(cell))  # Cartesian -> fractional bound
    ops = []
    for w, t in zip(sym["rotations"], sym["translations"], strict=True):
        new = frac @ w.T + t  # [n_atoms, 3]
        dist, perm = tree.query(np.mod(new, 1.0) % 1.0, distance_upper_bound=tol)
        if np.any(~np.isfinite(dist)):
            raise ValueError("could not map the atoms under a symmetry operation")
        offsets = np.rint(new - frac[perm]).astype(np.int64)
        q = cell.T @ w @ np.linalg.inv(cell.T)
        ops.append((q, w.astype(np.int64), perm, offsets))
    return ops


def spin_scalar_h(hs: HSData) -> np.ndarray:
    """Spin-averaged H as a spinless flat array, shape (n_values,), eV.

    ``h[0]`` for spin "none", ``(up + down) / 2`` for "collinear" and
    ``(uu + dd) / 2`` (complex) for "spinor". Unlike the full H of a magnet, it is
    invariant under every spatial symmetry of the structure.
    """
    if hs.h is None:
        raise ValueError("this HSData holds no H")
    if hs.spin != "spinor":
        return hs.h.mean(axis=0)
    out = np.zeros(hs.n_values, dtype=np.complex128)
    for g in hs.shape_groups():
        idx = hs.block_index(g)  # [n, n_i, n_j]
        big = hs.h[0][hs.block_index(g, spinor=True)]  # [n, 2 n_i, 2 n_j]
        ni, nj = idx.shape[1:]
        out[idx] = 0.5 * (big[:, :ni, :nj] + big[:, ni:, nj:])
    return out


def _values(hs: HSData, which: str):
    if which == "s":
        if hs.s is None:
            raise ValueError("this HSData holds no S")
        return [(hs.s, False)]
    if which == "h0":
        return [(spin_scalar_h(hs), False)]
    if which != "h":
        raise ValueError(f"which must be 'h', 'h0' or 's', got {which!r}")
    if hs.h is None:
        raise ValueError("this HSData holds no H")
    return [(channel, hs.spin == "spinor") for channel in hs.h]


def _rotated_blocks(hs: HSData, values, groups, q: np.ndarray) -> list[list[np.ndarray]]:
    """``D X D^dagger`` of every block, per value array and shape group."""
    i, j = hs.edge_index
    symbols = hs.atoms.get_chemical_symbols()
    rot = {el: orbital_rotation(ls, q) for el, ls in hs.basis.items()}
    u_half = spin_half_rotation(q)
    out = []
    for data, spinor in values:
        per_group = []
        for g in groups:
            di, dj = rot[symbols[i[g[0]]]], rot[symbols[j[g[0]]]]
            if spinor:
                di, dj = np.kron(u_half, di), np.kron(u_half, dj)
            per_group.append(di @ data[hs.block_index(g, spinor)] @ dj.conj().T)  # [n, r, c]
        out.append(per_group)
    return out


def _op_error(hs: HSData, values, groups, rotated, w: np.ndarray, perm: np.ndarray,
              offsets: np.ndarray) -> float:
    """Largest mismatch between the rotated blocks and the blocks they map onto."""
    i, j = hs.edge_index
    shift = offsets[j] + hs.cell_shift @ w.T - offsets[i]  # [n_edges, 3]
    target = hs.find_edges(perm[i], perm[j], shift)
    err = 0.0
    for (data, spinor), rot_blocks in zip(values, rotated, strict=True):
        for g, x in zip(groups, rot_blocks, strict=True):
            hit = target[g] >= 0
            err = max(err, float(np.abs(x[~hit]).max(initial=0.0)))
            if np.any(hit):
                y = data[hs.block_index(target[g][hit], spinor)]
                err = max(err, float(np.abs(x[hit] - y).max()))
    return err


def symmetry_error(hs: HSData, which: str = "s", symprec: float = 1e-4) -> float:
    """Largest violation of the space-group covariance of H or S.

    Parameters
    ----------
    hs : HSData
        Data in the internal convention; ``hs.atoms`` needs a 3-D cell.
    which : {"s", "h", "h0"}
        Matrix to test: S; H (all channels; spinors with the spin-1/2 rotation,
        which magnetic order may legitimately break); or the spin-averaged H
        (:func:`spin_scalar_h`), which every spatial operation must preserve.
    symprec : float
        spglib tolerance, Angstrom.

    Returns
    -------
    float
        ``max |X_{g(i) g(j)}(g R) - D X_ij(R) D^T|`` over all operations and blocks
        (a missing image block counts as zero), eV for H.
    """
    values = _values(hs, which)
    groups = list(hs.shape_groups())
    by_rotation: dict[bytes, list] = {}
    for q, w, perm, offsets in symmetry_operations(hs, symprec):
        by_rotation.setdefault(w.tobytes(), []).append((q, w, perm, offsets))
    err = 0.0
    for ops in by_rotation.values():  # rotate once per point operation, compare per translation
        rotated = _rotated_blocks(hs, values, groups, ops[0][0])
        for _, w, perm, offsets in ops:
            err = max(err, _op_error(hs, values, groups, rotated, w, perm, offsets))
    return err


@lru_cache(maxsize=None)
def _fit(l_val: int) -> tuple[np.ndarray, np.ndarray]:
    pts = np.random.default_rng(77 + l_val).normal(size=(2 * (2 * l_val + 1) + 6, 3))
    return pts, np.linalg.pinv(real_sph_harm(l_val, pts))


def _batched_wigner(l_val: int, q: np.ndarray) -> np.ndarray:
    """D^l of many rotations q ([n, 3, 3]) -> [n, 2l+1, 2l+1], from Y(Q r) = D Y(r)."""
    pts, pinv = _fit(l_val)
    y = real_sph_harm(l_val, np.einsum("pc,ndc->npd", pts, q))  # [n, n_pts, 2l+1]
    return np.einsum("mp,npk->nkm", pinv, y)


def _atom_rotations(shells: tuple[int, ...], dl: dict[int, np.ndarray]) -> np.ndarray:
    """Block-diagonal per-edge rotations over the shells of one atom, [n, n_orb, n_orb]."""
    n = next(iter(dl.values())).shape[0]
    size = sum(2 * lv + 1 for lv in shells)
    out = np.zeros((n, size, size))
    k = 0
    for lv in shells:
        out[:, k:k + 2 * lv + 1, k:k + 2 * lv + 1] = dl[lv]
        k += 2 * lv + 1
    return out


def bond_axis_error(hs: HSData, seed: int = 0) -> float:
    """Largest change of an off-site S block under a random rotation about its bond.

    For each off-site block S_ij(R) with bond direction n, a random rotation Q
    about n (angle in [0.3, 2 pi - 0.3]) must leave ``D^{l_i}(Q) S_ij D^{l_j}(Q)^T``
    equal to S_ij. A wrong orbital permutation or sign, or a wrong sign of R,
    breaks this unless all bonds happen to lie along one axis.
    """
    if hs.s is None:
        raise ValueError("this HSData holds no S")
    vec = hs.edge_vectors()  # [n_edges, 3]
    length = np.linalg.norm(vec, axis=1)
    off = length > 1e-8
    angle = np.random.default_rng(seed).uniform(0.3, 2 * np.pi - 0.3, size=hs.n_edges)
    axis = vec / np.where(off, length, 1.0)[:, None]
    symbols = np.array(hs.atoms.get_chemical_symbols())
    i, j = hs.edge_index
    err = 0.0
    for g in hs.shape_groups():
        g = g[off[g]]
        if len(g) == 0:
            continue
        q = Rotation.from_rotvec(axis[g] * angle[g, None]).as_matrix()  # [n, 3, 3]
        bi, bj = hs.basis[symbols[i[g[0]]]], hs.basis[symbols[j[g[0]]]]
        dl = {lv: _batched_wigner(lv, q) for lv in set(bi) | set(bj)}
        di, dj = _atom_rotations(bi, dl), _atom_rotations(bj, dl)
        x = hs.s[hs.block_index(g)]  # [n, n_i, n_j]
        err = max(err, float(np.abs(di @ x @ dj.transpose(0, 2, 1) - x).max()))
    return err
