"""Geometry rules of ``ase-deeph learn``: read, validate, detect vacuum, size the supercell.

Everything here runs before any DFT and in milliseconds:

* :func:`load_structure` reads a structure file or an ``ase.build`` spec
  (:func:`ase_deeph.generation.structure_spec.read_structure`; an unreadable file raises a
  :class:`~interfaces.errors.ConfigError` naming it);
* :func:`check_overlaps` refuses atoms closer than half the sum of their covalent radii
  (and never closer than :data:`interfaces.pyscf.MIN_DISTANCE`), naming the pair;
* :func:`vacuum_axes` finds the directions along which the structure is not periodic:
  ``pbc`` False, a missing cell vector, or an empty gap wider than :data:`VACUUM_GAP`;
* :func:`normalise` turns those axes into non-periodic ones as the generator's graphene
  and ribbon prototypes do (``pbc`` False there, the cell vector perpendicular to the
  periodic ones and long enough for the folding, atoms centred);
* :func:`supercell_for` is the supercell rule (:data:`SUPERCELL_RULE`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_deeph.generation.structure_spec import read_structure
from interfaces.errors import ConfigError
from interfaces.pyscf import MIN_DISTANCE

__all__ = ["StructureError", "VACUUM_GAP", "VACUUM_PAD", "SUPERCELL_RULE", "load_structure",
           "check_overlaps", "vacuum_axes", "normalise", "widths", "supercell_for",
           "nearest_distance"]

#: An empty gap (Angstrom) wider than this along a lattice direction makes it non-periodic.
VACUUM_GAP = 6.0
#: Smallest vacuum gap (Angstrom) that :func:`normalise` leaves along a non-periodic axis.
VACUUM_PAD = 10.0
#: Fraction of the sum of covalent radii below which two atoms count as overlapping.
OVERLAP_FRACTION = 0.5

SUPERCELL_RULE = (
    "smallest diagonal repetition n_i = ceil(w_min / w_i) of the unit cell such that every "
    "periodic perpendicular width w_i (cell volume / area of the face spanned by the other "
    "two vectors) is >= w_min; w_min = r_cut, so that no atom meets its own periodic image "
    "within the cutoff and every labelled block joins two independently perturbed atoms "
    "(8-atom Si cells, 5.43 A wide, repeat each rattle every 5.43 A and gave 3x the H "
    "error on cells with independent rattles: ase_deeph/pretrained/si.md); when the budget "
    "cannot pay for the minimum number of such cells, w_min is lowered step by step down "
    "to r_cut / 2 and the plan says so"
)


class StructureError(ConfigError):
    """The user's structure cannot be learned as given (overlapping atoms, no atoms...)."""


def load_structure(spec: str | Path | Atoms) -> tuple[Atoms, str]:
    """Atoms and a printable name of a structure file, ``ase.build`` spec or Atoms.

    Raises
    ------
    ConfigError
        The file does not exist or ASE cannot read it (the message names the file), or the
        spec is not a literal-only call of an allowed ``ase.build`` function.
    """
    if isinstance(spec, Atoms):
        if len(spec) == 0:
            raise StructureError("the structure has no atoms")
        return spec.copy(), spec.get_chemical_formula()
    return read_structure(spec), str(spec)


def check_overlaps(atoms: Atoms, name: str = "structure") -> None:
    """Raise :class:`StructureError` naming the first pair of overlapping atoms.

    Two atoms overlap when they are closer than ``max(MIN_DISTANCE, OVERLAP_FRACTION *
    (r_cov_a + r_cov_b))`` Angstrom (ASE's covalent radii), periodic images included.
    """
    from ase.data import covalent_radii
    from ase.neighborlist import neighbor_list

    radii = covalent_radii[atoms.numbers]  # [n_atoms], Angstrom
    cutoff = max(MIN_DISTANCE, OVERLAP_FRACTION * 2 * float(radii.max()))
    probe = atoms.copy()
    if not np.any(probe.pbc):
        probe.cell = np.zeros((3, 3))
    i, j, d, shift = neighbor_list("ijdS", probe, cutoff, self_interaction=False)
    limit = np.maximum(MIN_DISTANCE, OVERLAP_FRACTION * (radii[i] + radii[j]))  # [n_pairs]
    bad = np.flatnonzero(d < limit)
    if len(bad) == 0:
        return
    k = bad[np.argmin(d[bad] / limit[bad])]
    sym = atoms.get_chemical_symbols()
    image = "" if not np.any(shift[k]) else f" (periodic image {shift[k].tolist()})"
    raise StructureError(
        f"{name}: atoms {i[k]} ({sym[i[k]]}) and {j[k]} ({sym[j[k]]}) are {d[k]:.3f} A apart"
        f"{image}, closer than {limit[k]:.2f} A (half the sum of their covalent radii): "
        "overlapping atoms; fix the structure (duplicate atoms? wrong units or cell?)")


def widths(cell: np.ndarray) -> np.ndarray:
    """Perpendicular widths (Angstrom) of a cell: volume over the area of each opposite face.

    A zero vector gives width 0 along itself and along the others it uses the remaining
    vectors only (so the in-plane widths of a 2-D cell with no third vector are right).
    """
    cell = np.asarray(cell, dtype=float)  # [3, 3], rows a_i
    out = np.zeros(3)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        a_i, a_j, a_k = cell[i], cell[j], cell[k]
        if np.linalg.norm(a_i) < 1e-8:
            continue
        if np.linalg.norm(a_k) < 1e-8 and np.linalg.norm(a_j) < 1e-8:
            out[i] = np.linalg.norm(a_i)
        elif np.linalg.norm(a_k) < 1e-8 or np.linalg.norm(a_j) < 1e-8:
            other = a_j if np.linalg.norm(a_j) > 1e-8 else a_k
            u = other / np.linalg.norm(other)
            out[i] = np.linalg.norm(a_i - (a_i @ u) * u)
        else:
            n = np.cross(a_j, a_k)
            out[i] = abs(a_i @ n) / np.linalg.norm(n)
    return out


def vacuum_axes(atoms: Atoms, gap: float = VACUUM_GAP) -> tuple[int, ...]:
    """Lattice directions that are not periodic: pbc False, no cell vector, or vacuum.

    Along a periodic direction i the atoms' fractional coordinates are sorted; the widest
    circular gap between neighbours times the perpendicular width ``w_i`` is the empty
    slab thickness (Angstrom); above ``gap`` the direction counts as vacuum.
    """
    cell = np.asarray(atoms.cell, dtype=float)
    w = widths(cell)
    out = []
    for i in range(3):
        if not atoms.pbc[i] or np.linalg.norm(cell[i]) < 1e-8 or w[i] < 1e-8:
            out.append(i)
            continue
        frac = np.sort(atoms.get_scaled_positions(wrap=True)[:, i])  # [n_atoms]
        steps = np.diff(np.append(frac, frac[0] + 1.0))  # circular gaps, fractional
        if float(steps.max()) * w[i] > gap:
            out.append(i)
    return tuple(out)


def normalise(atoms: Atoms, axes: tuple[int, ...], r_cut: float) -> Atoms:
    """Copy of ``atoms`` with ``axes`` non-periodic, as the generator's 2-D prototypes are.

    Along each axis of ``axes`` ``pbc`` is False, the cell vector is replaced by one
    perpendicular to the periodic vectors (and to the other vacuum axis) whose length is
    ``max(extent + VACUUM_PAD, 2 r_cut + 1)`` Angstrom (the folding needs every
    translation along a non-periodic axis to be >= 2 r_cut), and the atoms are centred
    along it. With all three axes in ``axes`` the result is a molecule (zero cell).
    """
    out = atoms.copy()
    if len(axes) == 3:
        out.cell = np.zeros((3, 3))
        out.pbc = False
        out.positions -= out.positions.mean(axis=0)
        return out
    periodic = [i for i in range(3) if i not in axes]
    cell = np.asarray(out.cell, dtype=float).copy()
    pos = out.positions.copy()  # [n_atoms, 3]
    new_dirs: list[np.ndarray] = []
    for ax in axes:
        known = [cell[p] for p in periodic] + new_dirs
        if len(known) == 2:
            d = np.cross(known[0], known[1])
        else:  # one periodic vector: any perpendicular, the old axis preferred
            base = known[0] / np.linalg.norm(known[0])
            trial = cell[ax] if np.linalg.norm(cell[ax]) > 1e-8 else np.eye(3)[
                int(np.argmin(np.abs(base)))]
            d = trial - (trial @ base) * base
            if np.linalg.norm(d) < 1e-8:
                d = np.cross(base, np.eye(3)[int(np.argmin(np.abs(base)))])
        d = d / np.linalg.norm(d)
        proj = pos @ d  # [n_atoms]
        length = max(float(proj.max() - proj.min()) + VACUUM_PAD, 2.0 * r_cut + 1.0)
        pos += np.outer(np.full(len(pos), 0.5 * length - 0.5 * (proj.max() + proj.min())), d)
        cell[ax] = length * d
        new_dirs.append(d)
    out.cell = cell
    out.positions = pos
    out.pbc = [i in periodic for i in range(3)]
    out.wrap()
    return out


def supercell_for(atoms: Atoms, min_width: float) -> tuple[int, int, int]:
    """Smallest diagonal repetition with every periodic perpendicular width >= min_width.

    Non-periodic directions are never repeated. See :data:`SUPERCELL_RULE`.
    """
    w = widths(np.asarray(atoms.cell))
    return tuple(int(max(1, math.ceil(min_width / w[i] - 1e-6))) if atoms.pbc[i] and w[i] > 0
                 else 1 for i in range(3))


def nearest_distance(atoms: Atoms) -> float:
    """Shortest interatomic distance (periodic images included), Angstrom; inf if none."""
    from ase.neighborlist import neighbor_list

    probe = atoms.copy()
    if not np.any(probe.pbc):
        probe.cell = np.zeros((3, 3))
    for cutoff in (4.0, 8.0, 16.0):
        d = neighbor_list("d", probe, cutoff, self_interaction=False)
        if len(d):
            return float(d.min())
    return math.inf
