"""Orbital blocks <-> irreps (Wigner 3j), and the output layout of a multi-element basis.

For a shell pair (l1, l2) a block is a sum of irreps L = |l1 - l2| .. l1 + l2 with parity
(-1)^(l1 + l2) (``docs/conventions.md`` section 7)::

    H[m1, m2] = sum_L sum_M w3j(l1, l2, L)[m1, m2, M] x_L[M]
    x_L[M]    = (2L + 1) sum_{m1, m2} w3j(l1, l2, L)[m1, m2, M] H[m1, m2]

with e3nn's unit-norm real ``wigner_3j``. Under a rotation Q, ``H -> D^l1 H D^l2^T``
and ``x_L -> D^L x_L``.

Several elements: the *full basis* has, for each l, as many shell slots as the element
with most shells of that l; element e's k-th shell of angular momentum l occupies slot
(l, k). The network predicts the irreps of every full-basis slot pair; an element pair
reads the sub-block of its own orbitals (unused slots are masked away).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from e3nn import o3
from torch import nn

from ase_deeph.model.so2 import Spec

__all__ = ["w3j", "block_to_irreps", "irreps_to_block", "OutputLayout", "CHANNELS",
           "spinor_to_channels", "channels_to_spinor"]


@lru_cache(maxsize=None)
def w3j(l1: int, l2: int, big_l: int) -> np.ndarray:
    """e3nn real Wigner 3j symbol, shape (2l1+1, 2l2+1, 2L+1), float64, unit Frobenius norm."""
    out = o3.wigner_3j(l1, l2, big_l, dtype=torch.float64).numpy()
    out.setflags(write=False)
    return out


def _paths(l1: int, l2: int, kind: str) -> list[tuple[int, int]]:
    """(L, J) of the irreps of a shell pair: J = L for scalars, |L-1|..L+1 for spin vectors."""
    ls = range(abs(l1 - l2), l1 + l2 + 1)
    if kind == "s":
        return [(big_l, big_l) for big_l in ls]
    return [(big_l, j) for big_l in ls for j in range(abs(big_l - 1), big_l + 2)]


def _assembly(l1: int, l2: int, kind: str) -> np.ndarray:
    """Irreps -> block map of a shell pair, square: (width, n_comp (2l1+1)(2l2+1)).

    Scalars: ``H[m1, m2] = sum_L w3j(l1, l2, L)[m1, m2, M] x_L[M]``. Spin vectors:
    ``c_v[m1, m2] = sum_{L, J} w3j(l1, l2, L)[m1, m2, M] w3j(L, 1, J)[M, v, mu] x_LJ[mu]``.
    """
    rows = []
    for big_l, j in _paths(l1, l2, kind):
        w = w3j(l1, l2, big_l)  # [2l1+1, 2l2+1, 2L+1]
        if kind == "s":
            rows.append(w.reshape(-1, 2 * big_l + 1).T)
        else:
            t = np.einsum("abM,Mvu->uvab", w, w3j(big_l, 1, j))  # [2J+1, 3, 2l1+1, 2l2+1]
            rows.append(t.reshape(2 * j + 1, -1))
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def block_to_irreps(block, l1: int, l2: int) -> list[torch.Tensor]:
    """Decompose blocks [..., 2l1+1, 2l2+1] into ``[x_L]`` with x_L [..., 2L+1], L ascending."""
    h = torch.as_tensor(block)
    out = []
    for big_l in range(abs(l1 - l2), l1 + l2 + 1):
        w = torch.tensor(w3j(l1, l2, big_l), dtype=h.dtype)
        out.append((2 * big_l + 1) * torch.einsum("...ab,abc->...c", h, w))
    return out


def irreps_to_block(irreps: list, l1: int, l2: int) -> torch.Tensor:
    """Inverse of :func:`block_to_irreps`: ``[x_L]`` -> blocks [..., 2l1+1, 2l2+1]."""
    out = 0
    for x, big_l in zip(irreps, range(abs(l1 - l2), l1 + l2 + 1), strict=True):
        x = torch.as_tensor(x)
        out = out + torch.einsum("...c,abc->...ab", x, torch.tensor(w3j(l1, l2, big_l),
                                                                          dtype=x.dtype))
    return out


#: Block channels of each spin kind: "s" = one real block; "v" = three real blocks that
#: form a spin vector (c_y, c_z, c_x). Spinors: real and imaginary c_0, then real and
#: imaginary (c_y, c_z, c_x), with H = (c_0 s_0 + c_x s_x + c_y s_y + c_z s_z) / sqrt(2).
CHANNELS = {"none": ("s",), "collinear": ("s", "s"), "spinor": ("s", "s", "v", "v")}


class OutputLayout(nn.Module):
    """Irreps of all full-basis shell pairs and their assembly into orbital blocks.

    Parameters
    ----------
    basis : dict of str to tuple of int
        Shells of each element (sorted by l).
    spin : {"none", "collinear", "spinor"}
        Spin kind; sets the block channels (:data:`CHANNELS`).

    Attributes
    ----------
    spec : Spec
        Output irreps (global layout) per block. A scalar channel holds L = |la-lb|..la+lb
        of every slot pair (a, b), parity (-1)^(la+lb); a spin-vector channel holds
        J = |L-1|..L+1 for each such L (spin is an axial vector: same parity).
    n_spin : int
        Real block channels (1, 2 or 8); assembled blocks are [n, n_spin, n_full, n_full].
    n_full : int
        Orbitals of the full basis.
    herm_sign : Tensor, shape (n_spin,)
        +1 for real parts, -1 for imaginary parts: ``X_ji(-R) = herm_sign X_ij(R)^T``.
    """

    def __init__(self, basis: dict[str, tuple[int, ...]], spin: str = "none"):
        super().__init__()
        self.basis = {el: tuple(sh) for el, sh in sorted(basis.items())}
        self.kinds = CHANNELS[spin]
        self.n_spin = sum(1 if k == "s" else 3 for k in self.kinds)
        imag = [0, 1, 0, 0, 0, 1, 1, 1] if spin == "spinor" else [0] * self.n_spin
        self.register_buffer("herm_sign", torch.tensor([1.0 - 2 * x for x in imag]),
                             persistent=False)
        l_top = max((max(sh) for sh in self.basis.values() if sh), default=0)
        counts = [max(list(sh).count(lv) for sh in self.basis.values()) for lv in range(l_top + 1)]
        self.slots = [lv for lv in range(l_top + 1) for _ in range(counts[lv])]  # slot -> l
        starts = np.concatenate([[0], np.cumsum([2 * lv + 1 for lv in self.slots])])
        self.n_full = int(starts[-1])
        self.orbitals = {el: self._orbitals(sh, starts) for el, sh in self.basis.items()}
        self._build(starts)

    def _orbitals(self, shells: tuple[int, ...], starts: np.ndarray) -> np.ndarray:
        """Full-basis orbital index of each orbital of an element, shape (n_orb,)."""
        seen: dict[int, int] = {}
        out = []
        for lv in shells:
            k = seen.get(lv, 0)
            seen[lv] = k + 1
            slot = [q for q, ls in enumerate(self.slots) if ls == lv][k]
            out.extend(range(starts[slot], starts[slot] + 2 * lv + 1))
        return np.array(out, dtype=np.int64)

    def _channels(self) -> list[tuple[int, str]]:
        """(first output block channel, kind) of each channel."""
        out, first = [], 0
        for kind in self.kinds:
            out.append((first, kind))
            first += 1 if kind == "s" else 3
        return out

    def _build(self, starts: np.ndarray) -> None:
        items: dict[tuple[int, int], list] = {}  # (J, pseudo) -> [(channel, a, b, path)]
        for c, kind in self._channels():
            for a, la in enumerate(self.slots):
                for b, lb in enumerate(self.slots):
                    for path in _paths(la, lb, kind):
                        items.setdefault((path[1], (la + lb + path[1]) % 2), []).append(
                            (c, a, b, path))
        l_out = max(j for j, _ in items)
        mults = tuple((len(items.get((lv, 0), [])), len(items.get((lv, 1), [])))
                      for lv in range(l_out + 1))
        self.spec = Spec(mults)
        where = {}
        for (big_j, pseudo), lst in items.items():
            for k, key in enumerate(lst):
                where[key] = self.spec.offsets[big_j] + (k + pseudo * mults[big_j][0]) * (
                    2 * big_j + 1)
        gathers, dests, self.types = [], [], []
        nf = self.n_full
        for kind in sorted(set(self.kinds)):
            for la in sorted(set(self.slots)):
                for lb in sorted(set(self.slots)):
                    keys = [(c, a, b) for c, kd in self._channels() if kd == kind
                            for a, x in enumerate(self.slots) if x == la
                            for b, y in enumerate(self.slots) if y == lb]
                    paths = _paths(la, lb, kind)
                    gathers.append(np.array([np.concatenate(
                        [where[k + (p,)] + np.arange(2 * p[1] + 1) for p in paths])
                        for k in keys]))
                    n_comp = 1 if kind == "s" else 3
                    dests.append(np.array([(
                        (c + np.arange(n_comp))[:, None, None] * nf * nf
                        + (starts[a] + np.arange(2 * la + 1))[None, :, None] * nf
                        + starts[b] + np.arange(2 * lb + 1)[None, None, :]).ravel()
                        for c, a, b in keys]))
                    self.types.append((kind, la, lb))
                    w = _assembly(la, lb, kind)
                    self.register_buffer(f"w{kind}{la}{lb}", torch.from_numpy(w), persistent=False)
                    self.register_buffer(f"v{kind}{la}{lb}", torch.from_numpy(np.linalg.inv(w)),
                                         persistent=False)
        self.register_buffer("gather", torch.from_numpy(np.concatenate(
            [g.ravel() for g in gathers])), persistent=False)
        dest = np.concatenate([d.ravel() for d in dests])
        self.register_buffer("unscatter", torch.from_numpy(np.argsort(dest)), persistent=False)
        self.register_buffer("dest", torch.from_numpy(dest), persistent=False)
        self.counts = [g.shape for g in gathers]  # (n_pairs, irreps dim) per type

    def assemble(self, x: torch.Tensor) -> torch.Tensor:
        """Irreps [n, spec.dim] (global layout) -> blocks [n, n_spin, n_full, n_full]."""
        n = x.shape[0]
        g = x.index_select(1, self.gather)
        parts, start = [], 0
        for (kind, la, lb), (n_pairs, width) in zip(self.types, self.counts, strict=True):
            w = getattr(self, f"w{kind}{la}{lb}").to(x.dtype)  # [width, width]
            blk = g[:, start: start + n_pairs * width].reshape(n, n_pairs, width) @ w
            parts.append(blk.reshape(n, -1))
            start += n_pairs * width
        flat = torch.cat(parts, dim=1).index_select(1, self.unscatter)
        return flat.reshape(n, self.n_spin, self.n_full, self.n_full)

    def disassemble(self, blocks: torch.Tensor) -> torch.Tensor:
        """Blocks [n, n_spin, n_full, n_full] -> irreps [n, spec.dim] (inverse of assemble)."""
        n = blocks.shape[0]
        by_type = blocks.reshape(n, -1)[:, self.dest]  # type-major order of assemble
        vals, start = [], 0
        for (kind, la, lb), (n_pairs, width) in zip(self.types, self.counts, strict=True):
            v = getattr(self, f"v{kind}{la}{lb}").to(blocks.dtype)  # [width, width]
            blk = by_type[:, start: start + n_pairs * width].reshape(n, n_pairs, width)
            vals.append((blk @ v).reshape(n, -1))
            start += n_pairs * width
        out = blocks.new_zeros(n, self.spec.dim)
        out[:, self.gather] = torch.cat(vals, dim=1)
        return out

    def block_positions(self, el_i: str, el_j: str) -> np.ndarray:
        """C-order positions of element pair (el_i, el_j)'s block inside an n_full^2 block."""
        return (self.orbitals[el_i][:, None] * self.n_full + self.orbitals[el_j][None, :]).ravel()



def _quadrants(hs, g: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Spinless indices [n_sel, n_i, n_j] and the uu, ud, du, dd spinor indices of group g."""
    idx = hs.block_index(g)
    sidx = hs.block_index(g, spinor=True)
    ni, nj = idx.shape[1:]
    return idx, [sidx[:, a * ni:(a + 1) * ni, b * nj:(b + 1) * nj] for a in (0, 1) for b in (0, 1)]


def spinor_to_channels(hs, values: np.ndarray) -> np.ndarray:
    """Spinor values (4 n_values,) complex -> the 8 real channels (8, n_values).

    ``c_0 = (uu + dd)/sqrt2, c_z = (uu - dd)/sqrt2, c_x = (ud + du)/sqrt2,
    c_y = i (ud - du)/sqrt2``; channels (Re c_0, Im c_0, Re c_y, Re c_z, Re c_x, Im c_y,
    Im c_z, Im c_x). The map is unitary, so squared errors are preserved.
    """
    out = np.zeros((8, hs.n_values))
    r = 1.0 / np.sqrt(2.0)
    for g in hs.shape_groups():
        idx, (uu, ud, du, dd) = _quadrants(hs, g)
        vu, vud, vdu, vd = (values[q] for q in (uu, ud, du, dd))
        c = [(vu + vd) * r, 1j * (vud - vdu) * r, (vu - vd) * r, (vud + vdu) * r]
        for k, part in enumerate([c[0].real, c[0].imag] + [x.real for x in c[1:]]
                                 + [x.imag for x in c[1:]]):
            out[k][idx] = part
    return out


def channels_to_spinor(hs, channels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`spinor_to_channels`: (8, n_values) -> (4 n_values,) complex."""
    out = np.zeros(4 * hs.n_values, dtype=np.complex128)
    r = 1.0 / np.sqrt(2.0)
    for g in hs.shape_groups():
        idx, (uu, ud, du, dd) = _quadrants(hs, g)
        c0, cy, cz, cx = (channels[k][idx] + 1j * channels[k + m][idx]
                          for k, m in ((0, 1), (2, 3), (3, 3), (4, 3)))
        out[uu], out[dd] = (c0 + cz) * r, (c0 - cz) * r
        out[ud], out[du] = (cx - 1j * cy) * r, (cx + 1j * cy) * r
    return out
