"""Losses of training: block MSE, gauge-invariant MSE, band-space term; batch transfer.

All residuals are in eV; losses are divided by ``scale**2`` (the output scale of the
model) so that the optimiser sees numbers of order one.
"""

from __future__ import annotations

import math

import torch

from ase_deeph.training.bandloss import band_loss_terms

__all__ = ["gather_values", "batch_loss", "to_device"]


def to_device(batch, device: torch.device, dtype: torch.dtype):
    """Move a collated batch (nested dicts / lists) to ``device``.

    Real floating tensors become ``dtype``, complex ones the matching complex dtype;
    integer tensors and plain values are kept.
    """
    if isinstance(batch, dict):
        return {k: to_device(v, device, dtype) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device, dtype) for v in batch]
    if not isinstance(batch, torch.Tensor):
        return batch
    v = batch.to(device)
    if v.is_complex():
        return v.to(torch.complex128 if dtype == torch.float64 else torch.complex64)
    return v.to(dtype) if v.is_floating_point() else v


def gather_values(blocks: torch.Tensor, batch: dict) -> torch.Tensor:
    """Predicted values [n_spin, n_values] in the targets' flat order from rows of blocks."""
    rows, n_spin = blocks.shape[0], blocks.shape[1]
    flat = blocks.reshape(rows, n_spin, -1)
    return flat[batch["value_rows"], :, batch["value_pos"]].T


def batch_loss(out: dict, batch: dict, kind: str, scale: float = 1.0,
               overlap_weight: float = 1.0,
               band_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean squared error (eV^2 / scale^2) and the H residual [n_spin, n_values] (eV).

    With ``band_weight > 0`` and band targets in the batch, adds ``band_weight`` times
    the mean |M|^2 per window state of :mod:`ase_deeph.training.bandloss` (same gauge rule).

    ``kind == "gauge_mse"`` first removes, per structure k, the optimal energy shift
    ``H -> H + mu_k S`` (the same mu_k for both spins; for spinors it enters c_0 only,
    with weight sqrt 2): with channel weights g_c,
    ``mu_k = -sum_c g_c <r_c, S>_k / (sum_c g_c^2 <S, S>_k)``, r = H_pred - H_dft, and
    the residual becomes ``r_c + mu_k g_c S`` (Frobenius products over the structure's
    stored values).
    """
    pred = gather_values(out["h"], batch)
    resid = pred - batch["h"]  # [n_channels, n_values]
    if kind == "gauge_mse":
        if batch.get("s") is None:
            raise ValueError("the gauge-invariant loss needs S in every structure")
        s, k = batch["s"], batch["value_struct"]
        g = torch.zeros(resid.shape[0], dtype=s.dtype, device=s.device)  # [n_channels]
        if resid.shape[0] == 8:  # spinor channels: Re c_0 = (uu + dd) / sqrt 2
            g[0] = math.sqrt(2.0)
        else:
            g[:] = 1.0
        n_struct = int(batch["n_structures"])
        ss = torch.zeros(n_struct, dtype=s.dtype, device=s.device).index_add_(0, k, s * s)
        rs = torch.zeros(n_struct, dtype=s.dtype, device=s.device)
        rs.index_add_(0, k, (g[:, None] * resid * s).sum(dim=0))
        mu = -rs / (ss * (g * g).sum()).clamp(min=1e-30)  # [n_struct]
        resid = resid + g[:, None] * (mu[k] * s)[None, :]
    loss = (resid / scale).pow(2).mean()
    if band_weight > 0 and batch.get("bands"):
        sq, _, count = band_loss_terms(resid, batch["value_ptr"], batch["bands"],
                                       gauge=kind == "gauge_mse")
        loss = loss + band_weight * sq / (max(count, 1) * scale * scale)
    if "s" in out and batch.get("s") is not None:
        s_res = gather_values(out["s"], batch)[0] - batch["s"]
        loss = loss + overlap_weight * s_res.pow(2).mean()
    return loss, resid


