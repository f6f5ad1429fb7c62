"""Equivariant feature normalisation of :class:`ase_deeph.model.network.HamiltonianNet` layers.

Features are in the global layout of :class:`ase_deeph.model.so2.Spec` (all l blocks side by
side, ``[n, dim]``).
"""

from __future__ import annotations

import torch
from torch import nn

from ase_deeph.model.so2 import Spec

__all__ = ["RMSNorm"]


class RMSNorm(nn.Module):
    """Equivariant RMS normalisation (global layout) with a learned scale per irrep.

    ``mode="global"`` divides all features by one invariant, the root of the mean over l
    of each degree's mean square: smooth everywhere, because the scalars do not vanish.
    ``mode="per_l"`` (model files written before this option existed) divides each degree
    by its own RMS; near a high-symmetry geometry, where the l > 0 features vanish by
    symmetry, that map has slope 1/sqrt(eps): a trained model of that kind moved its
    graphene H by 0.2 eV for a 1e-6 A displacement (see
    ``tests/test_model.py::test_prediction_is_smooth_near_symmetric_geometry``).
    """

    def __init__(self, spec: Spec, eps: float = 1e-6, mode: str = "global"):
        super().__init__()
        if mode not in ("global", "per_l"):
            raise ValueError(f"norm mode must be 'global' or 'per_l', got {mode!r}")
        self.spec, self.eps, self.mode = spec, eps, mode
        self.scale = nn.Parameter(torch.ones(int(spec.components["group"].max(initial=-1)) + 1))
        self.register_buffer("group", torch.from_numpy(spec.components["group"]),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise [n, dim] (global layout)."""
        blocks = [x[:, self.spec.offsets[lv]: self.spec.offsets[lv + 1]]
                  for lv in range(self.spec.l_max + 1)]
        ms = [blk.pow(2).mean(dim=1, keepdim=True) for blk in blocks]  # [n, 1] per l
        if self.mode == "per_l":
            out = torch.cat([blk / (m + self.eps).sqrt()
                             for blk, m in zip(blocks, ms, strict=True)], dim=1)
        else:
            rms = (torch.cat(ms, dim=1).mean(dim=1, keepdim=True) + self.eps).sqrt()  # [n, 1]
            out = x / rms
        return out * self.scale[self.group]
