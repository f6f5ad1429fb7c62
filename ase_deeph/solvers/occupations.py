"""Fermi level from the electron count, and occupations.

Conventions
-----------
* Electron count: ``N(mu) = deg * sum_s sum_k w_k sum_n f((e_snk - mu) / width)`` with
  ``sum_k w_k = 1`` and ``deg`` = 2 for spinless data (each band holds two electrons),
  1 for collinear data (per channel) and for spinors.
* Occupations returned here are per state in [0, 1] (Methfessel-Paxton may leave
  that range slightly). ASE's ``get_occupation_numbers`` convention includes the
  spin degeneracy: use :attr:`FermiResult.occupation_numbers` (= ``deg * f``).
* Insulators (mid-gap convention): the zero-temperature count is analysed first.
  If the electron count fills the states up to a gap (``cbm - vbm > gap_tol``) and
  the smearing is small (``width <= gap / 10``), then ``E_F = (vbm + cbm) / 2``
  exactly, and VBM, CBM and the gap are reported. Otherwise E_F solves
  ``N(mu) = n_electrons`` (bisection/Brent); with zero width a partially filled
  (possibly degenerate) level is shared equally and E_F is its energy.
* NaN eigenvalues (bands lost to an ill-conditioned overlap) are never occupied.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import erfc, expit

__all__ = ["SMEARINGS", "FermiResult", "fermi_level", "fermi_window", "occupation_function",
           "occupations"]

SMEARINGS = ("fermi-dirac", "gaussian", "methfessel-paxton")


@dataclass(frozen=True)
class FermiResult:
    """Fermi level, band edges and occupations.

    Attributes
    ----------
    fermi_level : float
        E_F in eV (mid-gap for insulators, see module docstring).
    occupations : ndarray, shape (nspins, nk, nbands)
        Occupation of each state in [0, 1] (per state, without spin degeneracy).
    vbm, cbm, gap : float
        Valence-band maximum, conduction-band minimum and gap, eV (NaN for metals).
    is_insulator : bool
        Whether the electron count ends in a gap.
    n_electrons : float
        Electrons per cell.
    spin_degeneracy : int
        Electrons per state (2 spinless, 1 collinear/spinor).
    smearing : str
        Smearing function used.
    width : float
        Smearing width, eV.
    """

    fermi_level: float
    occupations: np.ndarray
    vbm: float
    cbm: float
    gap: float
    is_insulator: bool
    n_electrons: float
    spin_degeneracy: int
    smearing: str
    width: float

    @property
    def occupation_numbers(self) -> np.ndarray:
        """ASE-style occupation numbers ``deg * f``, shape (nspins, nk, nbands)."""
        return self.spin_degeneracy * self.occupations


def occupation_function(x: np.ndarray, smearing: str = "fermi-dirac") -> np.ndarray:
    """Occupation f(x) of a state at reduced energy ``x = (e - mu) / width``.

    ``"fermi-dirac"``: 1 / (1 + exp(x)); ``"gaussian"``: erfc(x) / 2;
    ``"methfessel-paxton"`` (first order): erfc(x) / 2 - x exp(-x^2) / (2 sqrt(pi)).
    """
    x = np.asarray(x, dtype=np.float64)
    if smearing == "fermi-dirac":
        return expit(-x)
    if smearing == "gaussian":
        return 0.5 * erfc(x)
    if smearing == "methfessel-paxton":
        return 0.5 * erfc(x) - x * np.exp(-x * x) / (2 * math.sqrt(math.pi))
    raise ValueError(f"smearing must be one of {SMEARINGS}, got {smearing!r}")


def state_weights(eigenvalues: np.ndarray, weights) -> np.ndarray:
    """Return k weights normalised to 1, broadcast to (nspins, nk, nbands); 0 for NaN states."""
    nk = eigenvalues.shape[1]
    w = np.full(nk, 1.0 / nk) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (nk,):
        raise ValueError(f"weights must have shape ({nk},), got {w.shape}")
    w = np.broadcast_to((w / w.sum())[None, :, None], eigenvalues.shape)
    return np.where(np.isnan(eigenvalues), 0.0, w)


def fermi_window(eigenvalues: np.ndarray, fermi_level: float, window: float = 2.0) -> np.ndarray:
    """Mask of the states "within ``window`` eV of E_F", measured from the band edges.

    A state is inside when ``|e - E_F| < window + d``, with ``d`` the distance of the
    state closest to E_F. For a metal ``d`` is ~0 and this is the plain window; for a
    gapped spectrum (E_F mid-gap) the window starts at the valence and conduction edges,
    so an insulator's edge states are always compared (a plain 2 eV window around the
    mid-gap E_F of diamond, gap ~4 eV, holds no state at all). NaN states are outside.

    Parameters
    ----------
    eigenvalues : ndarray
        Energies, eV, any shape.
    fermi_level : float
        E_F, eV.
    window : float
        Width beyond the closest state, eV.

    Returns
    -------
    ndarray of bool, same shape as ``eigenvalues``
    """
    d = np.abs(np.asarray(eigenvalues, dtype=np.float64) - fermi_level)
    finite = np.isfinite(d)
    if not finite.any():
        return finite
    return finite & (d < window + d[finite].min())


def occupations(eigenvalues: np.ndarray, fermi_level: float, smearing: str = "fermi-dirac",
                width: float = 0.0) -> np.ndarray:
    """Per-state occupations f((e - E_F) / width), same shape as ``eigenvalues``.

    With ``width == 0`` a step function (states exactly at E_F get 1/2); NaN -> 0.
    """
    e = np.asarray(eigenvalues, dtype=np.float64)
    if width > 0:
        f = occupation_function((e - fermi_level) / width, smearing)
    else:
        f = np.where(e < fermi_level, 1.0, np.where(e == fermi_level, 0.5, 0.0))
    return np.where(np.isnan(e), 0.0, f)


def _zero_t(e: np.ndarray, w: np.ndarray, n_e: float, deg: int, gap_tol: float):
    """Zero-temperature analysis: (index of last filled state in sorted order, sorted e, cum)."""
    flat_e, flat_w = e.ravel(), deg * w.ravel()
    ok = ~np.isnan(flat_e)
    order = np.argsort(flat_e[ok], kind="stable")
    se, sw = flat_e[ok][order], flat_w[ok][order]
    cum = np.cumsum(sw)
    tol = 1e-9 * max(1.0, n_e)
    if len(cum) == 0 or cum[-1] < n_e - tol:
        raise ValueError(f"{n_e} electrons do not fit into {cum[-1] if len(cum) else 0} states")
    idx = int(np.searchsorted(cum, n_e - tol))
    filled = abs(cum[idx] - n_e) <= tol
    gapped = filled and idx + 1 < len(se) and se[idx + 1] - se[idx] > gap_tol
    return idx, se, sw, cum, gapped


def _level_fill(e, se, sw, cum, idx, n_e, gap_tol):
    """Zero width, metal: share the remaining electrons equally over the level at se[idx]."""
    ef = float(se[idx])
    in_level = np.abs(se - ef) <= gap_tol
    below = cum[np.argmax(in_level)] - sw[np.argmax(in_level)]
    frac = (n_e - below) / sw[in_level].sum()
    occ = np.where(e < ef - gap_tol, 1.0, np.where(np.abs(e - ef) <= gap_tol, frac, 0.0))
    return ef, np.where(np.isnan(e), 0.0, occ)


def fermi_level(eigenvalues: np.ndarray, n_electrons: float, weights=None,
                spin_degeneracy: int = 2, smearing: str = "fermi-dirac", width: float = 0.0,
                gap_tol: float = 1e-6) -> FermiResult:
    """Fermi level from the electron count over weighted k-points.

    Parameters
    ----------
    eigenvalues : ndarray, shape (nspins, nk, nbands)
        Band energies, eV (NaN states ignored).
    n_electrons : float
        Electrons per cell.
    weights : array_like, shape (nk,), optional
        k-point weights (normalised here; default uniform).
    spin_degeneracy : int
        2 for spinless data, 1 for collinear and spinor data
        (see :func:`ase_deeph.solvers.spin_degeneracy`).
    smearing : {"fermi-dirac", "gaussian", "methfessel-paxton"}
        Occupation function.
    width : float
        Smearing width in eV (0: zero temperature).
    gap_tol : float
        Smallest energy separation (eV) counted as a gap / distinct level.

    Returns
    -------
    FermiResult
        E_F, occupations (nspins, nk, nbands) in [0, 1], VBM/CBM/gap for insulators.
    """
    e = np.asarray(eigenvalues, dtype=np.float64)
    if e.ndim != 3:
        raise ValueError(f"eigenvalues must be (nspins, nk, nbands), got shape {e.shape}")
    occupation_function(np.zeros(1), smearing)  # validates the name
    w = state_weights(e, weights)
    n_e = float(n_electrons)
    idx, se, sw, cum, gapped = _zero_t(e, w, n_e, spin_degeneracy, gap_tol)
    nan = math.nan
    vbm, cbm = (float(se[idx]), float(se[idx + 1])) if gapped else (nan, nan)
    args = (n_e, spin_degeneracy, smearing, float(width))
    if gapped and width <= (cbm - vbm) / 10:
        ef = 0.5 * (vbm + cbm)
        return FermiResult(ef, occupations(e, ef, smearing, width), vbm, cbm, cbm - vbm, True,
                           *args)
    if width <= 0:
        ef, occ = _level_fill(e, se, sw, cum, idx, n_e, gap_tol)
        return FermiResult(ef, occ, vbm, cbm, cbm - vbm, gapped, *args)

    def excess(mu: float) -> float:
        return spin_degeneracy * float(np.sum(w * occupations(e, mu, smearing, width))) - n_e

    lo, hi = float(se[0]) - 40 * width, float(se[-1]) + 40 * width
    ef = brentq(excess, lo, hi, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500)
    return FermiResult(ef, occupations(e, ef, smearing, width), vbm, cbm, cbm - vbm, gapped,
                       *args)
