"""Radial orbitals and the radial basis of one element, as read from a basis file.

Units are Angstrom: grids in Angstrom and R(r) in Angstrom^-3/2, so that
``int r^2 R(r)^2 dr = 1`` for a normalised orbital and overlaps are dimensionless. The
readers of the codes' files are in :mod:`interfaces.nao.basis_files`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import CubicSpline

__all__ = ["RadialOrbital", "RadialBasis"]


@dataclass(frozen=True, eq=False)
class RadialOrbital:
    """One radial function R(r) of a numerical atomic orbital phi = R(r) Y_lm(r_hat).

    Parameters
    ----------
    l : int
        Angular momentum.
    n : int
        Principal quantum number (0 when the file does not give one).
    zeta : int
        1-based zeta index within (n, l).
    cutoff : float
        Radius (Angstrom) beyond which R(r) = 0.
    r : ndarray, shape (n_r,)
        Uniform radial grid (Angstrom), ``r[0] = 0`` and ``r[-1] = cutoff``.
    values : ndarray, shape (n_r,)
        R(r) on ``r`` in Angstrom^-3/2 (SIESTA's f(r) already multiplied by r^l).
    polarization : bool
        True for a (SIESTA) polarisation orbital.
    population : float
        Reference occupation in the free atom (NaN if the file has none).
    """

    l: int  # noqa: E741  (the physics name, as in the file formats)
    n: int
    zeta: int
    cutoff: float
    r: np.ndarray
    values: np.ndarray
    polarization: bool = False
    population: float = float("nan")

    def __post_init__(self) -> None:
        for name in ("r", "values"):
            arr = np.array(getattr(self, name), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.r.shape != self.values.shape or self.r.ndim != 1:
            raise ValueError("r and values must be 1-D arrays of equal length")

    def norm(self) -> float:
        """Return ``int r^2 R(r)^2 dr`` (1 for a normalised orbital)."""
        spline = CubicSpline(self.r, self.values)
        x, w = np.polynomial.legendre.leggauss(6)
        mid, half = 0.5 * (self.r[1:] + self.r[:-1]), 0.5 * np.diff(self.r)
        pts = (mid[:, None] + half[:, None] * x[None, :]).ravel()
        wts = (half[:, None] * w[None, :]).ravel()
        return float(np.sum(wts * pts**2 * spline(pts) ** 2))


@dataclass(frozen=True, eq=False)
class RadialBasis:
    """The radial basis of one element as read from one file.

    Parameters
    ----------
    symbol : str
        Element symbol.
    orbitals : tuple of RadialOrbital
        Radial functions in file order.
    source : str
        ``"siesta"``, ``"abacus"`` or ``"openmx"`` (the code whose convention the file uses).
    sha256 : str
        Hash of the (uncompressed) file content; identifies the basis in metadata.
    filename : str
        Base name of the file.
    projector_cutoffs : tuple of (int, float)
        (l, cutoff in Angstrom) of each non-local projector where the file gives them.
    """

    symbol: str
    orbitals: tuple[RadialOrbital, ...]
    source: str
    sha256: str = ""
    filename: str = ""
    projector_cutoffs: tuple[tuple[int, float], ...] = field(default=())

    @property
    def shell_order(self) -> tuple[int, ...]:
        """File position of each internal shell (shells sorted stably by l)."""
        return tuple(int(k) for k in np.argsort([o.l for o in self.orbitals], kind="stable"))

    @property
    def sorted_orbitals(self) -> tuple[RadialOrbital, ...]:
        """Radial functions in the internal order (by l, then file order)."""
        return tuple(self.orbitals[k] for k in self.shell_order)

    @property
    def shells(self) -> tuple[int, ...]:
        """Angular momenta in the internal order, as in ``HSData.basis``."""
        return tuple(o.l for o in self.sorted_orbitals)

    @property
    def cutoff(self) -> float:
        """Largest orbital cutoff (Angstrom)."""
        return max(o.cutoff for o in self.orbitals)

    @property
    def n_orbitals(self) -> int:
        """Orbitals (m components included) per atom."""
        return sum(2 * o.l + 1 for o in self.orbitals)
