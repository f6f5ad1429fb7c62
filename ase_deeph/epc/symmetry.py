"""Space-group reduction of the finite-difference displacements (``docs/epc.md`` section 3.3).

Only one atom per orbit of the space group is displaced; the derivatives of the other atoms
follow from the rotation law of orbital blocks (``docs/conventions.md`` section 6.2). An operation
g = (W, t) (fractional; Cartesian rotation Q) maps atom a of cell R onto atom g(a) of cell R'
with ``W (tau_a + R) + t = tau_g(a) + R'``. If kappa = g(kappa0), the structure with kappa0
displaced by u maps onto the structure with kappa displaced by Q u, so::

    dX_{g(a) R'_m, g(b) R'_n} / du_{kappa beta}
        = sum_alpha Q[beta, alpha] D_a(Q) dX_{a R_m, b R_n} / du_{kappa0 alpha} D_b(Q)^T

with ``D = interfaces.sph.orbital_rotation`` (real spherical harmonics, improper rotations
included), and both cells shifted so that the displaced atom kappa sits in cell 0 again.

Only operations that map the (2N+1)-cell box lattice onto itself are used, so that the
periodic images of the displaced supercell map onto each other. With central differences
the result equals the direct one up to O(delta^2) (O(delta) forward): the directional
differences along Q e_alpha are recombined, exact when Q only permutes and flips axes.
The provider must be covariant under the operations (true for an E(3)-equivariant model,
DFT, the toy model); atoms are told apart only by their atomic numbers.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from interfaces.sph import orbital_rotation

__all__ = ["DisplacementSymmetry", "displacement_symmetry", "complete_records"]


@dataclass(frozen=True)
class DisplacementSymmetry:
    """Orbits of the primitive atoms and one operation per atom.

    Attributes
    ----------
    representatives : ndarray, shape (n_rep,), int64
        Atoms that are displaced (the lowest index of each orbit).
    rep_of : ndarray, shape (N_uc,), int64
        Representative kappa0 of the orbit of each atom kappa.
    rotations : ndarray, shape (N_uc, 3, 3), int64
        Fractional rotation W of the operation mapping ``rep_of[kappa]`` onto kappa
        (identity for the representatives).
    translations : ndarray, shape (N_uc, 3)
        Fractional translation t of that operation.
    cartesian : ndarray, shape (N_uc, 3, 3)
        Cartesian rotation ``Q = A^T W A^-T`` (A: cell, rows are lattice vectors).
    n_operations : int
        Size of the space group kept (compatible with the box lattice).
    """

    representatives: np.ndarray
    rep_of: np.ndarray
    rotations: np.ndarray
    translations: np.ndarray
    cartesian: np.ndarray
    n_operations: int


def _fractional(atoms: Atoms) -> np.ndarray:
    """Unwrapped fractional positions, [N_uc, 3]."""
    return np.linalg.solve(np.asarray(atoms.cell).T, atoms.positions.T).T


def _operations(atoms: Atoms, box: np.ndarray | None, symprec: float):
    """Space-group operations (W [n, 3, 3], t [n, 3]) preserving the box lattice."""
    import spglib

    cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():  # spglib >= 2.5 warns about its legacy error handling
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            data = spglib.get_symmetry(cell, symprec=symprec)
        except Exception:  # spglib.error.SpglibError with the new error handling
            data = None
    if data is None:  # no reduction: every atom is displaced
        return np.eye(3, dtype=np.int64)[None], np.zeros((1, 3))
    rot = np.asarray(data["rotations"], dtype=np.int64)
    trans = np.asarray(data["translations"], dtype=np.float64)
    if box is not None:
        m = 2 * np.asarray(box, dtype=np.int64) + 1  # [3]
        # diag(m)^-1 W diag(m) integer  <=>  W maps the box lattice onto itself
        keep = np.all((rot * m[None, None, :]) % m[None, :, None] == 0, axis=(1, 2))
        rot, trans = rot[keep], trans[keep]
    return rot, trans


def _atom_images(atoms: Atoms, rot: np.ndarray, trans: np.ndarray, symprec: float):
    """Images g(a) [n_ops, N_uc] and cells R' [n_ops, N_uc, 3] of every home-cell atom."""
    frac = _fractional(atoms)  # [N_uc, 3]
    cell = np.asarray(atoms.cell)
    y = np.einsum("gij,aj->gai", rot, frac) + trans[:, None, :]  # [n_ops, N_uc, 3]
    diff = y[:, :, None, :] - frac[None, None, :, :]  # [n_ops, N_uc, N_uc, 3]
    frac_err = diff - np.round(diff)
    dist = np.linalg.norm(frac_err @ cell, axis=-1)  # [n_ops, N_uc, N_uc]
    same = atoms.numbers[:, None] == atoms.numbers[None, :]
    dist = np.where(same[None], dist, np.inf)
    image = dist.argmin(axis=-1)  # [n_ops, N_uc]
    if np.any(np.take_along_axis(dist, image[..., None], -1) > 3.0 * symprec + 1e-9):
        raise ValueError("a space-group operation from spglib does not map the atoms onto "
                         "each other within symprec; lower symprec or symmetrize the cell")
    shift = np.round(np.take_along_axis(diff, image[..., None, None], 2)[:, :, 0])
    return image, shift.astype(np.int64)


def displacement_symmetry(atoms: Atoms, n_box=None, symprec: float = 1e-5
                          ) -> DisplacementSymmetry:
    """Orbits of the primitive atoms under the space group that preserves the box lattice.

    Parameters
    ----------
    atoms : ase.Atoms
        Primitive cell.
    n_box : int or tuple of int, optional
        Box of 2 n_box + 1 cells per axis; operations that do not map this lattice onto
        itself are dropped (None keeps all).
    symprec : float
        spglib tolerance, Angstrom.

    Returns
    -------
    DisplacementSymmetry
    """
    box = None if n_box is None else np.broadcast_to(np.asarray(n_box), (3,))
    rot, trans = _operations(atoms, box, symprec)
    image, _ = _atom_images(atoms, rot, trans, symprec)
    n_uc = len(atoms)
    t_mod = trans - np.round(trans)
    ident = int(np.flatnonzero(np.all(rot == np.eye(3, dtype=np.int64), axis=(1, 2))
                               & np.all(np.abs(t_mod) < 1e-8, axis=1))[0])
    a_t = np.asarray(atoms.cell).T
    q_all = a_t @ rot @ np.linalg.inv(a_t)  # [n_ops, 3, 3]
    # prefer operations that only permute / flip Cartesian axes: their recombination of the
    # three directional differences is exact (no O(delta^2) cross terms)
    score = (np.abs(q_all) > 1e-8).sum(axis=(1, 2))  # [n_ops]
    rep_of = np.full(n_uc, -1, dtype=np.int64)
    op_of = np.full(n_uc, ident, dtype=np.int64)
    for kap in range(n_uc):
        if rep_of[kap] >= 0:
            continue
        rep_of[kap] = kap
        for other in np.unique(image[:, kap]):
            if rep_of[other] < 0:
                ops = np.flatnonzero(image[:, kap] == other)
                rep_of[other], op_of[other] = kap, ops[np.argmin(score[ops])]
    w = rot[op_of]
    return DisplacementSymmetry(
        representatives=np.unique(rep_of), rep_of=rep_of, rotations=w,
        translations=trans[op_of], cartesian=q_all[op_of],
        n_operations=len(rot))


def _rotate_record(rec: tuple, image, shift, w, d_of, home_shift):
    """Map one record (pair6, a, b, xh, xs) by an operation; blocks rotated, not mixed."""
    pair6, a, b, xh, xs = rec
    ga, gb = image[a], image[b]
    rm = pair6[:, :3] @ w.T + shift[a] - home_shift  # [n, 3]
    rn = pair6[:, 3:] @ w.T + shift[b] - home_shift
    da, db = d_of(a), d_of(b)  # [n_a, n_a], [n_b, n_b]
    xh = np.einsum("ij,njk,lk->nil", da, xh, db)
    xs = np.einsum("ij,njk,lk->nil", da, xs, db)
    return np.concatenate([rm, rn], axis=1), ga, gb, xh, xs


def complete_records(records: dict, sym: DisplacementSymmetry, atoms: Atoms,
                     basis: dict, symprec: float = 1e-5, tol: float = 1e-14) -> dict:
    """Fill ``records[(kappa, beta)]`` of every atom from those of the representatives.

    Parameters
    ----------
    records : dict
        ``{(kappa0, alpha): [(pair6 [n, 6], a [n], b [n], dH [n, n_a, n_b], dS), ...]}``
        for every representative and alpha = 0, 1, 2 (image weights applied, the
        displaced atom in cell 0; each entry's a and b of one element each).
    sym : DisplacementSymmetry
        From :func:`displacement_symmetry` on the same ``atoms``.
    atoms : ase.Atoms
        Primitive cell.
    basis : dict
        ``{symbol: shells}`` (``HSData.basis``), orbital order of the blocks.
    symprec : float
        Tolerance used to re-identify the atom images.
    tol : float
        Mixing coefficients ``|Q[beta, alpha]|`` below this are skipped.

    Returns
    -------
    dict
        ``records`` plus entries for all other atoms (lists of records, to be summed).
    """
    out = dict(records)
    symbols = atoms.get_chemical_symbols()
    for kap in range(len(atoms)):
        kap0 = int(sym.rep_of[kap])
        if kap0 == kap:
            continue
        w, q = sym.rotations[kap], sym.cartesian[kap]
        image, shift = _atom_images(atoms, w[None], sym.translations[kap][None], symprec)
        image, shift = image[0], shift[0]
        if image[kap0] != kap:
            raise RuntimeError("symmetry operation does not map the representative onto kappa")
        rot = {el: orbital_rotation(basis[el], q) for el in set(symbols)}

        def d_of(idx, rot=rot):
            els = {symbols[i] for i in np.unique(idx)}
            if len(els) != 1:
                raise ValueError("a record mixes elements on one side")
            return rot[els.pop()]

        for beta in range(3):
            out[kap, beta] = []
        for alpha in range(3):
            rotated = [_rotate_record(r, image, shift, w, d_of, shift[kap0])
                       for r in records[kap0, alpha]]
            for beta in range(3):
                c = q[beta, alpha]
                if abs(c) > tol:
                    out[kap, beta] += [(p, ga, gb, c * xh, c * xs)
                                       for p, ga, gb, xh, xs in rotated]
    return out
