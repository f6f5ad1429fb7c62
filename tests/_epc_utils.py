"""Test helpers for tests/test_epc.py: a 1-D Gaussian toy with grid-exact <m|dV|n>, and a
commensurate frozen-phonon supercell for the toy tight-binding model."""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

# ------------------------------------------------------------ 1-D Gaussian toy (docs/epc.md 9)
X0 = np.array([-2.4, 0.3, 2.9])  # atom positions (bohr)
Z = np.array([1.5, 2.0, 1.2])  # well depths (Hartree)
B = np.array([0.6, 0.5, 0.7])  # well widths (bohr^-2)
EXPONENTS = (0.25, 1.0)  # two exponents for s and p
GRID = np.linspace(-22.0, 22.0, 8801)


def _basis(x0: np.ndarray):
    """Values and derivatives of the 12 basis functions on the grid, [12, n_grid] each."""
    f, df, owner = [], [], []
    for a, xa in enumerate(x0):
        y = GRID - xa
        for al in EXPONENTS:
            g = np.exp(-al * y * y)
            for p in (0, 1):
                v = y**p * g
                dv = (p * y ** max(p - 1, 0) - 2 * al * y ** (p + 1)) * g
                n = np.sqrt(np.trapezoid(v * v, GRID))
                f.append(v / n)
                df.append(dv / n)
                owner.append(a)
    return np.array(f), np.array(df), np.array(owner)


def potential(x0: np.ndarray) -> np.ndarray:
    """Non-self-consistent sum of atomic Gaussian wells on the grid."""
    return -(Z[:, None] * np.exp(-B[:, None] * (GRID[None] - x0[:, None]) ** 2)).sum(0)


def _integral(a: np.ndarray, b: np.ndarray, w=None) -> np.ndarray:
    w = np.ones_like(GRID) if w is None else w
    return np.trapezoid(a[:, None, :] * b[None, :, :] * w, GRID, axis=-1)


def hs_1d(x0: np.ndarray):
    """(H, S) matrices of the 1-D toy at atom positions ``x0`` (Hartree)."""
    f, df, _ = _basis(x0)
    return 0.5 * _integral(df, df) + _integral(f, f, potential(x0)), _integral(f, f)


def toy_1d(atom: int = 1, delta: float = 1e-3) -> dict:
    """Everything for the eq. (2)/(3) vs exact comparison when ``atom`` moves."""
    f, df, owner = _basis(X0)
    h, s = hs_1d(X0)
    e, c = sla.eigh(h, s)
    shift = np.zeros(3)
    shift[atom] = delta
    hp, sp = hs_1d(X0 + shift)
    hm, sm = hs_1d(X0 - shift)
    dh, ds = (hp - hm) / (2 * delta), (sp - sm) / (2 * delta)
    d = np.zeros_like(h)
    rows = owner == atom
    d[rows] = -_integral(df[rows], f)  # <d phi_mu / dX | phi_nu> = -<phi_mu' | phi_nu>
    y = GRID - X0[atom]
    dv = -2 * B[atom] * Z[atom] * y * np.exp(-B[atom] * y * y)  # dV/dX_atom
    psi = c.T @ f
    exact = _integral(psi, psi, dv)
    return {"h": h, "s": s, "e": e, "c": c, "dh": dh, "ds": ds, "d": d, "exact": exact,
            "onsite_rows": rows}


# -------------------------------------------------- commensurate frozen phonon (docs/epc.md 5)
def supercell_labels(prim, sc) -> tuple[np.ndarray, np.ndarray]:
    """(kappa, R) of every supercell atom (positions compared modulo the primitive lattice)."""
    inv = np.linalg.inv(np.asarray(prim.cell))
    frac = sc.positions @ inv  # [n_sc, 3]
    tau = prim.positions @ inv
    diff = frac[:, None, :] - tau[None]  # [n_sc, N_uc, 3]
    ok = np.all(np.abs(diff - np.rint(diff)) < 1e-6, axis=-1)
    kappa = np.argmax(ok, axis=1)
    assert ok.any(axis=1).all()
    return kappa, np.rint(diff[np.arange(len(sc)), kappa]).astype(int)


def real_mode_basis(w: np.ndarray) -> np.ndarray:
    """Real orthonormal basis of the span of complex vectors ``w`` (columns), closed under
    conjugation (a real dynamical matrix subspace): [n, dim]."""
    u, sv, _ = np.linalg.svd(np.concatenate([w.real, w.imag], axis=1))
    return u[:, : w.shape[1]]


def first_order_splitting(provider, sc, disp: np.ndarray, kpt_sc, energy: float,
                          amplitude: float = 1e-3, tol: float = 1e-5) -> np.ndarray:
    """Eigenvalues of C^dag (dH - eps dS) C on the degenerate level ``energy`` of the
    supercell at ``kpt_sc`` under the displacement pattern ``disp`` ([n_sc, 3], eV/Angstrom)."""
    from ase_deeph.solvers import bloch_matrices

    def hk(x):
        a = sc.copy()
        a.positions += x * disp
        bm = bloch_matrices(provider(a), [kpt_sc])
        return bm.h[0, 0], bm.s[0]

    h0, s0 = hk(0.0)
    e, c = sla.eigh(h0, s0)
    sel = np.abs(e - energy) < tol
    hp, sp = hk(amplitude)
    hm, sm = hk(-amplitude)
    dh, ds = (hp - hm) / (2 * amplitude), (sp - sm) / (2 * amplitude)
    cd = c[:, sel]
    w = cd.conj().T @ (dh - energy * ds) @ cd
    return np.linalg.eigvalsh(0.5 * (w + w.conj().T)), int(sel.sum())
