"""HamiltonianNet: E(3)-equivariant message passing with SO(2) bond-frame convolutions.

Nodes carry equivariant features (global layout of :mod:`ase_deeph.model.so2`), initialised
from species embeddings. Each layer rotates the features of both ends of every edge
into the bond frame (Wigner-D and edge invariants computed once per forward), scales
them by a radial / species MLP per (|m|, l, channel) (frame signs folded into its
expanded last layer), applies SO(2)-reduced linear maps with a gate,
rotates the message back and sums it at the receiving atom (``index_add_``, no
torch_scatter). Residual node updates with an equivariant RMS norm follow.

Outputs (:mod:`ase_deeph.model.blocks`): on-site blocks from node features (global linear
maps, plus a per-species bias of the invariant L = 0 parts), off-site blocks from an
SO(2) edge head plus (``two_centre``) a direct radial / species term on the bond-frame
invariants (Slater-Koster-like); both as irreps of every full-basis shell pair, assembled
with Wigner 3j. ``H_ij(R)`` and ``H_ji(-R)^T`` are averaged, so Hermiticity is exact
and the result does not depend on the edge direction (permutation equivariance).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from ase.data import atomic_numbers
from torch import nn

from ase_deeph.model.blocks import OutputLayout
from ase_deeph.model.config import ModelConfig
from ase_deeph.model.norms import RMSNorm
from ase_deeph.model.so2 import (
    FrameMaps,
    Gate,
    GlobalLinear,
    SO2Linear,
    Spec,
    from_frame,
    gated_spec,
    reverse_frames,
    to_frame,
    wigner_frames,
)

__all__ = ["HamiltonianNet", "hidden_spec"]


def hidden_spec(cfg: ModelConfig, basis_l_max: int) -> Spec:
    """Hidden multiplicities: ``channels`` scalars halving with l (at least 8), plus pseudo."""
    l_max = cfg.l_max if cfg.l_max is not None else max(2 * basis_l_max, 1)
    nat = [max(cfg.channels >> min(lv, 2), min(8, cfg.channels)) for lv in range(l_max + 1)]
    pseudo = [cfg.pseudo_channels if lv < l_max else 0 for lv in range(l_max + 1)]
    return Spec(tuple(zip(nat, pseudo, strict=True)))


def _scale_index(spec: Spec) -> tuple[np.ndarray, int]:
    """Frame component -> (|m|, l, channel) index; the +m and -m halves share weights."""
    _, _, sizes = spec.frame
    out, start = [np.arange(sizes[0])], sizes[0]
    for k in sizes[1:]:
        out.append(np.concatenate([np.arange(k), np.arange(k)]) + start)
        start += k
    return np.concatenate(out), start


class EdgeConv(nn.Module):
    """SO(2) convolution of the two end features of an edge, in the bond frame."""

    def __init__(self, spec_in: Spec, spec_out: Spec, n_inv: int, hidden: int,
                 two_centre: bool = False):
        super().__init__()
        mid = spec_in
        idx, self.n_scale = _scale_index(spec_in)
        self.register_buffer("scale_idx", torch.from_numpy(idx), persistent=False)
        # the frame signs (and the bond-reversal flip of the i end) are folded into the
        # expanded last radial layer, so the inputs are unsigned frame features
        maps = FrameMaps(spec_in)
        self.register_buffer("expand", torch.cat([torch.from_numpy(idx),
                                                  torch.from_numpy(idx) + self.n_scale]),
                             persistent=False)
        self.register_buffer("expand_sign", torch.cat([maps.sign * maps.flip, maps.sign]),
                             persistent=False)
        self.radial = nn.Sequential(nn.Linear(n_inv, hidden), nn.SiLU(),
                                    nn.Linear(hidden, 2 * self.n_scale))
        self.lin_i = SO2Linear(spec_in, gated_spec(mid))
        self.lin_j = SO2Linear(spec_in, gated_spec(mid), bias=False)
        self.gate = Gate(mid, "frame")
        self.lin_out = SO2Linear(mid, spec_out)
        # two-centre term: bond-frame invariants (m = 0, natural) straight from the radial
        # MLP, i.e. Slater-Koster-like functions of (r, species_i, species_j)
        self.direct = nn.Linear(hidden, spec_out.frame[2][0]) if two_centre else None
        if two_centre:
            nn.init.zeros_(self.direct.weight)
            nn.init.zeros_(self.direct.bias)

    def forward(self, xi: torch.Tensor, xj: torch.Tensor, inv: torch.Tensor) -> torch.Tensor:
        """Map end features [n_edges, dim_in] x 2 and invariants to [n_edges, dim_out].

        ``xj`` is ``to_frame(x_j, signed=False)``, ``xi`` the same array of the reverse edge
        (no sign, no flip); the output is in the (signed) frame layout.
        """
        hid = self.radial[1](self.radial[0](inv))  # [n_edges, hidden]
        last = self.radial[2]
        sign = self.expand_sign.to(hid.dtype)[:, None]
        w = nn.functional.linear(hid, last.weight.index_select(0, self.expand) * sign,
                                 last.bias.index_select(0, self.expand) * sign[:, 0])
        dim = xi.shape[1]  # w: [n_edges, 2 dim], per-component scales of both ends
        y = self.lin_i(xi * w[:, :dim], self.lin_j, xj * w[:, dim:])
        out = self.lin_out(self.gate(y))
        if self.direct is not None:
            k0 = self.direct.out_features
            sk = self.direct(hid) * self.lin_out.bias_mask.to(out.dtype)  # [n_edges, k0]
            out = torch.cat([out[:, :k0] + sk, out[:, k0:]], dim=1)
        return out


class NodeMLP(nn.Module):
    """Gated equivariant two-layer map in the global layout."""

    def __init__(self, spec_in: Spec, spec_out: Spec, mid: Spec):
        super().__init__()
        self.lin_a = GlobalLinear(spec_in, gated_spec(mid))
        self.gate = Gate(mid, "global")
        self.lin_b = GlobalLinear(mid, spec_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[n, dim_in] -> [n, dim_out]."""
        return self.lin_b(self.gate(self.lin_a(x)))


class Interaction(nn.Module):
    """One message-passing layer with residual node updates."""

    def __init__(self, spec: Spec, n_inv: int, hidden: int, norm: str = "global"):
        super().__init__()
        self.norm, self.norm2 = RMSNorm(spec, mode=norm), RMSNorm(spec, mode=norm)
        self.conv = EdgeConv(spec, spec, n_inv, hidden)
        self.lin_msg = GlobalLinear(spec, spec, bias=False)
        self.mlp = NodeMLP(spec, spec, spec)


class Head(nn.Module):
    """On-site (node) and off-site (edge) output maps onto one OutputLayout."""

    def __init__(self, spec: Spec, layout: OutputLayout, n_inv: int, hidden: int,
                 n_species: int, two_centre: bool = False):
        super().__init__()
        self.layout = layout
        self.onsite = NodeMLP(spec, layout.spec, spec)
        self.edge = EdgeConv(spec, layout.spec, n_inv, hidden, two_centre)
        self.maps = FrameMaps(layout.spec)
        n0 = layout.spec.mults[0][0]  # L = 0 natural irreps (same-l shell pairs)
        self.onsite_bias = nn.Parameter(torch.zeros(n_species, n0))
        self.register_buffer("scale", torch.ones(()))


class HamiltonianNet(nn.Module):
    """Structure -> H blocks (and optionally S blocks) in a per-element atomic-orbital basis.

    Parameters
    ----------
    config : ModelConfig
        Hyperparameters (``r_cut``, widths, depth...).
    basis : dict of str to tuple of int
        Shells per element (the dataset's basis).
    spin : {"none", "collinear", "spinor"}
        Spin kind of H: one or two real channels, or spinors (spin-orbit) predicted as
        real and imaginary parts of ``c_0`` and of the spin vector ``(c_y, c_z, c_x)``
        (:data:`ase_deeph.model.blocks.CHANNELS`); all rows are then [.., 8, n_full, n_full].
    """

    def __init__(self, config: ModelConfig, basis: dict[str, tuple[int, ...]],
                 spin: str = "none"):
        super().__init__()
        if spin not in ("none", "collinear", "spinor"):
            raise ValueError(f"spin must be none, collinear or spinor, got {spin!r}")
        self.config, self.spin = config, spin
        self.basis = {el: tuple(int(x) for x in sh) for el, sh in sorted(basis.items())}
        self.species = sorted(self.basis, key=lambda el: atomic_numbers[el])
        table = torch.full((119,), -1, dtype=torch.long)
        for k, el in enumerate(self.species):
            table[atomic_numbers[el]] = k
        self.register_buffer("z_table", table, persistent=False)
        l_basis = max((max(sh) for sh in self.basis.values() if sh), default=0)
        self.spec = hidden_spec(config, l_basis)
        self.maps = FrameMaps(self.spec)
        n_s, n_e, hid = len(self.species), config.n_species_embed, config.radial_hidden
        self.embed = nn.Embedding(n_s, self.spec.mults[0][0])
        self.embed_pair = nn.Embedding(n_s, n_e)
        n_inv = config.n_radial + 2 * n_e
        self.register_buffer("centers", torch.linspace(0, config.r_cut, config.n_radial))
        self.layers = nn.ModuleList(Interaction(self.spec, n_inv, hid, config.norm)
                                    for _ in range(config.n_layers))
        tc = config.two_centre
        self.h_head = Head(self.spec, OutputLayout(self.basis, spin), n_inv, hid, n_s, tc)
        self.s_head = (Head(self.spec, OutputLayout(self.basis, "none"), n_inv, hid, n_s, tc)
                       if config.predict_overlap else None)
        self.l_wigner = max(self.spec.l_max, self.h_head.layout.spec.l_max)
        self.to(getattr(torch, config.dtype))

    # ------------------------------------------------------------------ pieces
    def frames(self, vectors: torch.Tensor, reverse: torch.Tensor) -> list[torch.Tensor]:
        """Bond-frame Wigner matrices; e3nn sees (y, z, x) so its basis is the project's.

        ``reverse`` [n_edges] maps each edge to its reverse inside ``vectors``; the pair's
        frames are tied (:func:`~ase_deeph.model.so2.reverse_frames`).
        """
        return reverse_frames(wigner_frames(vectors[:, [1, 2, 0]], self.l_wigner), reverse)

    def _ends(self, h: torch.Tensor, edge_index, reverse, wigner):
        """Unsigned frame features of both ends [n_edges, dim] (see :class:`EdgeConv`).

        x_j is rotated; x_i is taken from the reverse edge (the sign and the bond-reversal
        flip are applied inside the convolution's radial scales).
        """
        xj = to_frame(h.index_select(0, edge_index[1]), self.spec, wigner, self.maps,
                      signed=False)
        return xj.index_select(0, reverse), xj

    def species_of(self, numbers: torch.Tensor) -> torch.Tensor:
        """Species index of atomic numbers (ValueError for elements outside the basis)."""
        idx = self.z_table[numbers]
        if torch.any(idx < 0):
            bad = sorted(set(numbers[idx < 0].tolist()))
            raise ValueError(f"elements {bad} are not in the model's basis {self.species}")
        return idx

    def invariants(self, species, edge_index, vectors):
        """Edge invariants [n_edges, n_radial + 2 n_embed] and the cutoff envelope [n_edges]."""
        r = vectors.norm(dim=1)
        width = self.config.r_cut / self.config.n_radial
        rbf = torch.exp(-0.5 * ((r[:, None] - self.centers) / width) ** 2)
        env = 0.5 * (torch.cos(math.pi * (r / self.config.r_cut).clamp(max=1.0)) + 1.0)
        emb = self.embed_pair(species)
        return torch.cat([rbf * env[:, None], emb[edge_index[0]], emb[edge_index[1]]], 1), env

    def initial_features(self, species: torch.Tensor) -> torch.Tensor:
        """Node features [n_atoms, dim]: species embedding in the natural scalars."""
        h = self.embed.weight.new_zeros(species.shape[0], self.spec.dim)
        h[:, : self.spec.mults[0][0]] = self.embed(species)
        return h

    def messages(self, layer: Interaction, h, species, edge_index, vectors, reverse,
                 wigner=None, inv=None):
        """Sum the messages [n_atoms, dim] of one layer over the given edges.

        The edges must be closed under reversal; ``reverse`` [n_edges] indexes them.
        ``wigner`` and ``inv`` (the pair returned by :meth:`invariants`) may be passed
        precomputed; they are the same for every layer.
        """
        if wigner is None:
            wigner = self.frames(vectors, reverse)
        inv, env = self.invariants(species, edge_index, vectors) if inv is None else inv
        xi, xj = self._ends(layer.norm(h), edge_index, reverse, wigner)
        msg = from_frame(layer.conv(xi, xj, inv), self.spec, wigner, self.maps)
        out = torch.zeros_like(h)
        return out.index_add_(0, edge_index[0], msg * env[:, None])

    def update(self, layer: Interaction, h: torch.Tensor, agg: torch.Tensor) -> torch.Tensor:
        """Residual node update from summed messages."""
        h = h + layer.lin_msg(agg / self.config.avg_neighbors)
        return h + layer.mlp(layer.norm2(h))

    def onsite_blocks(self, head: Head, h: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """On-site blocks [n_atoms, n_spin, n_full, n_full] (not yet symmetrised)."""
        x = self.onsite_out(head, h, species)
        return head.layout.assemble(x)

    def onsite_out(self, head: Head, h, species):
        """On-site irreps [n_atoms, layout dim]."""
        x = head.onsite(h) * head.scale
        n0 = head.onsite_bias.shape[1]
        return torch.cat([x[:, :n0] + head.onsite_bias[species], x[:, n0:]], dim=1)

    def edge_blocks(self, head: Head, h, species, edge_index, vectors, reverse, wigner=None,
                    inv=None):
        """Off-site blocks [n_edges, n_spin, n_full, n_full] (not yet symmetrised)."""
        if wigner is None:
            wigner = self.frames(vectors, reverse)
        inv, _ = self.invariants(species, edge_index, vectors) if inv is None else inv
        xi, xj = self._ends(h, edge_index, reverse, wigner)
        y = head.edge(xi, xj, inv) * head.scale
        return head.layout.assemble(from_frame(y, head.layout.spec, wigner, head.maps))

    # ----------------------------------------------------------------- forward
    def node_features(self, species, edge_index, vectors, reverse, wigner=None, inv=None):
        """Return the final node features [n_atoms, dim] after all layers."""
        h = self.initial_features(species)
        inv = self.invariants(species, edge_index, vectors) if inv is None else inv
        for layer in self.layers:
            agg = self.messages(layer, h, species, edge_index, vectors, reverse, wigner, inv)
            h = self.update(layer, h, agg)
        return h

    def forward(self, species: torch.Tensor, edge_index: torch.Tensor, vectors: torch.Tensor,
                reverse_rows: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict all blocks of a (batched) graph.

        Parameters
        ----------
        species : Tensor, shape (n_atoms,)
            Species indices (:meth:`species_of`).
        edge_index : Tensor, shape (2, n_edges)
            Directed off-site edges (both directions present).
        vectors : Tensor, shape (n_edges, 3)
            Bond vectors, Angstrom.
        reverse_rows : Tensor, shape (n_atoms + n_edges,)
            Row of each block's transposed partner (:func:`ase_deeph.model.graph.reverse_rows`).

        Returns
        -------
        dict
            ``"h"`` (and ``"s"``): blocks [n_atoms + n_edges, n_spin, n_full, n_full]; row
            i < n_atoms is atom i's on-site block, row n_atoms + e edge e's block.
        """
        n_atoms = species.shape[0]
        reverse = reverse_rows[n_atoms:] - n_atoms  # [n_edges]
        wigner = self.frames(vectors, reverse)
        inv = self.invariants(species, edge_index, vectors)
        h = self.node_features(species, edge_index, vectors, reverse, wigner, inv)
        out = {}
        for key, head in (("h", self.h_head), ("s", self.s_head)):
            if head is None:
                continue
            rows = torch.cat([self.onsite_blocks(head, h, species),
                              self.edge_blocks(head, h, species, edge_index, vectors, reverse,
                                               wigner, inv)])
            sign = head.layout.herm_sign.to(rows.dtype)[:, None, None]
            out[key] = 0.5 * (rows + sign * rows[reverse_rows].transpose(-1, -2))
        return out
