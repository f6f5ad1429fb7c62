"""Batched dense eigensolves with torch (GPU when present), for the calculator.

Same algorithm and result type as :func:`ase_deeph.solvers.solve` (canonical
orthogonalisation through the eigenvectors of S(k), S directions below the threshold
dropped), but every k-point of a chunk is solved in one batched ``torch.linalg.eigh``
call on the chosen device. The Bloch sums stay on the CPU (numpy).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from ase_deeph.solvers import bloch_matrices
from ase_deeph.solvers.eigen import ILL_THRESHOLD, Solution
from interfaces import HSData

__all__ = ["solve_torch", "cuda_available"]


def cuda_available() -> bool:
    """Return True when torch sees a CUDA device."""
    return torch.cuda.is_available()


def _chunk(h: np.ndarray, s: np.ndarray, thr: float, dev: torch.device):
    """Eigenvalues of one chunk: h (nc, nkc, n, n), s (nkc, n, n) -> (nc, nkc, n), min S, drops."""
    hs = torch.as_tensor(h, device=dev, dtype=torch.complex128)  # [nc, nkc, n, n]
    ss = torch.as_tensor(s, device=dev, dtype=torch.complex128)  # [nkc, n, n]
    sval, u = torch.linalg.eigh(ss)  # [nkc, n], [nkc, n, n]
    keep = sval >= thr
    scale = torch.where(keep, sval.clamp_min(thr).rsqrt(), torch.zeros_like(sval))
    x = u * scale[:, None, :].to(u.dtype)  # dropped directions become zero columns
    hp = x.conj().transpose(-1, -2) @ hs @ x  # [nc, nkc, n, n]
    hp = 0.5 * (hp + hp.conj().transpose(-1, -2))
    big = torch.finfo(torch.float64).max / 4  # push dropped directions to the top
    hp = hp + torch.diag_embed((~keep).to(hp.dtype) * big)
    e = torch.linalg.eigvalsh(hp)  # [nc, nkc, n]
    e = torch.where(e > big / 2, torch.full_like(e, float("nan")), e)
    return e.cpu().numpy(), sval[:, 0].cpu().numpy(), (~keep).sum(dim=1).cpu().numpy()


def solve_torch(hs: HSData, kpts, device: str = "cuda", ill_threshold: float = ILL_THRESHOLD,
                chunk: int = 64) -> Solution:
    """Band energies at fractional ``kpts`` (nk, 3), solved in batches on ``device``.

    Returns a :class:`ase_deeph.solvers.Solution` (eigenvalues (nspins, nk, nbands) in eV,
    no eigenvectors).
    """
    kpts = np.atleast_2d(np.asarray(kpts, dtype=np.float64))
    dev = torch.device(device)
    parts = []
    for start in range(0, len(kpts), chunk):
        bm = bloch_matrices(hs, kpts[start:start + chunk])
        parts.append(_chunk(bm.h, bm.s, ill_threshold, dev))
    evals = np.concatenate([p[0] for p in parts], axis=1)
    min_s = np.concatenate([p[1] for p in parts])
    dropped = np.concatenate([p[2] for p in parts]).astype(np.int64)
    if np.any(dropped):
        warnings.warn(f"S(k) is ill-conditioned at {np.count_nonzero(dropped)} k-points; "
                      "near-null directions projected out", RuntimeWarning, stacklevel=2)
    return Solution(kpts, evals, None, min_s, dropped, hs.spin, float(ill_threshold))
