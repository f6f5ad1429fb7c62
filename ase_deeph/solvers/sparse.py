"""Sparse solvers for large cells: shift-invert eigenpairs and Fermi level by inertia counting.

Nothing here forms a dense n x n matrix.

* :func:`solve_sparse` -- ``scipy.sparse.linalg.eigsh(H, M=S, sigma=..., which="LM")``
  (sparse LU of ``H - sigma S``), a few tens of bands around ``sigma``.  Real
  symmetric matrices are used when all Bloch phases are real (Gamma and the
  other time-reversal-invariant k-points) and the data is not spinor.
* :func:`count_states_below` -- Sylvester's law of inertia: for S positive
  definite, the number of generalised eigenvalues below E equals the number of
  negative pivots D of ``H - E S = L D L^dagger``, read from one factorisation by the
  backend of :mod:`ase_deeph.solvers.factor` (MKL PARDISO when installed, for real
  matrices; SuperLU in symmetric mode otherwise). If the factorisation is singular (E
  on an eigenvalue) or SuperLU pivots off the diagonal, E is moved by a tiny amount and
  the count is redone.
* :func:`fermi_level_sparse` -- how the calculator gets E_F for large cells. At one
  k-point and spin channel (Gamma, the usual choice for 10^4 atoms) a windowed search:
  one symmetric-mode LU of ``H - E S`` gives the count N(E) *and*, reused as the
  shift-invert operator, the ~24 eigenvalues nearest E, whose global indices are then
  known; E jumps to the missing states by the local level spacing until the highest
  occupied state and the next one are in the window (E_F mid-gap, or at the level for a
  metal). Otherwise (several k-points, collinear spin, or no convergence) bisection on
  the zero-temperature electron count ``deg * sum_k w_k N_k(E)`` (one LDL^T per k and
  spin channel and step); when a trial E lands in a gap the band edges are found by small
  shift-invert windows, the count is re-checked at mid-gap and E_F is set mid-gap;
  otherwise (metal) E_F is the bisection point, converged to ``tol``. Counts taken within
  ~1e-8 eV of an eigenvalue may be off by the multiplicity of that level (the windowed
  search detects this and moves E); this can only move a bisected metallic E_F by about
  that distance (measured: E_F within 5e-8 eV of a 4-fold degenerate Dirac level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse.linalg as spla

from ase_deeph.solvers.eigen import spin_degeneracy
from ase_deeph.solvers.factor import factorize_upper
from ase_deeph.solvers.pencil import UpperPencil, pencil_of
from interfaces.hsdata import HSData

__all__ = [
    "SparseFermi",
    "SparseSolution",
    "count_shifted",
    "count_states_below",
    "fermi_level_sparse",
    "solve_sparse",
]


@dataclass(frozen=True)
class SparseSolution:
    """Eigenpairs nearest to ``sigma`` at one k-point.

    Attributes
    ----------
    kpt : ndarray, shape (3,)
        Fractional k-point.
    sigma : float
        Shift, eV.
    eigenvalues : ndarray, shape (nspins, n_bands)
        Eigenvalues nearest ``sigma`` in eV, ascending.
    eigenvectors : ndarray or None, shape (nspins, n, n_bands)
        S-orthonormal eigenvectors (columns), if requested.
    """

    kpt: np.ndarray
    sigma: float
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray | None


@dataclass(frozen=True)
class SparseFermi:
    """Fermi level from sparse electron counting.

    Attributes
    ----------
    fermi_level : float
        E_F in eV (mid-gap for an insulator).
    vbm, cbm, gap : float
        Highest occupied / lowest empty state and their difference, eV (NaN for a metal).
    is_insulator : bool
        Whether a gap was found at the electron count.
    n_electrons : float
        Electron count used.
    n_factorizations : int
        Sparse LDL^T factorisations done (cost measure).
    nearby : ndarray or None, shape (m,)
        With the windowed search: the eigenvalues (eV, ascending) that its last
        factorisation found around E_F, free of charge (None after bisection).
    """

    fermi_level: float
    vbm: float
    cbm: float
    gap: float
    is_insulator: bool
    n_electrons: float
    n_factorizations: int
    nearby: np.ndarray | None = None


def _eigsh(pen: UpperPencil, channel: int, n_bands: int, sigma: float, vectors: bool):
    n = pen.n
    if not 0 < n_bands < n - 1:
        raise ValueError(f"n_bands must be in 1..{n - 2} for a {n} x {n} problem")
    fac = factorize_upper(pen.shifted(sigma, channel), inertia=False)  # solves only
    if fac is None:
        raise RuntimeError(f"H - sigma S is singular at sigma = {sigma} eV")
    out = spla.eigsh(pen.operator("h", channel), k=n_bands, M=pen.operator("s"), sigma=sigma,
                     which="LM", OPinv=fac.operator(), return_eigenvectors=vectors)
    e, v = out if vectors else (out, None)
    order = np.argsort(e.real)
    return e.real[order], (None if v is None else v[:, order])


def solve_sparse(hs: HSData, kpt, sigma: float, n_bands: int = 20,
                 return_vectors: bool = False) -> SparseSolution:
    """Eigenvalues of H(k) C = e S(k) C nearest ``sigma`` by sparse shift-invert.

    Parameters
    ----------
    hs : HSData
        Data with H and S.
    kpt : array_like, shape (3,)
        Fractional k-point.
    sigma : float
        Shift in eV (typically the Fermi level).
    n_bands : int
        Number of eigenvalues per spin channel.
    return_vectors : bool
        Also return eigenvectors (S-orthonormal).

    Returns
    -------
    SparseSolution
        Sorted eigenvalues (nspins, n_bands) in eV.
    """
    pen = pencil_of(hs, kpt)
    res = [_eigsh(pen, c, n_bands, sigma, return_vectors) for c in range(len(pen.h))]
    evals = np.stack([r[0] for r in res])
    evecs = np.stack([r[1] for r in res]) if return_vectors else None
    return SparseSolution(np.asarray(kpt, float).reshape(3), float(sigma), evals, evecs)


def count_shifted(shifted, energy: float) -> int:
    """Count the negative pivots of ``shifted(E)`` (an upper triangle), E nudged off levels.

    An energy that hits an eigenvalue (a singular factor) is nudged up by a relative
    1e-10 * 4^k and retried.
    """
    scale = max(1.0, abs(energy))
    for attempt in range(6):
        e = energy + (0 if attempt == 0 else scale * 1e-10 * 4.0**attempt)
        fac = factorize_upper(shifted(e))
        if fac is not None:
            return fac.negatives
    raise RuntimeError(f"inertia count failed at E = {energy} eV (singular pivots)")


def count_states_below(hs: HSData, energy: float, kpt=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Count the eigenvalues below ``energy`` (eV) per spin channel at one k-point.

    Uses a sparse LDL^T inertia count of ``H(k) - E S(k)`` (see module docstring).

    Returns
    -------
    ndarray, shape (nspins,), int
        States (not electrons) below ``energy`` in each channel.
    """
    pen = pencil_of(hs, kpt)
    return np.array([count_shifted(lambda e, c=c: pen.shifted(e, c), energy)
                     for c in range(len(pen.h))], dtype=np.int64)


class _Counter:
    """Weighted electron count ``deg * sum_k w_k N_k(E)`` with cached Bloch matrices."""

    def __init__(self, hs: HSData, kpts: np.ndarray, weights: np.ndarray):
        self.mats = [pencil_of(hs, k) for k in kpts]
        self.weights = weights
        self.deg = spin_degeneracy(hs.spin)
        self.calls = 0

    def __call__(self, energy: float) -> float:
        total = 0.0
        for w, pen in zip(self.weights, self.mats, strict=True):
            for c in range(len(pen.h)):
                total += w * count_shifted(lambda e, c=c, pen=pen: pen.shifted(e, c), energy)
                self.calls += 1
        return self.deg * total

    def nearest(self, energy: float) -> tuple[float, float]:
        """Highest eigenvalue below and lowest above ``energy`` over all k and channels."""
        below, above = -math.inf, math.inf
        for pen in self.mats:
            for c in range(len(pen.h)):
                m = min(6, pen.n - 2)
                while True:
                    e = _eigsh_safe(pen, c, m, energy)
                    lo, hi = e[e < energy], e[e > energy]
                    if (len(lo) and len(hi)) or m >= pen.n - 2:
                        break
                    m = min(2 * m, pen.n - 2)
                below = max(below, lo.max(initial=-math.inf))
                above = min(above, hi.min(initial=math.inf))
        return below, above


def _eigsh_safe(pen: UpperPencil, channel: int, m: int, sigma: float) -> np.ndarray:
    """Eigenvalues nearest ``sigma``; nudges sigma if it is exactly an eigenvalue."""
    for attempt in range(4):
        try:
            return _eigsh(pen, channel, m, sigma + attempt * 1e-9 * max(1.0, abs(sigma)),
                          False)[0]
        except RuntimeError:
            continue
    raise RuntimeError(f"shift-invert at {sigma} eV failed (singular H - sigma S)")


def _bracket(count: _Counter, n_e: float, guess: float, step: float, tol_c: float):
    lo, hi = guess - step, guess + step
    while count(lo) >= n_e - tol_c:
        lo -= step
        step *= 2
    while count(hi) < n_e - tol_c:
        hi += step
        step *= 2
    return lo, hi


def _guess(hs: HSData, pen: UpperPencil) -> float:
    if math.isfinite(hs.fermi_level):
        return float(hs.fermi_level)
    diag = pen.indptr[:-1]  # the diagonal is stored first in every row of the triangle
    return float(np.median(pen.h[0][diag].real / pen.s[diag].real))


def _window(pen: UpperPencil, energy: float, m: int):
    """Inertia count at ``energy`` and the m eigenvalues nearest it, from ONE factorisation.

    Returns ``(count, eigenvalues ascending)`` or None when the factorisation pivoted or
    ``energy`` sits within ~1e-8 of an eigenvalue (the count would be unreliable).
    """
    fac = factorize_upper(pen.shifted(energy))
    if fac is None:
        return None
    count, op = fac.negatives, fac.operator()
    try:
        ev = spla.eigsh(pen.operator("h"), k=m, M=pen.operator("s"), sigma=energy, which="LM",
                        OPinv=op, return_eigenvectors=False)
    except (spla.ArpackNoConvergence, RuntimeError):
        return None
    ev = np.sort(ev.real)
    if np.min(np.abs(ev - energy)) < 1e-8 * max(1.0, abs(energy)):
        return None
    return count, ev


def _next_energy(lower: tuple, upper: tuple, target: float, ev: np.ndarray) -> float:
    """Next trial E: interpolate the state index between the bracketing points, else step."""
    if math.isfinite(lower[0]) and math.isfinite(upper[0]):
        (e0, i0), (e1, i1) = lower, upper
        return e0 + (target - i0) * (e1 - e0) / (i1 - i0)
    spacing = max((ev[-1] - ev[0]) / max(len(ev) - 1, 1), 1e-6)  # mean level spacing
    if math.isfinite(lower[0]):
        return lower[0] + (target - lower[1] + len(ev) // 2) * spacing
    return upper[0] - (upper[1] - target + len(ev) // 2) * spacing


def _fermi_window(pen: UpperPencil, target: float, guess: float, gap_tol: float, n_e: float,
                  window: int = 24, max_iter: int = 12) -> tuple[SparseFermi | None, int]:
    """Fermi level at one k-point and spin channel by windows of known global index.

    The inertia count N(E) gives the global index of the window's eigenvalues (the
    ones below E are states N-1, N-2, ...), so once the highest occupied state (index
    ``ceil(target) - 1``) and the next one fall in the window, E_F follows with no
    bisection. Otherwise E jumps by the missing count times the window's mean level
    spacing, or, once both sides are known, interpolates the state index between
    them. One factorisation per step; returns (None, factorisations) if it does
    not converge (the caller then bisects).
    """
    m = min(window, pen.n - 2)
    integer = abs(target - round(target)) < 1e-9
    homo = math.ceil(target - 1e-9) - 1  # global index of the highest (partly) filled state
    need = (homo, homo + 1) if integer else (homo, homo)
    energy, lower, upper = guess, (-math.inf, -1), (math.inf, pen.n)
    for calls in range(1, max_iter + 1):
        got = _window(pen, energy, m)
        if got is None:  # on an eigenvalue or a pivoting factorisation: nudge
            energy += 1e-6 * max(1.0, abs(energy)) * calls
            continue
        count, ev = got
        first = count - int(np.count_nonzero(ev < energy))  # global index of ev[0]
        last = first + len(ev) - 1
        if first <= need[0] and need[1] <= last:
            vbm, cbm = ev[need[0] - first], ev[need[1] - first]
            if cbm - vbm > gap_tol:
                return SparseFermi(0.5 * (vbm + cbm), vbm, cbm, cbm - vbm, True, n_e, calls,
                                   ev), calls
            return SparseFermi(0.5 * (vbm + cbm), math.nan, math.nan, math.nan, False, n_e,
                               calls, ev), calls
        # known (energy, global index) points on either side of the missing states
        if need[1] > last:
            lower = max(lower, (ev[-1], last))
        else:
            upper = min(upper, (ev[0], first))
        energy = _next_energy(lower, upper, 0.5 * (need[0] + need[1]), ev)
    return None, max_iter


def fermi_level_sparse(hs: HSData, n_electrons: float | None = None, kpts=None, weights=None,
                       tol: float = 1e-5, step: float = 2.0,
                       gap_tol: float = 1e-6, window: int = 24,
                       guess: float | None = None) -> SparseFermi:
    """Zero-temperature Fermi level of a large cell by sparse inertia counting.

    Parameters
    ----------
    hs : HSData
        Data with H and S.
    n_electrons : float, optional
        Valence electrons per cell (default ``hs.n_electrons``).
    kpts : array_like, shape (nk, 3), optional
        Fractional k-points (default: Gamma only, the usual choice for 10^4 atoms).
    weights : array_like, shape (nk,), optional
        k-point weights (normalised to 1; default uniform).
    tol : float
        Bisection tolerance on E_F for metals, eV.
    step : float
        Initial half-width of the search bracket, eV.
    gap_tol : float
        Smallest band-edge separation (eV) reported as a gap.
    window : int
        With one k-point and one spin channel, first try the windowed search: each
        factorisation of ``H - E S`` gives both the count N(E) and the ``window``
        eigenvalues nearest E (so their global indices), and E jumps to the missing
        states by the local level spacing (a few factorisations instead of ~20
        bisection steps). 0 disables it; bisection is the fallback.
    guess : float, optional
        Starting energy (eV), e.g. the E_F of a small commensurate cell predicted by the
        same model (a moire cell's E_F is within tens of meV of it); default the median
        of diag(H) / diag(S) at the first k-point.

    Returns
    -------
    SparseFermi
        E_F (mid-gap when the count lands in a gap), band edges and cost.
    """
    n_e = float(hs.n_electrons if n_electrons is None else n_electrons)
    if not math.isfinite(n_e):
        raise ValueError("the electron count is unknown: pass n_electrons")
    kpts = np.zeros((1, 3)) if kpts is None else np.atleast_2d(np.asarray(kpts, float))
    w = np.full(len(kpts), 1.0 / len(kpts)) if weights is None else np.asarray(weights, float)
    count = _Counter(hs, kpts, w / w.sum())
    guess = _guess(hs, count.mats[0]) if guess is None else float(guess)
    if len(kpts) == 1 and len(count.mats[0].h) == 1 and window:
        res, count.calls = _fermi_window(count.mats[0], n_e / count.deg, guess, gap_tol, n_e,
                                         window)
        if res is not None:
            return res
    return _fermi_bisect(count, n_e, guess, tol, step, gap_tol)


def _fermi_bisect(count: _Counter, n_e: float, guess: float, tol: float, step: float,
                  gap_tol: float) -> SparseFermi:
    """Bisection on the zero-temperature electron count (see :func:`fermi_level_sparse`)."""
    tol_c = 1e-8 * max(1.0, n_e)
    lo, hi = _bracket(count, n_e, guess, step, tol_c)
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        c = count(mid)
        if abs(c - n_e) <= tol_c:
            vbm, cbm = count.nearest(mid)
            # confirm away from every eigenvalue (counts within ~1e-8 eV of one are unreliable)
            if cbm - vbm > gap_tol and abs(count(0.5 * (vbm + cbm)) - n_e) <= tol_c:
                ef = 0.5 * (vbm + cbm)
                return SparseFermi(ef, vbm, cbm, cbm - vbm, True, n_e, count.calls)
            # a false count: mid sits on the Fermi level itself, so either side converges there
            c = n_e + 2 * tol_c
        lo, hi = (mid, hi) if c < n_e else (lo, mid)
    ef = 0.5 * (lo + hi)
    return SparseFermi(ef, math.nan, math.nan, math.nan, False, n_e, count.calls)
