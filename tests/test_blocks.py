"""Blocks <-> irreps (Wigner 3j) and the SO(2) bond-frame machinery: exact identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from scipy.spatial.transform import Rotation

from ase_deeph.model.blocks import OutputLayout, block_to_irreps, irreps_to_block
from ase_deeph.model.so2 import FrameMaps, SO2Linear, Spec, from_frame, to_frame, wigner_frames
from interfaces.sph import wigner_d

PAIRS = [(l1, l2) for l1 in range(4) for l2 in range(4)]


@pytest.mark.parametrize("l1,l2", PAIRS)
def test_block_irreps_round_trip(l1, l2):
    rng = np.random.default_rng(l1 * 7 + l2)
    h = torch.from_numpy(rng.normal(size=(3, 2 * l1 + 1, 2 * l2 + 1)))
    xs = block_to_irreps(h, l1, l2)
    assert [x.shape[-1] for x in xs] == [2 * L + 1 for L in range(abs(l1 - l2), l1 + l2 + 1)]
    torch.testing.assert_close(irreps_to_block(xs, l1, l2), h, rtol=0, atol=1e-12)
    # and the other direction: irreps -> block -> irreps
    ys = [torch.from_numpy(rng.normal(size=(3, x.shape[-1]))) for x in xs]
    for y, z in zip(ys, block_to_irreps(irreps_to_block(ys, l1, l2), l1, l2), strict=True):
        torch.testing.assert_close(z, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("l1,l2", PAIRS)
@pytest.mark.parametrize("improper", [False, True])
def test_irreps_equivariance(l1, l2, improper):
    """Rotating a block, D1 H D2^T, rotates its irreps x_L by D^L (parity (-1)^(l1+l2))."""
    q = Rotation.random(random_state=l1 + 4 * l2).as_matrix() * (-1 if improper else 1)
    rng = np.random.default_rng(0)
    h = rng.normal(size=(2 * l1 + 1, 2 * l2 + 1))
    h_rot = wigner_d(l1, q) @ h @ wigner_d(l2, q).T
    for big_l, x, x_rot in zip(range(abs(l1 - l2), l1 + l2 + 1), block_to_irreps(h, l1, l2),
                               block_to_irreps(h_rot, l1, l2), strict=True):
        # wigner_d of an improper q includes (-1)^L; the irrep's parity is (-1)^(l1+l2)
        sign = (-1) ** (l1 + l2 + big_l) if improper else 1
        np.testing.assert_allclose(x_rot.numpy(), sign * wigner_d(big_l, q) @ x.numpy(),
                                   atol=1e-10)


def test_layout_assemble_inverse():
    layout = OutputLayout({"Si": (0, 1, 2), "N": (0, 0, 1), "H": (0,)}, spin="collinear")
    assert layout.n_full == 1 + 1 + 3 + 5  # slots s, s, p, d
    torch.manual_seed(0)
    blocks = torch.randn(4, 2, layout.n_full, layout.n_full, dtype=torch.float64)
    x = layout.disassemble(blocks)
    assert x.shape == (4, layout.spec.dim)
    torch.testing.assert_close(layout.assemble(x), blocks, rtol=0, atol=1e-12)


def test_layout_orbitals():
    layout = OutputLayout({"N": (0, 0, 1), "C": (0, 1)})
    assert layout.slots == [0, 0, 1]
    np.testing.assert_array_equal(layout.orbitals["N"], [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(layout.orbitals["C"], [0, 2, 3, 4])


def test_wigner_frames_match_e3nn():
    torch.manual_seed(1)
    vec = torch.randn(7, 3, dtype=torch.float64)
    alpha, beta = o3.xyz_to_angles(vec)
    for l_val, d in enumerate(wigner_frames(vec, 4)):
        ref = o3.wigner_D(l_val, alpha, beta, torch.zeros_like(alpha))
        torch.testing.assert_close(d, ref.to(d.dtype), rtol=0, atol=1e-5)
    # the frame rotation maps the polar (y) axis onto the bond
    d1 = wigner_frames(vec, 1)[1]
    y = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    r = o3.angles_to_matrix(alpha, beta, torch.zeros_like(alpha))
    torch.testing.assert_close(r @ y, vec / vec.norm(dim=1, keepdim=True))
    torch.testing.assert_close(d1, o3.Irreps("1o").D_from_matrix(r).double(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("improper", [False, True])
def test_so2_linear_is_equivariant(improper):
    """rotate-to-frame -> SO2Linear -> rotate back commutes with O(3), pseudo channels too."""
    torch.manual_seed(2)
    spec_in = Spec(((3, 2), (2, 2), (2, 1)))
    spec_out = Spec(((2, 1), (2, 2), (1, 2), (1, 1)))
    lin = SO2Linear(spec_in, spec_out).double()
    with torch.no_grad():
        lin.bias.normal_()
    m_in, m_out = FrameMaps(spec_in), FrameMaps(spec_out)
    vec = torch.randn(5, 3, dtype=torch.float64)
    x = torch.randn(5, spec_in.dim, dtype=torch.float64)
    q = torch.from_numpy(Rotation.random(random_state=5).as_matrix()) * (-1 if improper else 1)

    def apply(v, feats):
        w = wigner_frames(v, 3)
        return from_frame(lin(to_frame(feats, spec_in, w, m_in)), spec_out, w, m_out)

    y = apply(vec, x)
    y_rot = apply(vec @ q.T, x @ _global_rep(spec_in, q).T)
    torch.testing.assert_close(y_rot, y @ _global_rep(spec_out, q).T, rtol=0, atol=1e-5)


def _global_rep(spec: Spec, q: torch.Tensor) -> torch.Tensor:
    """Representation matrix of q on a Spec's global layout (e3nn basis, raw xyz vectors)."""
    det = torch.linalg.det(q)
    rot = q * det
    blocks = []
    for l_val, (nat, pseudo) in enumerate(spec.mults):
        d = o3.wigner_D(l_val, *o3.matrix_to_angles(rot)).to(torch.float64)
        for k in range(nat + pseudo):
            parity = (-1) ** l_val * (1 if k < nat else -1)
            blocks.append(d * (det if parity == -1 else 1))
    return torch.block_diag(*blocks)


def test_spinor_layout_inverse():
    layout = OutputLayout({"Si": (0, 1, 2), "H": (0,)}, spin="spinor")
    assert layout.n_spin == 8
    assert layout.spec.dim == 8 * layout.n_full**2
    torch.manual_seed(3)
    blocks = torch.randn(3, 8, layout.n_full, layout.n_full, dtype=torch.float64)
    torch.testing.assert_close(layout.assemble(layout.disassemble(blocks)), blocks,
                               rtol=0, atol=1e-11)


def test_spinor_channels_round_trip():
    from ase.build import molecule

    from ase_deeph.inference.toy import toy_hs
    from ase_deeph.model.blocks import channels_to_spinor, spinor_to_channels

    hs = toy_hs(molecule("CH4"), spin="spinor", seed=0)
    ch = spinor_to_channels(hs, hs.h[0])
    assert ch.shape == (8, hs.n_values)
    # unitary: the squared norm is preserved
    np.testing.assert_allclose((ch**2).sum(), (np.abs(hs.h[0]) ** 2).sum(), rtol=1e-12)
    np.testing.assert_allclose(channels_to_spinor(hs, ch), hs.h[0], atol=1e-13, rtol=0)
