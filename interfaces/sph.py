"""Real spherical harmonics, Wigner D matrices and real Gaunt coefficients (numpy only).

All in the internal convention: Wikipedia real spherical harmonics, m = -l..l, no
Condon-Shortley phase, orthonormal on the unit sphere (p = sqrt(3/4pi) (y, z, x)/r).
They match e3nn's ``spherical_harmonics`` fed with (y, z, x) up to normalisation, and
:func:`wigner_d` matches ``e3nn.o3.Irreps(...).D_from_matrix(P @ Q @ P.T)``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import special

__all__ = ["real_sph_harm", "wigner_d", "gaunt", "orbital_rotation"]


def real_sph_harm(l_val: int, vectors: np.ndarray) -> np.ndarray:
    """Real spherical harmonics of degree ``l`` at directions ``vectors``.

    Parameters
    ----------
    l_val : int
        Degree l.
    vectors : ndarray, shape (..., 3)
        Cartesian (x, y, z) vectors; only their direction matters (zero -> +z).

    Returns
    -------
    ndarray, shape (..., 2l+1)
        Orthonormal real harmonics, m = -l..l.
    """
    v = np.asarray(vectors, dtype=np.float64)
    r = np.linalg.norm(v, axis=-1)
    safe = np.where(r > 0, r, 1.0)
    cos_t = np.where(r > 0, v[..., 2] / safe, 1.0)
    theta = np.arccos(np.clip(cos_t, -1.0, 1.0))
    phi = np.arctan2(v[..., 1], v[..., 0])
    out = np.empty(v.shape[:-1] + (2 * l_val + 1,))
    for m in range(0, l_val + 1):
        y = special.sph_harm_y(l_val, m, theta, phi)  # complex, Condon-Shortley phase included
        if m == 0:
            out[..., l_val] = y.real
        else:
            out[..., l_val + m] = np.sqrt(2.0) * (-1) ** m * y.real
            out[..., l_val - m] = np.sqrt(2.0) * (-1) ** m * y.imag
    return out


@lru_cache(maxsize=None)
def _fit_points(l_val: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1234 + l_val)
    pts = rng.normal(size=(4 * (2 * l_val + 1) + 8, 3))
    return pts, np.linalg.pinv(real_sph_harm(l_val, pts))


def wigner_d(l_val: int, rotation: np.ndarray) -> np.ndarray:
    """Representation matrix D^l(Q) of a Cartesian 3x3 orthogonal matrix Q.

    Defined by ``Y_l(Q r) = D^l(Q) Y_l(r)`` (improper Q included: inversion gives
    (-1)^l). Blocks then rotate as ``H' = D^{l_i} H D^{l_j}.T``.
    """
    q = np.asarray(rotation, dtype=np.float64)
    pts, pinv = _fit_points(l_val)
    # Y(Q r) = D Y(r) for all r  ->  Y(Q r)^T = Y(r)^T D^T  ->  D^T = pinv(Y(r)^T) Y(Q r)^T
    return (pinv @ real_sph_harm(l_val, pts @ q.T)).T


def orbital_rotation(shells, rotation: np.ndarray) -> np.ndarray:
    """Block-diagonal D over the shells of one atom, shape (n_orb, n_orb)."""
    blocks = [wigner_d(l_val, rotation) for l_val in shells]
    n = sum(b.shape[0] for b in blocks)
    out = np.zeros((n, n))
    k = 0
    for b in blocks:
        out[k:k + len(b), k:k + len(b)] = b
        k += len(b)
    return out


@lru_cache(maxsize=None)
def _quadrature(order: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = np.polynomial.legendre.leggauss(order)
    phi = 2 * np.pi * np.arange(2 * order) / (2 * order)
    ct, ph = np.meshgrid(x, phi, indexing="ij")
    st = np.sqrt(1 - ct**2)
    pts = np.stack([st * np.cos(ph), st * np.sin(ph), ct], axis=-1).reshape(-1, 3)
    wts = (w[:, None] * np.full(phi.shape, 2 * np.pi / (2 * order))[None, :]).reshape(-1)
    return pts, wts


@lru_cache(maxsize=None)
def gaunt(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real Gaunt coefficients ``G[m1, m2, m3] = int Y_l1m1 Y_l2m2 Y_l3m3 dOmega``.

    Exact (Gauss-Legendre x uniform-phi quadrature of sufficient order), shape
    (2l1+1, 2l2+1, 2l3+1). Zero unless l1 + l2 + l3 is even and the triangle rule holds.
    """
    pts, wts = _quadrature((l1 + l2 + l3) // 2 + 2)
    y1, y2, y3 = (real_sph_harm(l_val, pts) for l_val in (l1, l2, l3))
    g = np.einsum("p,pa,pb,pc->abc", wts, y1, y2, y3)
    g[np.abs(g) < 1e-14] = 0.0
    g.setflags(write=False)
    return g
