"""Levenberg-Marquardt refinement of a model on a small batch (exact fits, overfit tests).

For least-squares problems with few residuals (n_res * n_params below ~10^8 numbers),
Levenberg-Marquardt converges far faster than first-order methods or L-BFGS once the
fit is close: it solves ``(J J^T + lambda I) y = r``, ``delta = -J^T y`` in the
n_res-dimensional residual space (the minimum-norm step for over-parameterised models),
with the Jacobian ``J`` [n_res, n_params] from :func:`torch.func.jacrev`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch.func import functional_call, jacrev

from ase_deeph.training.trainer import gather_values

__all__ = ["LMResult", "levenberg_marquardt"]


@dataclass(frozen=True)
class LMResult:
    """Outcome of :func:`levenberg_marquardt`.

    Attributes
    ----------
    mae_meV : float
        Final mean absolute H error over the batch's values, meV.
    steps : int
        Accepted steps.
    seconds : float
        Wall time spent, s.
    history : tuple of float
        MAE (meV) after each accepted step.
    """

    mae_meV: float
    steps: int
    seconds: float
    history: tuple[float, ...]


def _residual_fn(model, batch: dict, buffers: dict, scale: float):
    core = model.module if hasattr(model, "module") else model
    species = core.species_of(batch["numbers"])
    args = (species, batch["edge_index"], batch["vectors"], batch["reverse_rows"])

    def residual(params: dict) -> torch.Tensor:
        out = functional_call(core, (params, buffers), args)
        return ((gather_values(out["h"], batch) - batch["h"]) / scale).reshape(-1)

    return residual


def _step(residual, params: dict, names: list[str], r: torch.Tensor, cur: float,
          lam: float) -> tuple[dict, torch.Tensor, float, float]:
    """One damped Gauss-Newton step; raises lambda until the sum of squares decreases."""
    jac = jacrev(residual)(params)
    jm = torch.cat([jac[n].reshape(r.shape[0], -1) for n in names], 1)  # [n_res, n_params]
    a = jm @ jm.T  # [n_res, n_res]
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device) * a.diagonal().mean()
    for _ in range(12):
        delta = -(jm.T @ torch.linalg.solve(a + lam * eye, r))  # [n_params]
        new, k = dict(params), 0
        for n in names:
            size = params[n].numel()
            new[n] = params[n] + delta[k:k + size].reshape(params[n].shape)
            k += size
        rn = residual(new).detach()
        val = float(rn.pow(2).sum())
        if val < cur:
            return new, rn, val, max(lam / 3.0, 1e-12)
        lam *= 4.0
    return params, r, cur, lam


def levenberg_marquardt(model, batch: dict, max_steps: int = 100,
                        time_limit: float | None = None, target_mae_meV: float = 0.0,
                        damping: float = 1e-3) -> LMResult:
    """Fit ``model`` to the H values of one collated batch by Levenberg-Marquardt.

    Parameters
    ----------
    model : HamiltonianNet
        Model, updated in place (its dtype should be float64 for sub-meV fits).
    batch : dict
        Collated batch on the model's device and dtype
        (:func:`ase_deeph.training.losses.to_device`).
    max_steps : int
        Most accepted steps.
    time_limit : float, optional
        Stop after this many seconds (checked after each step).
    target_mae_meV : float
        Stop once the MAE (meV) is below this.
    damping : float
        Initial lambda, relative to the mean diagonal of ``J J^T``.

    Returns
    -------
    LMResult
        Final MAE, number of steps, time and MAE history.
    """
    start = time.perf_counter()
    core = model.module if hasattr(model, "module") else model
    scale = float(core.h_head.scale)
    params = {n: p.detach().clone() for n, p in core.named_parameters()}
    names = [n for n, p in core.named_parameters() if p.requires_grad]
    residual = _residual_fn(core, batch, dict(core.named_buffers()), scale)
    r = residual(params).detach()
    cur, lam, history = float(r.pow(2).sum()), damping, []
    for _ in range(max_steps):
        params, r, new, lam = _step(residual, params, names, r, cur, lam)
        if new >= cur:
            break  # no decrease even with strong damping
        cur = new
        history.append(1000 * scale * float(r.abs().mean()))
        if history[-1] < target_mae_meV or (
                time_limit is not None and time.perf_counter() - start > time_limit):
            break
    with torch.no_grad():
        for n, p in core.named_parameters():
            p.copy_(params[n])
    mae = history[-1] if history else 1000 * scale * float(r.abs().mean())
    return LMResult(mae, len(history), time.perf_counter() - start, tuple(history))
