"""Band-space loss: the H error seen by the states near the Fermi level.

A block MSE weights every matrix element alike, but band energies respond to the error
of H(k) in the S-orthonormal basis, and only along the states that matter. With the
reference solution H_dft(k) C = S(k) C e (C^dagger S C = 1, solved with the same
near-null S projection the predictions use), the first-order band error of state n is
``M_nn`` and the mixing of two window states is ``M_mn`` where::

    M(k) = C_win(k)^dagger [H_pred(k) - H_dft(k)] C_win(k)     # [n_win, n_win]

for the reference states within ``window`` eV of E_F. The loss is the mean of |M|^2 per
window state (eV^2), after removing, per structure, the uniform shift of the diagonal
when the gauge-invariant loss is used (the band image of the mu S gauge). Because M is
linear in the block residual, it costs one scatter per k-point on top of the block loss.

Only spin ``"none"`` and ``"collinear"`` data are supported (spinor data raise).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ase_deeph.solvers import mesh_points, solve, spin_degeneracy
from ase_deeph.solvers.bloch import dense_positions
from ase_deeph.solvers.occupations import fermi_level as solve_fermi
from interfaces.hsdata import HSData

__all__ = ["BandSpec", "band_targets", "band_residual", "band_loss_terms"]


@dataclass(frozen=True)
class BandSpec:
    """Settings of the band-space loss.

    Attributes
    ----------
    kmesh : tuple of int
        Gamma-centred k-mesh per structure (include the k-points that matter, e.g. K of
        graphene needs a multiple of 3 in-plane).
    window : float
        Half width (eV) of the energy window around E_F whose reference states enter.
    ill_threshold : float
        S(k) eigenvalues below this are projected out of the reference solution (the
        folded DFT H(R) has spurious states along near-null directions; see
        ``ase_deeph.inference.provider.REFERENCE_THRESHOLD``).
    """

    kmesh: tuple[int, int, int] = (3, 3, 1)
    window: float = 3.0
    ill_threshold: float = 1e-4


def _fermi(hs: HSData, energies: np.ndarray) -> float:
    if math.isfinite(hs.fermi_level):
        return float(hs.fermi_level)
    if not math.isfinite(hs.n_electrons):
        raise ValueError("the band loss needs a Fermi level or an electron count")
    res = solve_fermi(np.nan_to_num(energies, nan=1e6), hs.n_electrons,
                      spin_degeneracy=spin_degeneracy(hs.spin))
    return float(res.fermi_level)


def band_targets(hs: HSData, spec: BandSpec) -> dict:
    """Return the reference window states of one structure (CPU tensors).

    Returns
    -------
    dict
        ``key`` [n_values] slot ``R_index * n^2 + row * n + col`` of each flat value in
        the stack of dH(R); ``cos``, ``sin`` [nk, n_R] the Bloch phases of the unique R;
        ``vecs`` complex [n_channels, nk, n, m] window eigenvectors (zero-padded
        columns); ``mask`` [n_channels, nk, m] (1 for a real state); ``n`` the matrix
        dimension; ``kpts`` [nk, 3].
    """
    if hs.spin == "spinor":
        raise ValueError("the band loss does not support spinor data (spin 'none' or "
                         "'collinear' only)")
    if hs.s is None:
        raise ValueError("the band loss needs S in every structure")
    kpts = mesh_points(spec.kmesh, gamma_centred=True)  # [nk, 3]
    with warnings.catch_warnings():  # the projection is intended here
        warnings.simplefilter("ignore", RuntimeWarning)
        sol = solve(hs, kpts, return_vectors=True, ill_threshold=spec.ill_threshold)
    ef = _fermi(hs, sol.eigenvalues)
    inside = np.abs(sol.eigenvalues - ef) < spec.window  # [n_ch, nk, n] (NaN -> False)
    m = max(int(inside.sum(axis=-1).max()), 1)
    n_ch, nk, n = inside.shape
    vecs = np.zeros((n_ch, nk, n, m), dtype=np.complex128)
    mask = np.zeros((n_ch, nk, m))
    for c in range(n_ch):
        for q in range(nk):
            cols = np.flatnonzero(inside[c, q])
            vecs[c, q, :, :len(cols)] = sol.eigenvectors[c, q][:, cols]
            mask[c, q, :len(cols)] = 1.0
    ushift, rinv = np.unique(hs.cell_shift, axis=0, return_inverse=True)  # [n_R, 3], [n_edges]
    key = np.repeat(rinv.reshape(-1), np.diff(hs.block_ptr)) * (n * n) + dense_positions(hs)
    arg = 2.0 * np.pi * kpts @ ushift.T  # [nk, n_R]
    return {"key": torch.from_numpy(key), "cos": torch.from_numpy(np.cos(arg)),
            "sin": torch.from_numpy(np.sin(arg)), "vecs": torch.from_numpy(vecs),
            "mask": torch.from_numpy(mask), "n": n, "kpts": torch.from_numpy(kpts)}


def band_residual(resid: torch.Tensor, target: dict) -> torch.Tensor:
    """Return M = C^dagger dH(k) C, complex [n_channels, nk, m, m] (eV), for one structure.

    Parameters
    ----------
    resid : torch.Tensor
        Block residual H_pred - H_dft of this structure, [n_channels, n_values] (eV).
    target : dict
        Output of :func:`band_targets` (on the residual's device).
    """
    n = int(target["n"])
    n_ch, n_r = resid.shape[0], target["cos"].shape[1]
    per_r = resid.new_zeros(n_ch, n_r * n * n).index_add_(1, target["key"], resid)
    per_r = per_r.reshape(n_ch, n_r, n * n)  # [n_ch, n_R, n*n]: dH(R)
    nk = target["cos"].shape[0]
    re = (target["cos"] @ per_r).reshape(n_ch, nk, n * n)  # [n_ch, nk, n*n]
    im = (target["sin"] @ per_r).reshape(n_ch, nk, n * n)
    dh = torch.complex(re, im).reshape(n_ch, nk, n, n)  # [n_ch, nk, n, n]
    dh = 0.5 * (dh + dh.conj().transpose(-1, -2))
    vecs = target["vecs"]  # [n_ch, nk, n, m]
    return vecs.conj().transpose(-1, -2) @ dh @ vecs  # [n_ch, nk, m, m]


def band_loss_terms(resid: torch.Tensor, value_struct_ptr: list[int], targets: list[dict],
                    gauge: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Sum of |M|^2 over window states, sum of |M_nn| and the number of window states.

    Parameters
    ----------
    resid : torch.Tensor
        Batch residual [n_channels, n_values] (eV), structures concatenated.
    value_struct_ptr : list of int
        Value offsets of the structures in ``resid`` (length n_structures + 1).
    targets : list of dict
        :func:`band_targets` per structure.
    gauge : bool
        Remove the optimal uniform shift of the diagonal per structure.
    """
    sq = resid.new_zeros(())
    ab = resid.new_zeros(())
    count = 0
    for k, tgt in enumerate(targets):
        mat = band_residual(resid[:, value_struct_ptr[k]:value_struct_ptr[k + 1]], tgt)
        mask = tgt["mask"].to(resid.dtype)  # [n_ch, nk, m]
        pair = mask[..., :, None] * mask[..., None, :]  # [n_ch, nk, m, m]
        diag = torch.diagonal(mat, dim1=-2, dim2=-1).real  # [n_ch, nk, m]
        n_states = mask.sum()
        if gauge:
            shift = (diag * mask).sum() / n_states.clamp(min=1.0)
            eye = torch.eye(mat.shape[-1], dtype=resid.dtype, device=resid.device)
            mat = mat - shift * eye
            diag = diag - shift
        sq = sq + (mat.abs().pow(2) * pair).sum()
        ab = ab + (diag.abs() * mask).sum()
        count += int(n_states)
    return sq, ab, count
