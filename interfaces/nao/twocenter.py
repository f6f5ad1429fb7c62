"""Two-centre overlap integrals of numerical atomic orbitals, and their gradients.

For phi_1 = R_1(r) Y_{l1 m1}(r_hat) at the origin and phi_2 = R_2 Y_{l2 m2} centred at d,

    S(d) = <phi_1 | phi_2> = sum_{L M} G(l1 m1, l2 m2, L M) I_L(|d|) Y_LM(d_hat),
    I_L(d) = 8 (-1)^{(l1 - l2 - L)/2} int_0^inf k^2 R~_1(k) R~_2(k) j_L(k d) dk,
    R~_l(k) = int_0^rc r^2 R(r) j_l(k r) dr,

with G the real Gaunt coefficients (:func:`interfaces.sph.gaunt`) and real spherical
harmonics in the internal convention. This follows from Parseval's theorem with
``phi~(k) = 4 pi (-i)^l R~_l(k) Y_lm(k_hat)`` and the plane-wave expansion of
``exp(-i k.d)``; l1 + l2 + L is even, so the phase is a real sign.

R~ is a Gauss-Legendre quadrature over every interval of the file's radial grid (a
cubic spline of the tabulated R); the k integral is a trapezoid rule on a uniform grid
(the integrand is even in k and of finite exponential type, so the rule converges
spectrally up to the k_max truncation). I_L and dI_L/dd are tabulated on a fine d grid
once per pair of radial functions and interpolated by cubic Hermite splines.

Gradients: ``D^a_{mu nu} = <d phi_mu / d tau^a | phi_nu>`` for a displacement of the
centre tau of phi_mu (the bra) alone, so ``D = -dS/dd`` off-site. The on-site block
(same atom, R = 0) comes from the radial functions directly::

    <d_a phi_1 | phi_2> = sqrt(4 pi / 3) G(l1, l2, 1)[m1, m2, M(a)] *
        int r^2 R_2 (R_1' - l1 R_1 / r) dr          (l2 = l1 + 1)
        int r^2 R_2 (R_1' + (l1 + 1) R_1 / r) dr    (l2 = l1 - 1)

and ``D_on = -<d_a phi_1 | phi_2>`` (antisymmetric; zero unless l2 = l1 +- 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
from scipy.interpolate import CubicHermiteSpline, CubicSpline
from scipy.special import spherical_jn

from interfaces.nao.radial import RadialBasis, RadialOrbital
from interfaces.sph import gaunt, real_sph_harm

__all__ = ["TwoCenterSettings", "TwoCenterTables", "PairTable", "solid_harmonics",
           "onsite_gradient"]

#: Internal m index of the l = 1 harmonic proportional to x, y, z (p = y, z, x).
_P_INDEX = np.array([2, 0, 1])


@dataclass(frozen=True)
class TwoCenterSettings:
    """Numerical parameters of the tabulation (all lengths in Angstrom).

    The defaults reproduce a far tighter tabulation (k_max 250, 3x oversampling, d step
    0.004, 6 Gauss points) to about 4e-9 in S and 2e-8 Angstrom^-1 in dS/dd for the
    SIESTA and ABACUS sample bases.

    Parameters
    ----------
    k_max : float
        Upper limit of the k integrals (Angstrom^-1).
    k_oversampling : float
        k step = pi / (oversampling * (rc_1 + rc_2)_max); 1 is the aliasing limit.
    d_step : float
        Spacing of the d grid on which I_L(d) is tabulated.
    n_gauss : int
        Gauss-Legendre points per interval of the radial grid of the files.
    """

    k_max: float = 100.0
    k_oversampling: float = 1.5
    d_step: float = 0.01
    n_gauss: int = 3


# ------------------------------------------------------------------ harmonics
@lru_cache(maxsize=None)
def _monomials(l_val: int) -> np.ndarray:
    """Exponents (a, b, c) with a + b + c = l, shape (n_mono, 3)."""
    return np.array([(a, b, l_val - a - b) for a in range(l_val, -1, -1)
                     for b in range(l_val - a, -1, -1)], dtype=np.int64).reshape(-1, 3)


@lru_cache(maxsize=None)
def _solid_coefficients(l_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Monomial coefficients C (n_mono(l), 2l+1) of r^l Y_lm and G (3, n_mono(l-1), 2l+1) of grad.

    C is fitted on random unit vectors (homogeneous polynomials of degree l are linearly
    independent on the sphere, so the fit is exact to rounding); G follows by differentiation.
    """
    mono = _monomials(l_val)
    rng = np.random.default_rng(7 + l_val)
    pts = rng.normal(size=(3 * len(mono) + 10, 3))
    pts /= np.linalg.norm(pts, axis=1, keepdims=True)
    a = np.prod(pts[:, None, :] ** mono[None, :, :], axis=2)
    coef = np.linalg.lstsq(a, real_sph_harm(l_val, pts), rcond=None)[0]
    coef[np.abs(coef) < 1e-12] = 0.0
    lower = {tuple(m): k for k, m in enumerate(_monomials(l_val - 1))} if l_val else {}
    grad = np.zeros((3, len(lower), 2 * l_val + 1))
    for k, m in enumerate(mono):
        for ax in np.flatnonzero(m):
            dm = m.copy()
            dm[ax] -= 1
            grad[ax, lower[tuple(dm)]] += m[ax] * coef[k]
    return coef, grad


def _powers(u: np.ndarray, l_max: int) -> np.ndarray:
    """u[..., ax] ** p for p = 0..l_max, shape (l_max + 1, n, 3)."""
    out = np.ones((l_max + 1,) + u.shape)
    for p in range(1, l_max + 1):
        out[p] = out[p - 1] * u
    return out


def solid_harmonics(l_val: int, unit: np.ndarray, gradient: bool = False):
    """Y_lm(u) for unit vectors u (n, 3) -> (n, 2l+1); with ``gradient`` also grad of r^l Y_lm at u.

    The gradient of the solid harmonic r^l Y_lm(r_hat), evaluated at the unit vector,
    has shape (3, n, 2l+1). Both are exact polynomials (no angle functions).
    """
    coef, grad = _solid_coefficients(l_val)
    pw = _powers(unit, l_val)
    mono = _monomials(l_val)
    feats = pw[mono[:, 0], :, 0] * pw[mono[:, 1], :, 1] * pw[mono[:, 2], :, 2]  # [n_mono, n]
    y = feats.T @ coef
    if not gradient:
        return y
    if l_val == 0:
        return y, np.zeros((3,) + y.shape)
    low = _monomials(l_val - 1)
    f_low = pw[low[:, 0], :, 0] * pw[low[:, 1], :, 1] * pw[low[:, 2], :, 2]
    return y, np.einsum("mn,amk->ank", f_low, grad)


# ------------------------------------------------------------------ radial parts
def _quadrature(orb: RadialOrbital, n_gauss: int) -> tuple[np.ndarray, np.ndarray, CubicSpline]:
    """Gauss points/weights over every interval of the orbital's grid, and its spline."""
    x, w = np.polynomial.legendre.leggauss(n_gauss)
    mid, half = 0.5 * (orb.r[1:] + orb.r[:-1]), 0.5 * np.diff(orb.r)
    pts = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    return pts, (half[:, None] * w[None, :]).ravel(), CubicSpline(orb.r, orb.values)


def _bessel_transform(orb: RadialOrbital, k: np.ndarray, n_gauss: int) -> np.ndarray:
    """R~_l(k) = int r^2 R(r) j_l(k r) dr on the k grid, shape (n_k,)."""
    pts, wts, spline = _quadrature(orb, n_gauss)
    return spherical_jn(orb.l, np.outer(k, pts)) @ (wts * pts**2 * spline(pts))


def onsite_gradient(orbitals_a, orbitals_b=None) -> np.ndarray:
    """Gradient block D^a = <d phi_mu / d tau^a | phi_nu> of two coincident centres.

    Parameters
    ----------
    orbitals_a, orbitals_b : sequence of RadialOrbital
        Radial functions of the bra and ket atom in internal shell order (``orbitals_b``
        defaults to ``orbitals_a``: the on-site block of one atom).

    Returns
    -------
    ndarray, shape (3, n_a, n_b)
        Angstrom^-1; antisymmetric for one atom, non-zero only between l and l +- 1.
    """
    orbitals_b = orbitals_a if orbitals_b is None else orbitals_b
    sa = np.concatenate([[0], np.cumsum([2 * o.l + 1 for o in orbitals_a])])
    sb = np.concatenate([[0], np.cumsum([2 * o.l + 1 for o in orbitals_b])])
    out = np.zeros((3, sa[-1], sb[-1]))
    for a, o1 in enumerate(orbitals_a):
        pts, wts, s1 = _quadrature(o1, 6)
        for b, o2 in enumerate(orbitals_b):
            if abs(o1.l - o2.l) != 1:
                continue
            shift = -o1.l if o2.l == o1.l + 1 else o1.l + 1
            r2 = CubicSpline(o2.r, o2.values)(np.minimum(pts, o2.cutoff)) * (pts <= o2.cutoff)
            radial = np.sum(wts * pts**2 * r2 * (s1(pts, 1) + shift * s1(pts) / pts))
            ang = np.sqrt(4 * np.pi / 3) * gaunt(o1.l, o2.l, 1)[:, :, _P_INDEX]  # [m1, m2, a]
            out[:, sa[a]:sa[a + 1], sb[b]:sb[b + 1]] = -radial * ang.transpose(2, 0, 1)
    return out


# ------------------------------------------------------------------ tables
class PairTable(NamedTuple):
    """Tables of one ordered element pair (see :meth:`TwoCenterTables.pair`)."""

    spline: CubicHermiteSpline  # I_c(d) of every column c, d in [0, d_max] (Angstrom)
    columns: list  # (bra shell a, ket shell b, L) of every column
    weights: np.ndarray  # [n_feat, n_a * n_b] Gaunt coefficients, see _weights
    d_max: float  # rc_a + rc_b (Angstrom); S = 0 beyond
    onsite: np.ndarray  # [3, n_a, n_b] gradient block D at d = 0 (onsite_gradient)


class TwoCenterTables:
    """Tabulated I_L(d) for every pair of radial functions of a set of element bases.

    Parameters
    ----------
    basis : dict of str to RadialBasis
        Per element symbol.
    settings : TwoCenterSettings, optional
        Numerical parameters.
    """

    def __init__(self, basis: dict[str, RadialBasis], settings: TwoCenterSettings | None = None):
        self.basis = dict(basis)
        self.settings = settings or TwoCenterSettings()
        rc_pair = 2 * max(b.cutoff for b in self.basis.values())
        dk = np.pi / (self.settings.k_oversampling * rc_pair)
        self.k = np.arange(0.0, self.settings.k_max + dk, dk)  # [n_k]
        wk = np.full(self.k.shape, dk)
        wk[[0, -1]] *= 0.5
        self._wk = wk * self.k**2
        self._transforms = {
            (el, s): _bessel_transform(o, self.k, self.settings.n_gauss)
            for el, b in self.basis.items() for s, o in enumerate(b.sorted_orbitals)
        }
        self._pairs: dict[tuple[str, str], PairTable] = {}

    def pair(self, el_a: str, el_b: str) -> PairTable:
        """Tables of the element pair (bra ``el_a``, ket ``el_b``), built on first use."""
        key = (el_a, el_b)
        if key not in self._pairs:
            self._pairs[key] = self._build_pair(el_a, el_b)
        return self._pairs[key]

    def _build_pair(self, el_a: str, el_b: str) -> PairTable:
        oa, ob = self.basis[el_a].sorted_orbitals, self.basis[el_b].sorted_orbitals
        d_max = self.basis[el_a].cutoff + self.basis[el_b].cutoff
        n_d = int(np.ceil(d_max / self.settings.d_step)) + 1
        d = np.linspace(0.0, d_max, n_d)  # [n_d]
        cols = [(a, b, big_l) for a, o1 in enumerate(oa) for b, o2 in enumerate(ob)
                for big_l in range(abs(o1.l - o2.l), o1.l + o2.l + 1, 2)]
        prod = np.stack([  # [n_k, n_cols]
            8.0 * (-1) ** ((oa[a].l - ob[b].l - big_l) // 2)
            * self._transforms[(el_a, a)] * self._transforms[(el_b, b)] * self._wk
            for a, b, big_l in cols], axis=1)
        val, der = np.zeros((n_d, len(cols))), np.zeros((n_d, len(cols)))
        kd = np.outer(d, self.k)
        for big_l in sorted({c[2] for c in cols}):
            sel = [n for n, c in enumerate(cols) if c[2] == big_l]
            val[:, sel] = spherical_jn(big_l, kd) @ prod[:, sel]
            der[:, sel] = (spherical_jn(big_l, kd, derivative=True) * self.k) @ prod[:, sel]
        spline = CubicHermiteSpline(d, val, der, extrapolate=False)
        return PairTable(spline, cols, self._weights(oa, ob, cols), d_max, onsite_gradient(oa, ob))

    @staticmethod
    def _weights(oa, ob, cols) -> np.ndarray:
        """W[(col, M), (m1, m2)] so that block_flat = features @ W, shape (n_feat, n_a * n_b)."""
        sa = np.concatenate([[0], np.cumsum([2 * o.l + 1 for o in oa])])
        sb = np.concatenate([[0], np.cumsum([2 * o.l + 1 for o in ob])])
        n_feat = sum(2 * c[2] + 1 for c in cols)
        w = np.zeros((n_feat, sa[-1], sb[-1]))
        pos = 0
        for a, b, big_l in cols:
            g = gaunt(oa[a].l, ob[b].l, big_l)  # [m1, m2, M]
            w[pos:pos + 2 * big_l + 1, sa[a]:sa[a + 1], sb[b]:sb[b + 1]] = g.transpose(2, 0, 1)
            pos += 2 * big_l + 1
        return w.reshape(n_feat, -1)

    def blocks(self, el_a: str, el_b: str, vectors: np.ndarray, gradient: bool = False):
        """Overlap blocks <phi_a, 0 | phi_b, d> for bond vectors d (n, 3) in Angstrom.

        Returns S of shape (n, n_a, n_b) and, with ``gradient``, also dS/dd of shape
        (3, n, n_a, n_b) (Angstrom^-1). At d = 0 (on-site) the gradient is the limit
        ``-D_on`` of :func:`onsite_gradient`.
        """
        tab = self.pair(el_a, el_b)
        vec = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
        dist = np.linalg.norm(vec, axis=1)  # [n]
        unit = np.where(dist[:, None] > 0, vec / np.where(dist > 0, dist, 1.0)[:, None],
                        np.array([0.0, 0.0, 1.0]))  # [n, 3]; +z for d = 0 (only L = 0 left)
        clipped, outside = np.minimum(dist, tab.d_max), dist >= tab.d_max
        val = tab.spline(clipped)  # [n, n_cols]
        val[outside] = 0.0
        der = None
        if gradient:
            der = tab.spline(clipped, 1)  # [n, n_cols]
            der[outside] = 0.0
        feats, grads = self._features(tab.columns, val, der, unit, dist)
        shape = (len(vec), self.basis[el_a].n_orbitals, self.basis[el_b].n_orbitals)
        s = (feats @ tab.weights).reshape(shape)
        if not gradient:
            return s
        ds = np.stack([(g @ tab.weights).reshape(shape) for g in grads])  # [3, n, n_a, n_b]
        ds[:, dist == 0] = -tab.onsite[:, None]
        return s, ds

    @staticmethod
    def _features(cols, tab, dtab, unit, dist):
        """Features I_c(d) Y_LM(u) (n, n_feat) and, if ``dtab`` is given, their d-gradients."""
        l_set = sorted({c[2] for c in cols})
        harm = {big_l: solid_harmonics(big_l, unit, gradient=dtab is not None) for big_l in l_set}
        parts, gparts = [], [[], [], []]
        inv_d = np.where(dist > 0, 1.0 / np.where(dist > 0, dist, 1.0), 0.0)
        for n, (_, _, big_l) in enumerate(cols):
            if dtab is None:
                parts.append(tab[:, n, None] * harm[big_l])
                continue
            y, gz = harm[big_l]
            parts.append(tab[:, n, None] * y)
            for ax in range(3):
                radial = dtab[:, n, None] * unit[:, ax, None] * y
                angular = (tab[:, n] * inv_d)[:, None] * (gz[ax] - big_l * y * unit[:, ax, None])
                gparts[ax].append(radial + angular)
        feats = np.concatenate(parts, axis=1)
        if dtab is None:
            return feats, None
        return feats, [np.concatenate(g, axis=1) for g in gparts]
