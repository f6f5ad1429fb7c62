"""Mode-resolved coupling, Eliashberg function, T_c and linewidths on BZ meshes (``docs/epc.md`` 7).

Conventions: N_F is the DOS at E_F per spin per primitive cell; BZ averages are
``(1/N_k) sum_k`` over Gamma-centred meshes; the q mesh must divide the k mesh so that k + q
stays on it (eigenpairs are reused). Double-delta formulas with Gaussian smearing::

    lambda_q,nu = 2 / (N_F omega) (1/N_k) sum_k sum_mn |g|^2 d(e_nk - E_F) d(e_mk+q - E_F)
    gamma_q,nu  = pi N_F omega^2 lambda_q,nu  (= 2 pi omega (1/N_k) sum |g|^2 d d)
    a2F(w)      = 1/2 (1/N_q) sum_q,nu omega lambda_q,nu d(w - omega_q,nu)
    lambda      = (1/N_q) sum lambda_q,nu,   omega_log = exp[(1/lambda) (1/N_q) sum lambda ln omega]

``gamma`` is EPW's ``Im Pi`` (sum over spinless states), i.e. the half width at half maximum
of a spin-degenerate metal. lambda, omega_log and omega_2 come from the mode sums (no
frequency smearing); a2F is tabulated on a grid with Gaussian width ``sigma_ph``.
Convergence: lambda converges slowly in the electron smearing ``sigma_el`` and the meshes;
scan sigma_el with growing meshes (QE example03 shows lambda(Al) from 0.21 to 0.40 across
0.07-0.7 eV) and report the plateau, never one coarse value.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from ase import units

from ase_deeph.epc.coupling import cartesian_elements, mode_elements, resolve_form
from ase_deeph.epc.derivatives import EPCDerivatives
from ase_deeph.epc.phonons import IMAGINARY_TOL, PhononModes, describe_unstable, phonon_modes
from ase_deeph.solvers import mesh_points, solve

__all__ = ["EliashbergResult", "eliashberg", "mcmillan_tc", "allen_dynes_tc", "gaussian"]


def gaussian(x: np.ndarray, sigma: float) -> np.ndarray:
    """Normalised Gaussian exp(-x^2 / 2 sigma^2) / (sigma sqrt(2 pi))."""
    return np.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))


def mcmillan_tc(lam, omega_log, mu_star):
    """McMillan T_c with the Allen-Dynes prefactor, in the unit of ``omega_log``.

    ``T_c = omega_log / 1.2 exp[-1.04 (1 + lam) / (lam - mu* (1 + 0.62 lam))]``; 0 where the
    denominator is not positive.
    """
    lam, mu = np.asarray(lam, dtype=float), np.asarray(mu_star, dtype=float)
    den = lam - mu * (1.0 + 0.62 * lam)
    with np.errstate(divide="ignore", invalid="ignore"):
        tc = omega_log / 1.2 * np.exp(-1.04 * (1.0 + lam) / den)
    return np.where(den > 0, tc, 0.0)


def allen_dynes_tc(lam, omega_log, omega_2, mu_star):
    """Full Allen-Dynes T_c = McMillan x f1 f2 (``docs/epc.md`` 7), unit of ``omega_log``."""
    lam, mu = np.asarray(lam, dtype=float), np.asarray(mu_star, dtype=float)
    l1 = 2.46 * (1.0 + 3.8 * mu)
    ratio = omega_2 / omega_log
    l2 = 1.82 * (1.0 + 6.3 * mu) * ratio
    f1 = (1.0 + (lam / l1) ** 1.5) ** (1.0 / 3.0)
    f2 = 1.0 + (ratio - 1.0) * lam**2 / (lam**2 + l2**2)
    return mcmillan_tc(lam, omega_log, mu) * f1 * f2


@dataclass(frozen=True)
class EliashbergResult:
    """Isotropic Eliashberg quantities on a q mesh.

    Attributes
    ----------
    modes : PhononModes
        Phonons on the q mesh (nq points).
    lambda_qnu : ndarray, shape (nq, n_modes)
        Mode coupling strength (dimensionless); 0 for soft modes.
    gamma_qnu : ndarray, shape (nq, n_modes)
        Linewidth gamma (HWHM convention, see module docstring) in meV.
    omega_grid, a2f : ndarray, shape (n_w,)
        Energy grid (meV) and alpha^2 F(omega) (dimensionless).
    lam, omega_log, omega_2 : float
        Total lambda; logarithmic and second-moment average frequencies (meV).
    n_f : float
        DOS at E_F per spin per cell, states/eV.
    fermi_level, sigma_el, sigma_ph : float
        E_F (eV), electron smearing (eV) and phonon smearing (meV).
    k_mesh, q_mesh : tuple of int
        Gamma-centred meshes.
    n_soft : int
        Number of (q, nu) modes skipped as soft/imaginary.
    form, onsite_d : str
        Matrix-element form used and on-site D status.
    n_unstable : int
        Of the skipped modes, those imaginary/unstable (:attr:`PhononModes.unstable`;
        excluded with a warning naming the q-points).
    fermi_in_gap : bool
        True when no band lies within ``window * sigma_el`` of E_F (an insulator with the
        computed, mid-gap E_F): then N_F = lambda = 0, with a warning.
    """

    modes: PhononModes
    lambda_qnu: np.ndarray
    gamma_qnu: np.ndarray
    omega_grid: np.ndarray
    a2f: np.ndarray
    lam: float
    omega_log: float
    omega_2: float
    n_f: float
    fermi_level: float
    sigma_el: float
    sigma_ph: float
    k_mesh: tuple
    q_mesh: tuple
    n_soft: int
    form: str
    onsite_d: str
    n_unstable: int = 0
    fermi_in_gap: bool = False

    def tc(self, mu_star: float = 0.1, formula: str = "mcmillan") -> float:
        """T_c in kelvin, ``formula`` "mcmillan" (Allen-Dynes prefactor) or "allen-dynes".

        0 when there is no coupling (lambda = 0, e.g. E_F in a gap).
        """
        if self.lam <= 0 or self.omega_log <= 0:
            return 0.0
        w_log_k = self.omega_log * 1e-3 / units.kB
        if formula == "mcmillan":
            return float(mcmillan_tc(self.lam, w_log_k, mu_star))
        return float(allen_dynes_tc(self.lam, w_log_k, self.omega_2 * 1e-3 / units.kB, mu_star))


def _mesh_index(q_frac: np.ndarray, mesh: np.ndarray) -> np.ndarray:
    """Index into a Gamma-centred C-order mesh of reduced points (wrapped)."""
    idx = np.mod(np.rint(q_frac * mesh).astype(np.int64), mesh)
    return (idx[..., 0] * mesh[1] + idx[..., 1]) * mesh[2] + idx[..., 2]


def _band_window(e: np.ndarray, e_f: float, width: float) -> np.ndarray:
    return np.flatnonzero(np.any(np.abs(e - e_f) < width, axis=0))


_CHUNK_BYTES = 2**27  # bound on the per-chunk Bloch-sum arrays


def _k_chunk(derivs: EPCDerivatives) -> int:
    n_uc, n = derivs.dh.shape[1], derivs.n_orb
    return max(1, int(_CHUNK_BYTES // (4 * 16 * 3 * n_uc * n * n)))


def _lambda_one_q(derivs, modes, iq, kpts, idx_kq, eig, form):
    """s_q,nu = (1/N_k) sum_k sum_mn |g_mn,nu|^2 w_m,k+q w_n,k (g in eV, w in 1/eV).

    Only k-points with a state near E_F at both k and k + q are evaluated, in chunks.
    """
    e_k, c_k, w_k = eig
    out = np.zeros(modes.n_modes)
    if w_k.size == 0:  # no band near E_F (insulator)
        return out
    tiny = 1e-10 * w_k.max()
    sel = np.flatnonzero((w_k > tiny).any(axis=1) & (w_k[idx_kq] > tiny).any(axis=1))
    step = _k_chunk(derivs)
    for start in range(0, len(sel), step):
        ks = sel[start:start + step]
        kq = idx_kq[ks]
        gc = cartesian_elements(derivs, kpts[ks], modes.qpoints[iq], c_k[ks], e_k[ks], c_k[kq],
                                e_k[kq], form)
        g = mode_elements(gc, modes, iq) * 1e-3  # [n_sel, n_modes, nb, nb] eV
        out += np.einsum("kvmn,km,kn->v", np.abs(g) ** 2, w_k[kq], w_k[ks])
    return out / len(kpts)


def eliashberg(derivs: EPCDerivatives, ph, k_mesh=(8, 8, 8), q_mesh=(4, 4, 4),
               sigma_el: float = 0.1, sigma_ph: float = 0.5, fermi_level: float | None = None,
               form: str | None = None, soft_cutoff: float = 2.0, n_omega: int = 400,
               window: float = 6.0, imag_tol: float = IMAGINARY_TOL) -> EliashbergResult:
    """lambda_q,nu, gamma_q,nu, alpha^2F, lambda, omega_log on Gamma-centred meshes.

    Parameters
    ----------
    derivs : EPCDerivatives
        Real-space derivatives.
    ph : phonopy.Phonopy
        With force constants; its primitive cell must be ``derivs.atoms``.
    k_mesh, q_mesh : tuple of int
        Gamma-centred meshes; each q_mesh entry must divide the k_mesh entry.
    sigma_el : float
        Gaussian width of the electron deltas, eV.
    sigma_ph : float
        Gaussian width of delta(omega - omega_q,nu) in alpha^2F, meV.
    fermi_level : float, optional
        E_F in eV; default from the electron count on the k mesh (zero temperature;
        mid-gap for an insulator, where N_F = lambda = 0 with a warning: set it to dope).
    form : str, optional
        Matrix-element form (see :func:`ase_deeph.epc.coupling.coupling`).
    soft_cutoff : float
        Modes below this (meV) are skipped and counted in ``n_soft``.
    n_omega : int
        Points of the alpha^2F grid.
    window : float
        Bands farther than ``window * sigma_el`` from E_F everywhere are dropped.
    imag_tol : float
        Frequencies below ``-imag_tol`` (meV) are imaginary: excluded, counted in
        ``n_unstable`` and named in a warning (:attr:`PhononModes.unstable`).

    Returns
    -------
    EliashbergResult
    """
    form = resolve_form(derivs, form)
    km, qm = np.asarray(k_mesh), np.asarray(q_mesh)
    if np.any(km % qm):
        raise ValueError(f"q_mesh {tuple(qm)} must divide k_mesh {tuple(km)}")
    kpts = mesh_points(tuple(km), gamma_centred=True)
    qpts = mesh_points(tuple(qm), gamma_centred=True)
    order = np.argsort(_mesh_index(kpts, km))
    kpts = kpts[order]  # now C-order mesh
    fermi_level, eig = _fermi_states(derivs, kpts, fermi_level, sigma_el, window * sigma_el)
    n_f = float(eig[2].sum() / len(kpts))
    modes = phonon_modes(ph, qpts, derivs.atoms, soft_cutoff, imag_tol)
    if modes.unstable.any():
        warnings.warn(f"eliashberg: {describe_unstable(modes, modes.unstable)} excluded from "
                      "lambda and alpha^2F (fix the force constants)", UserWarning, stacklevel=2)
    s = np.zeros((len(qpts), modes.n_modes))
    for iq, q in enumerate(qpts):
        idx_kq = _mesh_index(kpts + q, km)
        s[iq] = _lambda_one_q(derivs, modes, iq, kpts, idx_kq, eig, form)
    res = _finish(modes, s, n_f, fermi_level, sigma_el, sigma_ph, n_omega,
                  (tuple(map(int, km)), tuple(map(int, qm))), form, derivs.onsite_d)
    return replace(res, n_unstable=int(modes.unstable.sum()), fermi_in_gap=eig[0].shape[1] == 0)


def _fermi_states(derivs: EPCDerivatives, kpts: np.ndarray, fermi_level: float | None,
                  sigma_el: float, width: float) -> tuple[float, tuple]:
    """E_F and the states of the bands within ``width`` of it somewhere on the k mesh.

    Returns ``(E_F, (e_k [nk, nb], c_k [nk, n_orb, nb], w_k [nk, nb]))`` with ``w_k`` the
    Gaussian delta weights (1/eV); nb = 0, with a warning, when E_F lies in a gap.
    """
    sol = solve(derivs.hs0, kpts, return_vectors=True,
                ill_threshold=derivs.ill_threshold)
    e_all = sol.eigenvalues[0]
    if fermi_level is None:
        fermi_level = _computed_fermi(sol.eigenvalues, derivs.hs0.n_electrons)
    bands = _band_window(e_all, fermi_level, width)
    if len(bands) == 0:
        _warn_gap(e_all, fermi_level, width)
    e_k, c_k = e_all[:, bands], sol.eigenvectors[0][:, :, bands]
    w_k = gaussian(e_k - fermi_level, sigma_el)  # [nk, nb]
    return fermi_level, (e_k, c_k, w_k)


def _computed_fermi(eigenvalues: np.ndarray, n_electrons: float) -> float:
    """Zero-temperature E_F from the electron count (mid-gap for an insulator)."""
    from ase_deeph.solvers import fermi_level as fermi

    return float(fermi(eigenvalues, n_electrons).fermi_level)


def _warn_gap(e: np.ndarray, e_f: float, width: float) -> None:
    """Warn that no state lies within ``width`` of E_F (lambda = 0), naming the band edges."""
    below, above = e[e <= e_f], e[e > e_f]
    vbm = f"{below.max():.3f}" if below.size else "none"
    cbm = f"{above.min():.3f}" if above.size else "none"
    warnings.warn(f"eliashberg: E_F = {e_f:.3f} eV lies in a gap (highest state below "
                  f"{vbm} eV, lowest above {cbm} eV on the k mesh): no state within "
                  f"{width:.3f} eV (window * sigma_el), so N_F = lambda = 0. To dope, set "
                  "fermi_level (TOML: [eliashberg] fermi_level) inside a band.",
                  UserWarning, stacklevel=4)


def _finish(modes, s, n_f, e_f, sigma_el, sigma_ph, n_omega, meshes, form, onsite_d):
    """Build the result from s_q,nu = (1/N_k) sum |g|^2 d d (dimensionless)."""
    w = modes.energies_mev  # [nq, n_modes]
    soft = modes.soft
    w_ev = np.where(soft, 1.0, w * 1e-3)
    lam_qnu = np.where(soft | (n_f <= 0), 0.0, 2.0 * s / (max(n_f, 1e-300) * w_ev))
    gamma = np.where(soft, 0.0, 2.0 * math.pi * w_ev * s) * 1e3  # meV
    lam = float(lam_qnu.mean(axis=0).sum())
    grid = np.linspace(0.0, 1.1 * w.max() + 5 * sigma_ph, n_omega)
    a2f = 0.5 * np.einsum("qv,qvw->w", w * lam_qnu,
                          gaussian(grid[None, None, :] - w[..., None], sigma_ph)) / len(w)
    if lam > 0:
        logw = np.log(np.where(soft, 1.0, w))
        omega_log = float(np.exp((lam_qnu * logw).mean(axis=0).sum() / lam))
        omega_2 = float(np.sqrt((lam_qnu * w**2).mean(axis=0).sum() / lam))
    else:
        omega_log = omega_2 = 0.0
    return EliashbergResult(modes=modes, lambda_qnu=lam_qnu, gamma_qnu=gamma, omega_grid=grid,
                            a2f=a2f, lam=lam, omega_log=omega_log, omega_2=omega_2, n_f=n_f,
                            fermi_level=float(e_f), sigma_el=float(sigma_el),
                            sigma_ph=float(sigma_ph), k_mesh=meshes[0], q_mesh=meshes[1],
                            n_soft=int(soft.sum()), form=form, onsite_d=onsite_d)
