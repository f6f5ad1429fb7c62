"""Electron-phonon matrix elements g_mn,nu(k, q) by eq. (3) + (5) of ``docs/epc.md``.

Bloch sums of the real-space derivatives (lattice gauge, ``docs/conventions.md`` section 6.3;
``docs/epc.md`` section 4)::

    X(k, q) = sum_p exp(-2 pi i (k + q).R_m) exp(+2 pi i k.R_n) X_p          (X = dH, D)

Cartesian matrix element (eq. 3, "full")::

    g^{kappa alpha}_mn = C_m^dag(k+q) [dH - eps_n(k) D - eps_m(k+q) D^dag] C_n(k)

where ``D^dag`` means the Bloch sum of the adjoint real-space operator,
``D^dag(k, q) = D(k + q, -q)^dagger``. The quasi-elastic form uses
``dH - (eps_n + eps_m)/2 dS`` (it needs no on-site D). Mode matrix element (eq. 5)::

    g_mn,nu = sum_{kappa alpha} sqrt(hbar / (2 M_kappa omega)) e_{kappa alpha, nu}(q)
              exp(2 pi i q.tau_kappa) g^{kappa alpha}_mn

with phonopy's eigenvectors e (columns are modes) and reduced q, tau.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ase_deeph.epc.derivatives import EPCDerivatives
from ase_deeph.epc.phonons import (
    PhononModes,
    describe_unstable,
    unstable_branches,
    zero_point_lengths,
)
from ase_deeph.solvers import solve

__all__ = ["CouplingResult", "bloch_pair_sum", "cartesian_elements", "matrix_element",
           "realspace_dv", "mode_elements", "degeneracy_average", "coupling", "resolve_form",
           "unstable_mask", "FORMS", "MASKS"]

FORMS = ("full", "quasi-elastic", "dH-eps_n-dS")
#: Choices of ``mask_unstable`` in :func:`coupling`.
MASKS = ("mode", "branch", "none")


def bloch_pair_sum(cell_pairs: np.ndarray, x: np.ndarray, k: np.ndarray,
                   q: np.ndarray) -> np.ndarray:
    """X(k, q) for k-points ``k`` (nk, 3) and one q (3,): shape (nk,) + x.shape[1:]."""
    k = np.atleast_2d(k)
    r_m, r_n = cell_pairs[:, 0], cell_pairs[:, 1]  # [P, 3]
    ph_q = np.exp(-2j * np.pi * (r_m @ q))  # [P]
    ph_k = np.exp(2j * np.pi * (k @ (r_n - r_m).T))  # [nk, P]
    flat = x.reshape(len(x), -1) * ph_q[:, None]  # [P, F]
    return (ph_k @ flat).reshape((len(k),) + x.shape[1:])


def matrix_element(dh, d, c_m, c_n, e_m, e_n, d_adj=None):
    """Eq. (3) for dense matrices: ``C_m^dag [dH - e_n D - e_m D_adj] C_n``.

    Parameters
    ----------
    dh, d : ndarray, shape (..., n, n)
        dH(k, q) and D(k, q); ``d_adj`` is the Bloch sum of the adjoint operator
        (default ``d^dagger``, correct for a single cell / molecule).
    c_m, c_n : ndarray, shape (..., n, nb_m) and (..., n, nb_n)
        S-orthonormal eigenvectors at k+q and k.
    e_m, e_n : ndarray, shape (..., nb_m) and (..., nb_n)
        Their eigenvalues.

    Returns
    -------
    ndarray, shape (..., nb_m, nb_n)
    """
    if d_adj is None:
        d_adj = np.conj(np.swapaxes(d, -1, -2))
    ch = np.conj(np.swapaxes(c_m, -1, -2))
    a = ch @ dh @ c_n
    b = ch @ d @ c_n
    c = ch @ d_adj @ c_n
    return a - b * e_n[..., None, :] - c * e_m[..., :, None]


def realspace_dv(dh: np.ndarray, d: np.ndarray, s: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Eq. (2): ``dV = dH - D S^-1 H - H S^-1 D^dagger`` (dense, one cell or molecule)."""
    x = np.linalg.solve(s, h)  # S^-1 H
    dd = np.conj(d.T)
    return dh - d @ x - np.conj(x.T) @ dd


def cartesian_elements(derivs: EPCDerivatives, k, q, c_k, e_k, c_kq, e_kq,
                       form: str = "full") -> np.ndarray:
    """g^{kappa alpha}_mn(k, q) in eV/Angstrom, shape (nk, N_uc, 3, nb_m, nb_n), one q.

    ``c_k`` (nk, n_orb, nb_n), ``e_k`` (nk, nb_n), ``c_kq``, ``e_kq`` at k + q.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    k = np.atleast_2d(k)
    q = np.asarray(q, dtype=np.float64)
    dh = bloch_pair_sum(derivs.cell_pairs, derivs.dh, k, q)  # [nk, N, 3, n, n]
    sl = (slice(None), None, None)
    ch = np.conj(np.swapaxes(c_kq, -1, -2))[sl]  # [nk, 1, 1, nb_m, n]
    cn = c_k[sl]
    g = ch @ dh @ cn
    em, en = e_kq[sl][..., :, None], e_k[sl][..., None, :]
    if form == "full":
        d = bloch_pair_sum(derivs.cell_pairs, derivs.d, k, q)
        d_adj = _adjoint_sum(derivs, derivs.d, k, q)
        return g - (ch @ d @ cn) * en - (ch @ d_adj @ cn) * em
    ds = bloch_pair_sum(derivs.cell_pairs, derivs.ds, k, q)
    weight = 0.5 * (en + em) if form == "quasi-elastic" else en
    return g - (ch @ ds @ cn) * weight


def _adjoint_sum(derivs: EPCDerivatives, x: np.ndarray, k, q) -> np.ndarray:
    """Bloch sum of the adjoint operator: swap (R_m, R_n) and transpose the blocks."""
    pairs = derivs.cell_pairs[:, ::-1]
    xt = np.swapaxes(x, -1, -2)
    return bloch_pair_sum(pairs, xt, k, q)


def mode_elements(g_cart: np.ndarray, modes: PhononModes, iq: int) -> np.ndarray:
    """Eq. (5): mode matrix elements in meV, shape (nk, n_modes, nb_m, nb_n).

    ``g_cart`` (nk, N_uc, 3, nb_m, nb_n) in eV/Angstrom at q = ``modes.qpoints[iq]``.
    Soft and imaginary modes (``modes.soft``) get g = 0.
    """
    tau = modes.scaled_positions  # [N_uc, 3]
    phase = np.exp(2j * np.pi * (tau @ modes.qpoints[iq]))  # [N_uc]
    energy = np.where(modes.soft[iq], 0.0, modes.energies_mev[iq])  # soft modes: g = 0
    ell = zero_point_lengths(modes.masses, energy)  # [N_uc, n_modes]
    e = modes.eigenvectors[iq].reshape(len(tau), 3, -1)  # [N_uc, 3, n_modes]
    w = e * (phase[:, None, None] * ell[:, None, :])
    return 1e3 * np.einsum("kaxmb,axv->kvmb", g_cart, w)


def _averager(x: np.ndarray, tol: float) -> np.ndarray:
    """Row-normalised degeneracy indicator, shape (..., n, n)."""
    same = (np.abs(x[..., :, None] - x[..., None, :]) < tol).astype(float)
    return same / same.sum(axis=-1, keepdims=True)


def degeneracy_average(g_abs2: np.ndarray, e_m: np.ndarray, e_n: np.ndarray,
                       omega: np.ndarray, tol_e: float = 1e-4, tol_w: float = 1e-3) -> np.ndarray:
    """``sqrt(sum_deg |g|^2 / N_deg)`` over degenerate m, n bands and modes (Perturbo/EPW).

    Parameters
    ----------
    g_abs2 : ndarray, shape (..., n_modes, nb_m, nb_n)
        |g|^2; leading axes are batch axes shared by the arrays below.
    e_m, e_n : ndarray, shapes (..., nb_m), (..., nb_n)
        Band energies (eV) at k + q and k (broadcast against the batch axes).
    omega : ndarray, shape (..., n_modes)
        Phonon energies (meV).
    tol_e, tol_w : float
        Degeneracy tolerances in eV and meV.

    Returns
    -------
    ndarray, shape of ``g_abs2``: the averaged |g|.
    """
    pw, pm, pn = _averager(omega, tol_w), _averager(e_m, tol_e), _averager(e_n, tol_e)
    return np.sqrt(np.einsum("...vV,...mM,...nN,...VMN->...vmn", pw, pm, pn, g_abs2))


@dataclass(frozen=True)
class CouplingResult:
    """Electron-phonon matrix elements on lists of k and q.

    Attributes
    ----------
    kpoints : ndarray, shape (nk, 3)
        Fractional k (reciprocal lattice coordinates).
    modes : PhononModes
        Phonons at the q list (``modes.qpoints``, shape (nq, 3)); energies in meV and THz.
    bands : ndarray of int, shape (nb,)
        Band indices (0-based, ascending energy) kept for m and n.
    e_k, e_kq : ndarray, shapes (nk, nb) and (nq, nk, nb)
        Band energies in eV at k and k + q.
    g : ndarray, shape (nq, nk, n_modes, nb, nb), complex128
        g_mn,nu(k, q) in meV (m at k + q, n at k); gauge dependent; 0 for soft modes
        (below ``modes.soft_cutoff``, e.g. acoustic modes at Gamma); NaN where ``masked``.
    g_avg : ndarray, shape (nq, nk, n_modes, nb, nb)
        |g| in meV after degeneracy averaging (gauge invariant); NaN where ``masked``.
    form : str
        "full" (eq. 3), "quasi-elastic" or "dH-eps_n-dS" (diagnostic only).
    onsite_d : str
        "provided" or "missing" (then ``form`` cannot be "full" unless forced).
    masked : ndarray of bool, shape (nq, n_modes)
        Imaginary/unstable modes set to NaN (see :func:`unstable_mask`).
    """

    kpoints: np.ndarray
    modes: PhononModes
    bands: np.ndarray
    e_k: np.ndarray
    e_kq: np.ndarray
    g: np.ndarray
    g_avg: np.ndarray
    form: str
    onsite_d: str
    masked: np.ndarray | None = None


def unstable_mask(modes: PhononModes, mask_unstable: str = "mode") -> np.ndarray:
    """Modes (nq, n_modes) that :func:`coupling` sets to NaN, warning when there are any.

    ``"mode"``: :attr:`PhononModes.unstable` (imaginary beyond ``modes.imag_tol``, or a
    zero-frequency optical mode at Gamma); ``"branch"``: every q of a sorted branch that
    is unstable somewhere in the list (:func:`ase_deeph.epc.phonons.unstable_branches`,
    for paths next to an imaginary region); ``"none"``: nothing (imaginary modes keep
    g = 0 as soft modes).
    """
    if mask_unstable not in MASKS:
        raise ValueError(f"mask_unstable must be one of {MASKS}, got {mask_unstable!r}")
    bad = modes.unstable
    if mask_unstable == "none" or not bad.any():
        return np.zeros_like(bad)
    mask = bad if mask_unstable == "mode" else unstable_branches(modes)
    extra = ("" if mask_unstable == "mode" else
             f"; mask_unstable='branch' masks {int(mask.sum())} modes of "
             f"{int(mask.any(axis=0).sum())} whole branch(es)")
    warnings.warn(f"phonons are unstable: {describe_unstable(modes, bad)}{extra}. They are "
                  "no couplings: g is set to NaN there (fix the force constants: supercell, "
                  "relaxed structure, potential)", UserWarning, stacklevel=3)
    return mask


def _eig(derivs: EPCDerivatives, kpts: np.ndarray, bands: np.ndarray):
    sol = solve(derivs.hs0, kpts, return_vectors=True,
                ill_threshold=derivs.ill_threshold)
    return sol.eigenvalues[0][:, bands], sol.eigenvectors[0][:, :, bands]


def resolve_form(derivs: EPCDerivatives, form: str | None, allow_missing: bool = False) -> str:
    """Default "full" when the on-site D is present, else "quasi-elastic" (never silently)."""
    if form is None:
        if derivs.onsite_d == "provided":
            return "full"
        warnings.warn("on-site D is missing: using the quasi-elastic form dH - (e_m + e_n)/2 dS "
                      "(interband |g| unreliable; recorded as form='quasi-elastic')",
                      UserWarning, stacklevel=3)
        return "quasi-elastic"
    if form == "full" and derivs.onsite_d != "provided" and not allow_missing:
        raise ValueError("form='full' needs the on-site D block (onsite_d='missing'); pass "
                         "onsite_d= to derivatives(), or use form='quasi-elastic'")
    return form


def coupling(derivs: EPCDerivatives, modes: PhononModes, kpoints, bands=None,
             form: str | None = None, allow_missing_onsite: bool = False,
             mask_unstable: str = "mode") -> CouplingResult:
    """g_mn,nu(k, q) in meV for every k in ``kpoints`` and every q of ``modes``.

    Parameters
    ----------
    derivs : EPCDerivatives
        From :func:`ase_deeph.epc.derivatives`.
    modes : PhononModes
        From :func:`ase_deeph.epc.phonon_modes` (same primitive cell and atom order).
    kpoints : array_like, shape (nk, 3)
        Fractional k.
    bands : sequence of int, optional
        Band indices kept for both m and n (default all).
    form : str, optional
        "full" (default when the on-site D is available), "quasi-elastic" (default otherwise,
        recorded in the result) or "dH-eps_n-dS" (asymmetric, diagnostic).
    allow_missing_onsite : bool
        Permit ``form="full"`` with the on-site D set to zero (diagnostic).
    mask_unstable : {"mode", "branch", "none"}
        Imaginary/unstable modes to set to NaN in ``g`` and ``g_avg``, with a warning that
        names the q-points (see :func:`unstable_mask`).

    Returns
    -------
    CouplingResult
    """
    form = resolve_form(derivs, form, allow_missing_onsite)
    masked = unstable_mask(modes, mask_unstable)
    # unstable modes never count as degenerate with a real one in the averaging
    omega = np.where(masked, -1.0 - np.arange(modes.n_modes), modes.energies_mev)
    k = np.atleast_2d(np.asarray(kpoints, dtype=np.float64))
    bands = np.arange(derivs.n_orb) if bands is None else np.asarray(bands, dtype=np.int64)
    e_k, c_k = _eig(derivs, k, bands)
    nq = len(modes.qpoints)
    g = np.zeros((nq, len(k), modes.n_modes, len(bands), len(bands)), dtype=np.complex128)
    avg = np.zeros(g.shape)
    e_kq = np.zeros((nq, len(k), len(bands)))
    for iq, q in enumerate(modes.qpoints):
        e_kq[iq], c_kq = _eig(derivs, k + q, bands)
        gc = cartesian_elements(derivs, k, q, c_k, e_k, c_kq, e_kq[iq], form)
        g[iq] = mode_elements(gc, modes, iq)
        avg[iq] = degeneracy_average(np.abs(g[iq]) ** 2, e_kq[iq], e_k, omega[iq][None])
    nan = masked[:, None, :, None, None]
    g, avg = np.where(nan, np.nan, g), np.where(nan, np.nan, avg)
    return CouplingResult(kpoints=k, modes=modes, bands=bands, e_k=e_k, e_kq=e_kq, g=g,
                          g_avg=avg, form=form, onsite_d=derivs.onsite_d, masked=masked)
