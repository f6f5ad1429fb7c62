"""Validated PySCF inputs and their assembly into canonical :class:`~interfaces.hsdata.HSData`.

Shared by the SCF runs (:mod:`interfaces.pyscf.generator`) and the SCF-free overlaps
(:mod:`interfaces.pyscf.overlap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from interfaces import orbitals
from interfaces.hsdata import HSData
from interfaces.neighbours import sort_edges
from interfaces.pyscf.basis import GeometryError, basis_definition, element_shells, min_distance

__all__ = ["MIN_DISTANCE", "Setup", "prepare", "to_hsdata", "basis_metadata"]

#: Closest allowed interatomic distance, Angstrom.
MIN_DISTANCE = 0.5


@dataclass(frozen=True)
class Setup:
    """Validated inputs shared by :func:`run` and :func:`overlap`."""

    atoms: Atoms
    basis_def: dict
    shells: dict  # symbol -> (sorted l tuple, PySCF position of each)


def prepare(atoms: Atoms, basis: str) -> Setup:
    """Check the structure and the basis of every element; raise a clear error otherwise."""
    if len(atoms) == 0:
        raise GeometryError("the structure has no atoms")
    symbols = atoms.get_chemical_symbols()
    basis_def = basis_definition(basis, symbols)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell)
    if np.any(pbc) and abs(np.linalg.det(cell)) < 1e-6:
        raise GeometryError("a periodic structure needs three lattice vectors (add vacuum "
                            "along non-periodic directions)")
    d_min = min_distance(atoms.positions, cell, pbc)
    if d_min < MIN_DISTANCE:
        raise GeometryError(f"atoms overlap: shortest distance {d_min:.3f} A < {MIN_DISTANCE} A")
    shells = {el: element_shells(sh) for el, sh in basis_def.items()}
    return Setup(atoms.copy(), basis_def, shells)


def to_hsdata(setup: Setup, edge_index, cell_shift, h, s, internal: bool = False,
              **kw) -> HSData:
    """Assemble flat blocks (PySCF order unless ``internal``) into canonical HSData.

    The blocks arrive in the canonical (i, j, R) order (:func:`interfaces.neighbours.sort_edges`)
    from the neighbour list, :func:`~interfaces.pyscf.fold.fold` or the molecule's pair grid.
    """
    order = sort_edges(edge_index, cell_shift)
    if np.any(order != np.arange(len(order))):
        raise RuntimeError("PySCF blocks are not in the canonical (i, j, R) order")
    hs = HSData(
        atoms=setup.atoms, basis={el: v[0] for el, v in setup.shells.items()},
        edge_index=edge_index, cell_shift=cell_shift, h=h, s=s, source_code="pyscf", **kw,
    )
    if internal:
        return hs
    return orbitals.to_internal(hs, "pyscf", {el: v[1] for el, v in setup.shells.items()})


def basis_metadata(setup: Setup, basis: str, r_cut: float) -> dict:
    """Basis, cutoff and PySCF version as stored in every generated file's metadata."""
    import pyscf

    return {
        "basis_name": basis, "basis_definition": setup.basis_def, "basis_units": "bohr^-2",
        "r_cut": float(r_cut), "pyscf_version": pyscf.__version__,
    }
