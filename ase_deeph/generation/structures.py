"""Structure builders used by the demo, examples and generator: commensurate twisted bilayers."""

from __future__ import annotations

import math

import numpy as np
from ase import Atoms

from interfaces.errors import ConfigError

__all__ = ["twist_angle", "twisted_bilayer_graphene"]


def twist_angle(m: int, n: int) -> float:
    """Twist angle in degrees of the commensurate (m, n) bilayer.

    ``cos(theta) = (m^2 + 4mn + n^2) / (2 (m^2 + mn + n^2))``; (1, 2) gives 21.79 degrees,
    (30, 31) the 1.08-degree magic-angle cell with 11,164 atoms.
    """
    return math.degrees(math.acos((m * m + 4 * m * n + n * n) / (2 * (m * m + m * n + n * n))))


def _layer(cell2d: np.ndarray, a1: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """Honeycomb sites (2 per primitive cell of a1, a2) inside the supercell ``cell2d``."""
    basis = [np.zeros(2), (a1 + a2) / 3.0]
    span = int(np.ceil(np.abs(cell2d).sum() / min(np.linalg.norm(a1), np.linalg.norm(a2)))) + 2
    ij = np.mgrid[-span:span + 1, -span:span + 1].reshape(2, -1).T  # [n_points, 2]
    lattice = ij[:, :1] * a1 + ij[:, 1:] * a2
    inv = np.linalg.inv(cell2d)  # rows of cell2d are t1, t2
    frac = np.concatenate([(lattice + b) @ inv for b in basis])  # [n_points, 2]
    frac -= np.floor(frac + 1e-7)
    frac[frac > 1.0 - 1e-7] = 0.0
    _, keep = np.unique(np.round(frac * 1e6).astype(np.int64), axis=0, return_index=True)
    return frac[np.sort(keep)] @ cell2d


def twisted_bilayer_graphene(m: int = 1, n: int = 2, a: float = 2.46, distance: float = 3.35,
                             vacuum: float = 15.0) -> Atoms:
    """Commensurate twisted bilayer graphene with ``4 (m^2 + mn + n^2)`` atoms.

    Layer 1 is unrotated; layer 2 is layer 1 rotated about a common (AA) site so that
    its lattice vector ``n a1 + m a2`` falls on ``m a1 + n a2`` of layer 1.

    Parameters
    ----------
    m, n : int
        Coprime commensuration indices (``twist_angle(m, n)`` gives the angle).
    a : float
        Graphene lattice constant, Angstrom.
    distance : float
        Interlayer distance, Angstrom.
    vacuum : float
        Cell height along z is ``distance + vacuum``, Angstrom.

    Returns
    -------
    ase.Atoms
        Periodic in-plane (pbc = True, True, False), layers at z = vacuum/2 and
        vacuum/2 + distance; ``atoms.info`` holds m, n and the angle.
    """
    a1 = a * np.array([1.0, 0.0])
    a2 = a * np.array([0.5, math.sqrt(3) / 2])
    t1 = m * a1 + n * a2
    t2 = -n * a1 + (m + n) * a2
    cell2d = np.array([t1, t2])
    u, v = n * a1 + m * a2, t1
    phi = math.atan2(v[1], v[0]) - math.atan2(u[1], u[0])
    rot = np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])
    bottom = _layer(cell2d, a1, a2)
    top = _layer(cell2d, rot @ a1, rot @ a2)
    n_expected = 2 * (m * m + m * n + n * n)
    if len(bottom) != n_expected or len(top) != n_expected:
        raise ConfigError(f"({m}, {n}) is not a commensurate pair (got {len(bottom)}, "
                         f"{len(top)} atoms per layer, expected {n_expected})")
    z0 = vacuum / 2.0
    pos = np.vstack([np.c_[bottom, np.full(len(bottom), z0)],
                     np.c_[top, np.full(len(top), z0 + distance)]])
    cell = np.zeros((3, 3))
    cell[:2, :2] = cell2d
    cell[2, 2] = distance + vacuum
    atoms = Atoms("C" * len(pos), positions=pos, cell=cell, pbc=(True, True, False))
    atoms.info.update(twist_m=m, twist_n=n, twist_angle=twist_angle(m, n))
    return atoms
