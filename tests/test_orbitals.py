"""Orbital conventions: the signed-permutation tables of ``docs/conventions.md`` section 4.

The matrices below are copied as data from ``docs/conventions.md`` (not from the code), and the
per-code function orders are checked against analytic real spherical harmonics.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule

from ase_deeph.inference.toy import toy_hs
from interfaces import orbitals
from interfaces.hsdata import HSData
from interfaces.sph import real_sph_harm, wigner_d

# --- docs/conventions.md section 4, as data --------------------------------------------
P = {
    1: [[0, 1, 0], [0, 0, 1], [1, 0, 0]],
    2: [[0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 1, 0, 0, 0]],
    3: [[0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 1, 0]],
}
A = {
    1: [[0, 0, -1], [1, 0, 0], [0, -1, 0]],
    2: [[0, 0, 0, 0, 1], [0, 0, -1, 0, 0], [1, 0, 0, 0, 0], [0, -1, 0, 0, 0], [0, 0, 0, 1, 0]],
    3: [[0, 0, 0, 0, 0, 0, -1], [0, 0, 0, 0, 1, 0, 0], [0, 0, -1, 0, 0, 0, 0],
        [1, 0, 0, 0, 0, 0, 0], [0, -1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, -1, 0]],
}
U = {
    1: [[0, -1, 0], [0, 0, -1], [1, 0, 0]],
    2: [[1, 0, 0, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, -1, 0, 0, 0], [0, 0, -1, 0, 0]],
    3: np.diag([1, -1, -1, 1, 1, -1, -1]).tolist(),
}
ALL_CODES = orbitals.CODES


@pytest.mark.parametrize("code", ALL_CODES)
@pytest.mark.parametrize("l_val", [0, 1, 2, 3])
def test_every_table_is_a_signed_permutation(code: str, l_val: int) -> None:
    m = orbitals.matrix(code, l_val)
    assert m.shape == (2 * l_val + 1,) * 2
    assert set(np.unique(m)) <= {-1.0, 0.0, 1.0}
    assert np.all(np.count_nonzero(m, axis=0) == 1) and np.all(np.count_nonzero(m, axis=1) == 1)
    np.testing.assert_array_equal(m @ m.T, np.eye(2 * l_val + 1))


@pytest.mark.parametrize("l_val", [1, 2, 3])
def test_design_note_matrices(l_val: int) -> None:
    p, a, u = (np.array(x[l_val], dtype=float) for x in (P, A, U))
    np.testing.assert_array_equal(p @ u, a)  # P_l U_l = A_l
    np.testing.assert_array_equal(orbitals.matrix("openmx", l_val), p)
    np.testing.assert_array_equal(orbitals.matrix("deeph-legacy", l_val), p)
    np.testing.assert_array_equal(orbitals.matrix("abacus", l_val), a)
    for code in ("e3nn", "deeph", "deeptb"):
        np.testing.assert_array_equal(orbitals.matrix(code, l_val), np.eye(2 * l_val + 1))


@pytest.mark.parametrize("l_val", [1, 2, 3])
def test_siesta_sign_is_a_c2z_rotation(l_val: int) -> None:
    m = np.arange(-l_val, l_val + 1)
    c2z = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_array_equal(orbitals.matrix("siesta", l_val), np.diag((-1.0) ** m))
    np.testing.assert_allclose(wigner_d(l_val, c2z), np.diag((-1.0) ** m), atol=1e-12)


def _analytic(points: np.ndarray) -> dict[str, np.ndarray]:
    """Wikipedia real harmonics (no Condon-Shortley phase), written out for l = 1, 2."""
    x, y, z = (points / np.linalg.norm(points, axis=1, keepdims=True)).T
    c1, c2 = np.sqrt(3 / (4 * np.pi)), 0.5 * np.sqrt(15 / np.pi)
    return {
        "x": c1 * x, "y": c1 * y, "z": c1 * z,
        "xy": c2 * x * y, "yz": c2 * y * z, "xz": c2 * x * z,
        "z2": 0.25 * np.sqrt(5 / np.pi) * (3 * z**2 - 1), "x2-y2": 0.5 * c2 * (x**2 - y**2),
    }


# Each code's functions, in its file order, as (sign, Wikipedia function) pairs
# (docs/conventions.md section 3: ABACUS/SIESTA carry (-1)^m, i.e. the Condon-Shortley phase).
CODE_ORDER = {
    ("openmx", 1): [(1, "x"), (1, "y"), (1, "z")],
    ("openmx", 2): [(1, "z2"), (1, "x2-y2"), (1, "xy"), (1, "xz"), (1, "yz")],
    ("abacus", 1): [(1, "z"), (-1, "x"), (-1, "y")],
    ("abacus", 2): [(1, "z2"), (-1, "xz"), (-1, "yz"), (1, "x2-y2"), (1, "xy")],
    ("siesta", 1): [(-1, "y"), (1, "z"), (-1, "x")],
    ("siesta", 2): [(1, "xy"), (-1, "yz"), (1, "z2"), (-1, "xz"), (1, "x2-y2")],
    ("pyscf", 1): [(1, "x"), (1, "y"), (1, "z")],
    ("pyscf", 2): [(1, "xy"), (1, "yz"), (1, "z2"), (1, "xz"), (1, "x2-y2")],
}


@pytest.mark.parametrize("key", list(CODE_ORDER))
def test_tables_map_code_functions_to_internal_harmonics(key) -> None:
    code, l_val = key
    pts = np.random.default_rng(0).normal(size=(20, 3))
    f = _analytic(pts)
    internal = real_sph_harm(l_val, pts)  # [n_pts, 2l+1], m = -l..l
    want = {1: ["y", "z", "x"], 2: ["xy", "yz", "z2", "xz", "x2-y2"]}[l_val]
    np.testing.assert_allclose(internal, np.stack([f[k] for k in want], axis=1), atol=1e-12)
    code_funcs = np.stack([s * f[k] for s, k in CODE_ORDER[key]], axis=1)
    np.testing.assert_allclose(code_funcs @ orbitals.matrix(code, l_val).T, internal, atol=1e-12)


def _random_hs(spin: str, seed: int) -> HSData:
    atoms = bulk("Si", "diamond", 5.43) if seed % 2 else molecule("H2O", vacuum=3.0)
    atoms.pbc = True
    hs = toy_hs(atoms, spin=spin)
    rng = np.random.default_rng(seed)
    h = rng.normal(size=hs.h.shape) + (1j * rng.normal(size=hs.h.shape) if spin == "spinor" else 0)
    return hs.replace(h=h, s=rng.normal(size=hs.s.shape))


@pytest.mark.parametrize("code", ALL_CODES)
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_round_trip_is_identity(code: str, spin: str) -> None:
    hs = _random_hs(spin, seed=len(code) + len(spin))
    back = orbitals.to_internal(orbitals.from_internal(hs, code), code)
    np.testing.assert_array_equal(back.h, hs.h)
    np.testing.assert_array_equal(back.s, hs.s)
    back = orbitals.from_internal(orbitals.to_internal(hs, code), code)
    np.testing.assert_array_equal(back.h, hs.h)


def _multi_zeta_hs(spin: str) -> HSData:
    """Two atoms with shells (0, 0, 1, 2) (Si) and (0, 1, 1) (O), random blocks."""
    atoms = Atoms("SiO", positions=[[0, 0, 0], [0.3, 0.4, 1.5]], cell=np.eye(3) * 6, pbc=True)
    basis = {"Si": (0, 0, 1, 2), "O": (0, 1, 1)}
    edge_index = np.array([[0, 0, 1, 1], [0, 1, 0, 1]])
    shift = np.zeros((4, 3), dtype=np.int64)
    probe = HSData(atoms=atoms, basis=basis, edge_index=edge_index, cell_shift=shift)
    rng = np.random.default_rng(3)
    nv = probe.n_values
    h = rng.normal(size=(2 if spin == "collinear" else 1, nv))
    if spin == "spinor":
        h = rng.normal(size=(1, 4 * nv)) + 1j * rng.normal(size=(1, 4 * nv))
    return probe.replace(h=h, s=rng.normal(size=nv), spin=spin)


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
@pytest.mark.parametrize("code", ["siesta", "abacus", "openmx"])
def test_shell_order_reordering(code: str, spin: str) -> None:
    """File order Si: s, p, s', d (SIESTA-like) -> internal s, s', p, d; explicit element check."""
    hs = _multi_zeta_hs(spin)
    orders = {"Si": (0, 2, 1, 3), "O": (0, 1, 2)}  # internal shell k sits at file position
    internal = orbitals.to_internal(hs, code, orders)
    back = orbitals.from_internal(internal, code, orders)
    np.testing.assert_array_equal(back.h, hs.h)
    np.testing.assert_array_equal(back.s, hs.s)
    # explicit: file Si orbitals are [s | p(3) | s' | d(5)]; internal [s | s' | p(3) | d(5)]
    file_pos = np.concatenate([[0], [4], 1 + np.arange(3), 5 + np.arange(5)])
    m1, m2 = orbitals.matrix(code, 1), orbitals.matrix(code, 2)
    mat = np.zeros((10, 10))
    mat[0, file_pos[0]] = mat[1, file_pos[1]] = 1.0
    mat[2:5, file_pos[2:5]] = m1
    mat[5:10, file_pos[5:10]] = m2
    s_file = hs.block(0, 0, which="s")
    np.testing.assert_allclose(internal.block(0, 0, which="s"), mat @ s_file @ mat.T, atol=0)
    if spin == "spinor":
        big = np.kron(np.eye(2), mat)
        np.testing.assert_allclose(internal.block(0, 0), big @ hs.block(0, 0) @ big.T, atol=0)


def test_unknown_code_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown orbital convention"):
        orbitals.matrix("vasp", 1)
