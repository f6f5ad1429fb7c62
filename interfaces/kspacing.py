"""One rule for a k-mesh from a k-point spacing (VASP's ``KSPACING``).

Along every periodic direction with reciprocal vector b_i (2 pi included)::

    n_i = max(1, ceil(|b_i| / kspacing))

and n_i = 1 along non-periodic directions (and along a periodic direction without a
cell vector). The ceiling forgives 1e-6 of round-off, so a cell whose |b_i| / kspacing
is an integer up to float noise does not get one extra point.

Two spacings are in use, both through :func:`default_kmesh`:

* :data:`KSPACING_SCF` = 0.5 1/Angstrom, the SCF mesh of the embedded DFT generator
  (:func:`interfaces.pyscf.run`): a coarse mesh keeps the SCF cheap; H(R) itself comes from
  a denser non-self-consistent mesh chosen from ``r_cut``, not from this spacing.
* :data:`KSPACING_SOLVE` = 2 pi / 25, about 0.2513 1/Angstrom, the default mesh of the
  CLI's dense solves (``ase-deeph bands`` / ``dos``, :mod:`ase_deeph.cli.workflows`): about
  25 points per 1/Angstrom of |b_i| without 2 pi, for a smooth DOS and Fermi level from a
  given H(R), where every k-point costs only one diagonalisation.
"""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

__all__ = ["KSPACING_SCF", "KSPACING_SOLVE", "default_kmesh"]

#: SCF k-point spacing of :func:`interfaces.pyscf.run`, 1/Angstrom (2 pi included).
KSPACING_SCF = 0.5
#: Spacing of the CLI's dense solves, 1/Angstrom (2 pi included): 25 points per 1/Angstrom.
KSPACING_SOLVE = 2.0 * math.pi / 25.0


def default_kmesh(atoms: Atoms, kspacing: float = KSPACING_SCF) -> tuple[int, int, int]:
    """Gamma-centred mesh size with at most ``kspacing`` between k-points.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure; its ``pbc`` selects the sampled directions. A cell of rank < 3 is
        allowed (ASE's pseudo-inverse reciprocal cell).
    kspacing : float
        Largest spacing between k-points, 1/Angstrom, 2 pi included (VASP ``KSPACING``).

    Returns
    -------
    tuple of 3 int
        ``n_i = max(1, ceil(|b_i| / kspacing))``; 1 along non-periodic directions.
    """
    if kspacing <= 0:
        raise ValueError(f"kspacing must be positive, got {kspacing}")
    recip = 2.0 * np.pi * np.linalg.norm(np.asarray(atoms.cell.reciprocal()), axis=1)  # [3]
    return tuple(int(max(1, math.ceil(b / kspacing - 1e-6))) if p else 1
                 for b, p in zip(recip, atoms.pbc, strict=True))
