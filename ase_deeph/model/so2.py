"""Equivariant feature layouts, bond-frame rotations and SO(2)-reduced linear maps.

Features of one node or edge are a flat vector described by a :class:`Spec`: per l a
number of *natural* channels (parity (-1)^l: 0e, 1o, 2e...) and of *pseudo* channels
(parity -(-1)^l: 0o, 1e, 2o...). The **global layout** is, per l, ``[channels, 2l+1]``
(e3nn basis, m = -l..l, natural channels first).

In the **bond frame** an edge's features are rotated so that its bond lies on e3nn's
polar (y) axis: ``x' = x @ D^l(R)`` with ``R y = r_hat``. There a rotation about the
bond mixes only (m, -m) pairs, by the same 2x2 rotation for every l, and a mirror
containing the bond flips the sign of one member of each pair. Pseudo channels get
the extra signed swap ``J: (x_m, x_-m) -> (-x_-m, x_m)`` (m > 0), after which every
linear map that uses **one weight matrix W_m per |m| for both +m and -m** (and keeps
natural and pseudo apart at m = 0) commutes with the whole stabiliser of the bond,
including the bond reversal that inversion produces. That is the SO(2)-reduced
convolution (eSCN, DeepH-2, DeePTB-E3): O(L^3) instead of the O(L^6) tensor product.

The **frame layout** is m-major: the m = 0 segment ``[(l, c) for l >= 0]``, then for
each m > 0 the +m half ``[(l, c) for l >= m]`` followed by the -m half.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import torch
from e3nn import o3
from torch import nn

__all__ = ["Spec", "wigner_frames", "reverse_frames", "to_frame", "from_frame", "SO2Linear",
           "GlobalLinear", "FrameMaps", "gated_spec",
           "Gate"]


@dataclass(frozen=True)
class Spec:
    """Multiplicities of an equivariant feature vector.

    Parameters
    ----------
    mults : tuple of (int, int)
        Per l = 0..l_max: (natural channels, pseudo channels).
    """

    mults: tuple[tuple[int, int], ...]

    @classmethod
    def from_irreps(cls, irreps: str) -> "Spec":
        """Parse an e3nn irreps string (``"8x0e+4x1o+2x1e"``)."""
        table: dict[int, list[int]] = {}
        for mul, ir in o3.Irreps(irreps):
            pseudo = int(ir.p != (-1) ** ir.l)
            table.setdefault(ir.l, [0, 0])[pseudo] += mul
        l_max = max(table) if table else 0
        return cls(tuple(tuple(table.get(lv, [0, 0])) for lv in range(l_max + 1)))

    @property
    def l_max(self) -> int:
        """Highest l."""
        return len(self.mults) - 1

    def n(self, l_val: int) -> int:
        """Channels (natural + pseudo) at ``l_val``."""
        return sum(self.mults[l_val]) if l_val <= self.l_max else 0

    @cached_property
    def offsets(self) -> tuple[int, ...]:
        """Start of each l in the global layout (length l_max + 2)."""
        out = [0]
        for lv in range(self.l_max + 1):
            out.append(out[-1] + self.n(lv) * (2 * lv + 1))
        return tuple(out)

    @property
    def dim(self) -> int:
        """Length of the flat feature vector."""
        return self.offsets[-1]

    @cached_property
    def components(self) -> dict[str, np.ndarray]:
        """Per global component: ``l``, channel ``c`` (within l), ``m``, ``pseudo``, ``group``.

        ``group`` numbers the (l, c) irreps in global order.
        """
        rows = []
        group = 0
        for lv in range(self.l_max + 1):
            for c in range(self.n(lv)):
                for m in range(-lv, lv + 1):
                    rows.append((lv, c, m, int(c >= self.mults[lv][0]), group))
                group += 1
        arr = np.array(rows, dtype=np.int64).reshape(-1, 5)
        return {k: arr[:, q] for q, k in enumerate(("l", "c", "m", "pseudo", "group"))}

    @cached_property
    def frame(self) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """Signed permutation global -> frame: ``y = x[:, perm] * sign``; segment sizes per m."""
        comp = self.components
        index = {(lv, c, m): k for k, (lv, c, m) in enumerate(
            zip(comp["l"], comp["c"], comp["m"], strict=True))}
        perm, sign, sizes = [], [], []
        for m in range(self.l_max + 1):
            for half in ((0,) if m == 0 else (1, -1)):
                for lv in range(m, self.l_max + 1):
                    for c in range(self.n(lv)):
                        pseudo = c >= self.mults[lv][0]
                        if m > 0 and pseudo:  # J: (+m, -m) <- (-x_-m, x_+m)
                            perm.append(index[lv, c, -half * m])
                            sign.append(-1.0 if half > 0 else 1.0)
                        else:
                            perm.append(index[lv, c, half * m])
                            sign.append(1.0)
            sizes.append(sum(self.n(lv) for lv in range(m, self.l_max + 1)))
        return np.array(perm, dtype=np.int64), np.array(sign), sizes

    def frame_pseudo(self, m: int) -> np.ndarray:
        """Pseudo flags of the components of one frame half-segment of ``m``."""
        return np.array([c >= self.mults[lv][0] for lv in range(m, self.l_max + 1)
                         for c in range(self.n(lv))], dtype=bool)


# ------------------------------------------------------------------ rotations
@lru_cache(maxsize=None)
def _x_to_y(l_val: int) -> torch.Tensor:
    """D^l of the 90-degree rotation about z (x -> y), float64."""
    q = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn builds its generators in the default dtype
    try:
        return o3.wigner_D(l_val, *o3.matrix_to_angles(q)).to(torch.float64)
    finally:
        torch.set_default_dtype(old)


@lru_cache(maxsize=None)
def _flip_diagonal(l_val: int) -> np.ndarray:
    """Diagonal of D^l of the 180-degree rotation about e3nn's z axis (bond reversal), +-1."""
    q = torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=torch.float64))
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        d = o3.wigner_D(l_val, *o3.matrix_to_angles(q))
    finally:
        torch.set_default_dtype(old)
    return np.round(torch.diagonal(d).numpy())


def reverse_frames(wigner: list[torch.Tensor], reverse: torch.Tensor) -> list[torch.Tensor]:
    """Make the frames of reversed edges exactly ``D(e') = D(e) Z(pi)``.

    ``R(-r_hat) = R(r_hat) Z(pi)`` holds analytically for e3nn's angles; imposing it on the
    arrays (from the edge with the smaller index of each pair) makes the frame features of
    an edge's two ends reusable by its reverse (:attr:`FrameMaps.flip`).
    """
    idx = torch.arange(reverse.shape[0], device=reverse.device)
    src = idx[idx < reverse]
    dst = reverse[src]
    out = []
    for lv, d in enumerate(wigner):
        flip = torch.from_numpy(_flip_diagonal(lv)).to(device=d.device, dtype=d.dtype)
        d = d.clone()
        d[dst] = d[src] * flip  # D Z: scales the columns
        out.append(d)
    return out


def _y_rotation(l_val: int, angle: torch.Tensor) -> torch.Tensor:
    """Batched D^l of a rotation by ``angle`` about y (e3nn polar axis), [n, 2l+1, 2l+1]."""
    m = torch.arange(-l_val, l_val + 1, device=angle.device)
    out = torch.zeros(angle.shape[0], 2 * l_val + 1, 2 * l_val + 1, dtype=angle.dtype,
                      device=angle.device)
    idx = torch.arange(2 * l_val + 1, device=angle.device)
    # row -m, column +m: +sin(|m| a); row +m, column -m: -sin(|m| a); then the diagonal
    out[:, idx, idx.flip(0)] = torch.sin(-m[None] * angle[:, None])
    out[:, idx, idx] = torch.cos(m.abs()[None] * angle[:, None])
    return out


def wigner_frames(vectors: torch.Tensor, l_max: int) -> list[torch.Tensor]:
    """Wigner matrices D^l(R) of the bond frames, R y = r_hat, l = 0..l_max.

    Parameters
    ----------
    vectors : Tensor, shape (n_edges, 3)
        Bond vectors (non-zero).
    l_max : int
        Highest l.

    Returns
    -------
    list of Tensor, shape (n_edges, 2l+1, 2l+1)
        ``D^l(alpha, beta, 0) = D_y(alpha) D_x(beta)`` in ``vectors``' dtype.
    """
    with torch.no_grad():
        v = vectors.to(torch.float64)
        alpha, beta = o3.xyz_to_angles(v)  # R(alpha, beta, 0) @ y = r_hat
        out = [torch.ones(v.shape[0], 1, 1, dtype=vectors.dtype, device=v.device)]
        for lv in range(1, l_max + 1):
            k = _x_to_y(lv).to(v.device)
            d_x = k.T @ _y_rotation(lv, beta) @ k  # D_x(b) = K^T D_y(b) K
            out.append((_y_rotation(lv, alpha) @ d_x).to(vectors.dtype))
    return out


def _rotate(x: torch.Tensor, spec: Spec, wigner: list[torch.Tensor], inverse: bool):
    parts = [x[:, : spec.offsets[1]]]
    for lv in range(1, spec.l_max + 1):
        blk = x[:, spec.offsets[lv]: spec.offsets[lv + 1]].reshape(x.shape[0], spec.n(lv), -1)
        d = wigner[lv] if inverse else wigner[lv].transpose(1, 2)
        # x D as (D^T x^T)^T: MKL's batched product is 1.3x faster in this orientation
        parts.append(torch.bmm(d, blk.transpose(1, 2)).transpose(1, 2).reshape(x.shape[0], -1))
    return torch.cat(parts, dim=1)


class FrameMaps(nn.Module):
    """Buffers of the global <-> frame signed permutation of one Spec."""

    def __init__(self, spec: Spec):
        super().__init__()
        perm, sign, _ = spec.frame
        self.register_buffer("perm", torch.from_numpy(perm), persistent=False)
        self.register_buffer("inv", torch.from_numpy(np.argsort(perm)), persistent=False)
        self.register_buffer("sign", torch.from_numpy(sign), persistent=False)
        diag = np.concatenate([np.tile(_flip_diagonal(lv), spec.n(lv))
                               for lv in range(spec.l_max + 1)])
        # frame features seen from the reversed edge: y(e') = y(e) * flip
        self.register_buffer("flip", torch.from_numpy(diag[perm]), persistent=False)


def to_frame(x: torch.Tensor, spec: Spec, wigner: list[torch.Tensor], maps: FrameMaps,
             signed: bool = True):
    """Global layout [n_edges, dim] -> bond-frame layout [n_edges, dim].

    ``signed=False`` leaves out the final multiplication by ``maps.sign`` (for callers that
    fold the signs into their weights).
    """
    rotated = _rotate(x, spec, wigner, inverse=False).index_select(1, maps.perm)
    return rotated * maps.sign.to(x.dtype) if signed else rotated


def from_frame(y: torch.Tensor, spec: Spec, wigner: list[torch.Tensor], maps: FrameMaps):
    """Bond-frame layout [n_edges, dim] -> global layout [n_edges, dim]."""
    signed = (y * maps.sign.to(y.dtype)).index_select(1, maps.inv)
    return _rotate(signed, spec, wigner, inverse=True)


# ---------------------------------------------------------------- linear maps
class SO2Linear(nn.Module):
    """Linear map in the bond frame: one weight per |m|, natural/pseudo kept apart at m = 0.

    Parameters
    ----------
    spec_in, spec_out : Spec
        Input and output multiplicities (frame layout).
    bias : bool
        Add a learned bias to the m = 0 natural outputs (bond-frame invariants).
    """

    def __init__(self, spec_in: Spec, spec_out: Spec, bias: bool = True):
        super().__init__()
        self.spec_in, self.spec_out = spec_in, spec_out
        self.sizes_in, self.sizes_out = spec_in.frame[2], spec_out.frame[2]
        self.n_m = min(spec_in.l_max, spec_out.l_max) + 1
        self.weights = nn.ParameterList()
        for m in range(self.n_m):
            k_in, k_out = self.sizes_in[m], self.sizes_out[m]
            self.weights.append(nn.Parameter(torch.randn(k_in, k_out) / math.sqrt(max(k_in, 1))))
        same = spec_in.frame_pseudo(0)[:, None] == spec_out.frame_pseudo(0)[None, :]
        self.register_buffer("mask0", torch.from_numpy(same.astype(np.float64)).float(),
                             persistent=False)
        self.bias = nn.Parameter(torch.zeros(self.sizes_out[0])) if bias else None
        if bias:
            self.register_buffer("bias_mask", torch.from_numpy(
                (~spec_out.frame_pseudo(0)).astype(np.float32)), persistent=False)

    def _segments(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-m outputs [n, 2 k_out] (m > 0) or [n, k_out] (m = 0), without the bias."""
        n = x.shape[0]
        out = [x[:, : self.sizes_in[0]] @ (self.weights[0] * self.mask0.to(x.dtype))]
        start = self.sizes_in[0]
        for m in range(1, self.spec_out.l_max + 1):
            k_in, k_out = self.sizes_in[m] if m < len(self.sizes_in) else 0, self.sizes_out[m]
            if m < self.n_m:
                xm = x[:, start: start + 2 * k_in].reshape(n, 2, k_in)
                out.append((xm @ self.weights[m]).reshape(n, 2 * k_out))
                start += 2 * k_in
            else:
                out.append(x.new_zeros(n, 2 * k_out))
        return out

    def forward(self, x: torch.Tensor, other: "SO2Linear | None" = None,
                x_other: torch.Tensor | None = None) -> torch.Tensor:
        """Map [n_edges, dim_in] -> [n_edges, dim_out] (frame layouts).

        With ``other`` (same output spec), return ``self(x) + other(x_other)``, summed
        segment by segment in place (one concatenation, no full-size addition).
        """
        out = self._segments(x)
        if other is not None:
            for acc, extra in zip(out, other._segments(x_other), strict=True):
                acc.add_(extra)
        for lin in (self, other):
            if lin is not None and lin.bias is not None:
                out[0] = out[0] + lin.bias * lin.bias_mask.to(x.dtype)
        return torch.cat(out, dim=1)


class GlobalLinear(nn.Module):
    """Equivariant linear map in the global layout: channel mixing per l and parity."""

    def __init__(self, spec_in: Spec, spec_out: Spec, bias: bool = True):
        super().__init__()
        self.spec_in, self.spec_out = spec_in, spec_out
        self.weights = nn.ParameterList()
        masks = []
        for lv in range(spec_out.l_max + 1):
            n_in, n_out = spec_in.n(lv), spec_out.n(lv)
            self.weights.append(nn.Parameter(torch.randn(n_in, n_out) / math.sqrt(max(n_in, 1))))
            p_in = np.arange(n_in) >= (spec_in.mults[lv][0] if lv <= spec_in.l_max else 0)
            p_out = np.arange(n_out) >= spec_out.mults[lv][0]
            masks.append(torch.from_numpy((p_in[:, None] == p_out[None, :]).astype(np.float32)))
        for lv, mask in enumerate(masks):
            self.register_buffer(f"mask{lv}", mask, persistent=False)
        self.bias = nn.Parameter(torch.zeros(spec_out.mults[0][0])) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [n, dim_in] -> [n, dim_out] (global layouts)."""
        n, out = x.shape[0], []
        for lv in range(self.spec_out.l_max + 1):
            w = self.weights[lv] * getattr(self, f"mask{lv}").to(x.dtype)  # [n_in, n_out]
            if lv > self.spec_in.l_max or w.shape[0] == 0:
                out.append(x.new_zeros(n, self.spec_out.n(lv) * (2 * lv + 1)))
                continue
            blk = x[:, self.spec_in.offsets[lv]: self.spec_in.offsets[lv + 1]]
            blk = blk.reshape(n, w.shape[0], 2 * lv + 1)
            y = torch.einsum("ncm,co->nom", blk, w).reshape(n, -1)
            if lv == 0 and self.bias is not None:
                nb = self.bias.shape[0]
                y = torch.cat([y[:, :nb] + self.bias, y[:, nb:]], 1)
            out.append(y)
        return torch.cat(out, dim=1)


def gated_spec(spec: Spec) -> Spec:
    """``spec`` plus one extra natural scalar per gated irrep (all but natural scalars)."""
    n_gates = spec.mults[0][1] + sum(spec.n(lv) for lv in range(1, spec.l_max + 1))
    return Spec(((spec.mults[0][0] + n_gates, spec.mults[0][1]),) + spec.mults[1:])


class Gate(nn.Module):
    """Gated nonlinearity: SiLU on natural scalars, sigmoid(gate) times every other irrep.

    The input has the layout of :func:`gated_spec` (``spec``), the output that of ``spec``;
    ``layout`` is ``"global"`` or ``"frame"``. Gates are natural scalars, hence invariant
    (in the frame: m = 0 natural components of l = 0).
    """

    def __init__(self, spec: Spec, layout: str):
        super().__init__()
        self.n_scalar = spec.mults[0][0]
        big = gated_spec(spec)
        self.n_gates = big.mults[0][0] - self.n_scalar
        comp = spec.components
        group = comp["group"] - self.n_scalar  # gated irreps numbered from 0
        if layout == "frame":
            perm, _, _ = spec.frame
            group = group[perm]
        self.register_buffer("group", torch.from_numpy(group[self.n_scalar:]), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, dim(gated_spec)] -> [n, dim(spec)]."""
        s, g = self.n_scalar, self.n_gates
        gates = torch.sigmoid(x[:, s: s + g])
        gated = x[:, s + g:] * gates.index_select(1, self.group)
        return torch.cat([nn.functional.silu(x[:, :s]), gated], 1)
