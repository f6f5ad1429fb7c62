"""Test helpers for the OpenMX / DeepH / DeePTB converter tests (random data, Bloch sums)."""

from __future__ import annotations

import itertools

import numpy as np
import scipy.linalg
from ase import Atoms

from interfaces.hsdata import HSData

BASIS = {"C": (0, 0, 1, 1, 2), "Si": (0, 1)}
SHIFTS = [(0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, -1), (0, -1, 1)]


def random_hs(spin: str = "none", seed: int = 0, s_scale: float = 0.01) -> HSData:
    """Three-atom C-Si-C cell, every atom pair at five cells, random Hermitian blocks.

    S is the identity on-site plus small random blocks (positive definite).
    """
    rng = np.random.default_rng(seed)
    atoms = Atoms("CSiC", positions=[[0.0, 0.0, 0.0], [1.2, 0.3, 0.1], [0.3, 1.5, 0.7]],
                  cell=[[3.0, 0.0, 0.0], [0.5, 3.2, 0.0], [0.2, 0.1, 3.5]], pbc=True)
    pairs = [(i, j, r) for i, j in itertools.product(range(3), repeat=2) for r in SHIFTS]
    edge_index = np.array([(i, j) for i, j, _ in pairs]).T
    cell_shift = np.array([r for _, _, r in pairs])
    base = HSData(atoms, BASIS, edge_index, cell_shift)
    n = base.n_values
    s = s_scale * rng.normal(size=n)
    onsite = np.flatnonzero((edge_index[0] == edge_index[1]) & ~cell_shift.any(axis=1))
    for e in onsite:
        s[base.block_index([e])[0]] += np.eye(base.norbs[edge_index[0, e]])
    if spin == "spinor":
        h = (rng.normal(size=4 * n) + 1j * rng.normal(size=4 * n))[None]
    else:
        h = rng.normal(size=(2 if spin == "collinear" else 1, n))
    return HSData(atoms, BASIS, edge_index, cell_shift, h=h, s=s, spin=spin,
                  fermi_level=-1.25, n_electrons=20.0, source_code="toy").symmetrize()


def assert_same(a: HSData, b: HSData, atol: float = 0.0, rtol: float = 0.0,
                atoms_tol: float = 1e-12) -> None:
    """All arrays equal up to block order: structure, basis, spin, H, S, Fermi, electrons."""
    assert a.spin == b.spin
    assert a.basis == b.basis
    assert a.atoms.get_chemical_symbols() == b.atoms.get_chemical_symbols()
    np.testing.assert_allclose(b.atoms.positions, a.atoms.positions, atol=atoms_tol, rtol=0)
    np.testing.assert_allclose(np.asarray(b.atoms.cell), np.asarray(a.atoms.cell),
                               atol=atoms_tol, rtol=0)
    assert a.n_edges == b.n_edges
    e = b.find_edges(a.edge_index[0], a.edge_index[1], a.cell_shift)
    assert np.all(e >= 0)
    spinor = a.spin == "spinor"
    for g in a.shape_groups():
        np.testing.assert_allclose(b.h[:, b.block_index(e[g], spinor)],
                                   a.h[:, a.block_index(g, spinor)], atol=atol, rtol=rtol)
        np.testing.assert_allclose(b.s[b.block_index(e[g])], a.s[a.block_index(g)],
                                   atol=atol, rtol=rtol)
    np.testing.assert_allclose(b.fermi_level, a.fermi_level, rtol=1e-14)
    np.testing.assert_allclose(b.n_electrons, a.n_electrons, rtol=1e-14)


def bloch(hs: HSData, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense H(k) (first channel) and S(k) with H(k) = sum_R H(R) exp(+i 2 pi k.R)."""
    f = 2 if hs.spin == "spinor" else 1
    n = hs.n_orbitals
    off = hs.orbital_offsets
    hk = np.zeros((f * n, f * n), complex)
    sk = np.zeros((n, n), complex)
    phase = np.exp(2j * np.pi * hs.cell_shift @ np.asarray(k))
    ptr = hs.block_ptr
    for e, (i, j) in enumerate(hs.edge_index.T.tolist()):
        ni, nj = hs.norbs[i], hs.norbs[j]
        hb = hs.h[0][f * f * ptr[e]:f * f * ptr[e + 1]].reshape(f * ni, f * nj) * phase[e]
        sb = hs.s[ptr[e]:ptr[e + 1]].reshape(ni, nj) * phase[e]
        sk[off[i]:off[i] + ni, off[j]:off[j] + nj] += sb
        for a, b in itertools.product(range(f), repeat=2):
            hk[a * n + off[i]:a * n + off[i] + ni, b * n + off[j]:b * n + off[j] + nj] += \
                hb[a * ni:(a + 1) * ni, b * nj:(b + 1) * nj]
    if f == 2:
        sk = np.kron(np.eye(2), sk)
    return hk, sk


def eigenvalues(hs: HSData, kpts: np.ndarray) -> np.ndarray:
    """Sorted generalized eigenvalues at each k, shape (n_k, n_bands) (every H channel)."""
    out = []
    for k in kpts:
        for c in range(hs.h.shape[0]):
            one = hs.replace(h=hs.h[c:c + 1], spin="none" if hs.spin == "collinear" else hs.spin)
            hk, sk = bloch(one, k)
            hk = 0.5 * (hk + hk.conj().T)
            out.append(scipy.linalg.eigh(hk, 0.5 * (sk + sk.conj().T), eigvals_only=True))
    return np.array(out)
