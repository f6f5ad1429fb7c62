"""Tiny hand-built HSData models for the solver tests (independent of ase_deeph.inference.toy)."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from interfaces.hsdata import HSData


def hs_from_blocks(atoms, basis, i, j, shifts, hblocks, sblocks, spin="none", **kw) -> HSData:
    """HSData from per-edge blocks; ``hblocks`` is a list (channels) of lists of 2-D blocks."""
    h = np.stack([np.concatenate([np.ravel(b) for b in ch]) for ch in hblocks])
    s = np.concatenate([np.ravel(b) for b in sblocks])
    return HSData(
        atoms=atoms,
        basis=basis,
        edge_index=np.array([i, j], dtype=np.int64).reshape(2, -1),
        cell_shift=np.array(shifts, dtype=np.int64).reshape(-1, 3),
        h=h,
        s=s,
        spin=spin,
        source_code="test",
        **kw,
    )


def graphene_pz(t: float = -2.7, a: float = 2.46, onsite=(0.0, 0.0), s_nn: float = 0.0,
                vacuum: float = 10.0) -> HSData:
    """Two-atom graphene, one orbital per atom, NN hopping t (eV) and NN overlap s_nn.

    ``onsite`` gives the on-site energies of the A and B sites (staggered -> hBN-like gap).
    """
    cell = [[a, 0, 0], [a / 2, a * np.sqrt(3) / 2, 0], [0, 0, vacuum]]
    atoms = Atoms("C2", scaled_positions=[[0, 0, 0], [1 / 3, 1 / 3, 0.5]], cell=cell,
                  pbc=[True, True, False])
    atoms.positions[:, 2] = 0.0
    i, j, shifts = [0, 1], [0, 1], [[0, 0, 0], [0, 0, 0]]
    for r in ([0, 0, 0], [-1, 0, 0], [0, -1, 0]):
        i += [0, 1]
        j += [1, 0]
        shifts += [r, [-x for x in r]]
    hb = [np.array([[onsite[a_] if a_ == b_ else t]]) for a_, b_ in zip(i, j, strict=True)]
    sb = [np.array([[1.0 if a_ == b_ else s_nn]]) for a_, b_ in zip(i, j, strict=True)]
    return hs_from_blocks(atoms, {"C": (0,)}, i, j, shifts, [hb], sb)


def graphene_f(k: np.ndarray) -> np.ndarray:
    """|f(k)| with f = 1 + exp(-2 pi i k1) + exp(-2 pi i k2) (k fractional, shape (nk, 3))."""
    return np.abs(1 + np.exp(-2j * np.pi * k[:, 0]) + np.exp(-2j * np.pi * k[:, 1]))


def chain(e0: float = 0.3, t: float = -1.0, s: float = 0.2, a: float = 2.0, **kw) -> HSData:
    """1-D s chain along x: on-site e0, hopping t and overlap s to both neighbours."""
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[a, 10, 10], pbc=[True, False, False])
    shifts = [[0, 0, 0], [1, 0, 0], [-1, 0, 0]]
    hb = [np.array([[e0]]), np.array([[t]]), np.array([[t]])]
    sb = [np.array([[1.0]]), np.array([[s]]), np.array([[s]])]
    return hs_from_blocks(atoms, {"H": (0,)}, [0, 0, 0], [0, 0, 0], shifts, [hb], sb, **kw)


def random_model(n_atoms: int = 50, shells=(0, 1), cutoff: float = 3.2, density: float = 0.08,
                 seed: int = 0, spin: str = "none", alpha: float = 0.9) -> HSData:
    """Random positions in a periodic box; random Hermitian H, Gaussian-Gram (positive) S.

    ``S_ij(R) = exp(-alpha d^2) * 1`` per orbital pair on the diagonal of the shell space,
    i.e. a Gram matrix of equal s-Gaussians (positive definite up to the cutoff tail).
    """
    rng = np.random.default_rng(seed)
    box = (n_atoms / density) ** (1 / 3)
    atoms = Atoms(f"C{n_atoms}", positions=rng.uniform(0, box, (n_atoms, 3)),
                  cell=[box] * 3, pbc=True)
    ii, jj, shifts, dist = neighbor_list("ijSd", atoms, cutoff)
    ii = np.concatenate([np.arange(n_atoms), ii])
    jj = np.concatenate([np.arange(n_atoms), jj])
    shifts = np.concatenate([np.zeros((n_atoms, 3), int), shifts])
    dist = np.concatenate([np.zeros(n_atoms), dist])
    m = sum(2 * l_ + 1 for l_ in shells)
    n_ch = 2 if spin == "collinear" else 1
    decay = np.exp(-dist)[:, None, None]
    hb = [list(rng.normal(size=(len(ii), m, m)) * decay) for _ in range(n_ch)]
    for ch in hb:
        for e in range(n_atoms):
            ch[e] = ch[e] + np.diag(rng.uniform(-3, 3, m))
    sb = list(np.exp(-alpha * dist**2)[:, None, None] * np.eye(m)[None])
    hs = hs_from_blocks(atoms, {"C": tuple(shells)}, ii, jj, shifts, hb, sb,
                        spin="collinear" if spin == "collinear" else "none")
    hs = hs.symmetrize()
    if spin == "spinor":
        hs = _spinor_with_soc(hs, rng)
    return hs


def _spinor_with_soc(hs: HSData, rng) -> HSData:
    """Spinor copy plus a random spin-flip part (symmetrised: H_ji(-R) = H_ij(R)^dagger)."""
    sp = hs.with_spin("spinor")
    noise = 0.1 * (rng.normal(size=sp.h.shape) + 1j * rng.normal(size=sp.h.shape))
    return sp.replace(h=sp.h + noise).symmetrize()


def graphene_supercell(n: int, t: float = -2.7, s_nn: float = 0.1) -> HSData:
    """n x n supercell of :func:`graphene_pz` built from a neighbour list (no disorder)."""
    a = 2.46
    prim = Atoms("C2", scaled_positions=[[0, 0, 0.5], [1 / 3, 1 / 3, 0.5]],
                 cell=[[a, 0, 0], [a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 12]],
                 pbc=[True, True, False])
    atoms = prim.repeat((n, n, 1))
    i, j, shift = neighbor_list("ijS", atoms, 1.6)
    na = len(atoms)
    i = np.concatenate([np.arange(na), i])
    j = np.concatenate([np.arange(na), j])
    shift = np.concatenate([np.zeros((na, 3), int), shift])
    onsite = np.arange(len(i)) < na
    return HSData(atoms=atoms, basis={"C": (0,)}, edge_index=np.stack([i, j]), cell_shift=shift,
                  h=np.where(onsite, 0.0, t)[None], s=np.where(onsite, 1.0, s_nn),
                  n_electrons=float(na), source_code="test")
