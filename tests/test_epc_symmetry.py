"""Symmetry-reduced finite-difference displacements (ase_deeph.epc.symmetry, issue 7).

The reduced path (one displaced atom per orbit, blocks rotated with real-SH Wigner matrices)
must reproduce the direct path (every atom displaced) -- exactly when the operations used
only permute / flip Cartesian axes, and up to the O(delta^2) central-difference error when
they mix directions (checked by its delta^2 scaling).
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import partial

import numpy as np
import pytest
from ase.build import bulk, graphene
from ase.spacegroup import crystal

from ase_deeph import epc
from ase_deeph.epc.coupling import bloch_pair_sum
from ase_deeph.inference.toy import DEFAULT_ELEMENTS, toy_hs

pytestmark = pytest.mark.filterwarnings("ignore:on-site D is missing:UserWarning")

PROVIDER = partial(toy_hs, seed=0)


def _rotation(seed: int = 7) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _structure(name: str):
    """(atoms, n_box) of the test structures."""
    if name in ("si", "si-rotated", "si-box-101"):
        atoms = bulk("Si", "diamond", a=5.43)
        if name == "si-rotated":  # arbitrary orientation: Q are no longer axis permutations
            atoms.set_cell(np.asarray(atoms.cell) @ _rotation().T, scale_atoms=True)
        return atoms, (1, 0, 1) if name == "si-box-101" else 1
    if name == "graphene":
        atoms = graphene(a=2.46, vacuum=6.0)
        atoms.pbc = True
        return atoms, (1, 1, 0)
    if name in ("wurtzite-bn", "rattled-bn"):
        atoms = bulk("BN", "wurtzite", a=2.55, c=4.2)
        if name == "rattled-bn":
            atoms.rattle(stdev=0.05, seed=3)
        return atoms, 1
    if name == "trigonal-si":  # P3_1 21 helix: atoms related only by 3_1 screws / oblique 2-folds
        atoms = crystal("Si", [(0.25, 0.0, 1.0 / 3.0)], spacegroup=152,
                        cellpar=[4.0, 4.0, 4.5, 90, 90, 120], primitive_cell=True)
        return atoms, 1
    raise KeyError(name)


def _random_onsite(symbol: str) -> np.ndarray:
    """Synthetic antisymmetric on-site D (same for every call of one element)."""
    n = sum(2 * lv + 1 for lv in DEFAULT_ELEMENTS[symbol].shells)
    x = np.random.default_rng(len(symbol) + n).normal(size=(3, n, n))
    return 0.5 * (x - x.transpose(0, 2, 1))


def _aligned(a, b, name: str):
    """Arrays ``name`` of two EPCDerivatives on the union of their cell pairs."""
    union, inv = np.unique(np.concatenate([a.cell_pairs, b.cell_pairs]).reshape(-1, 6),
                           axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    out = []
    for n, x in enumerate((a, b)):
        arr = np.zeros((len(union),) + getattr(x, name).shape[1:])
        rows = inv[:len(a.cell_pairs)] if n == 0 else inv[len(a.cell_pairs):]
        arr[rows] = getattr(x, name)
        out.append(arr)
    return out


def _pair(name: str, **kw):
    atoms, n_box = _structure(name)
    sym = epc.derivatives(PROVIDER, atoms, n_box=n_box, symmetry=True, **kw)
    ref = epc.derivatives(PROVIDER, atoms, n_box=n_box, symmetry=False, **kw)
    return atoms, sym, ref


def _max_diff(sym, ref) -> tuple[float, float]:
    """Largest |difference| and |value| over dh, ds, d (dense arrays)."""
    diff, scale = 0.0, 0.0
    for name in ("dh", "ds", "d"):
        x, y = _aligned(sym, ref, name)
        diff, scale = max(diff, np.abs(x - y).max()), max(scale, np.abs(y).max())
    return diff, scale


# --------------------------------------------------------------------------- orbits
@pytest.mark.parametrize("name, n_ops, rep_of", [
    ("si", 48, [0, 0]),  # Fd-3m, primitive cell
    ("si-rotated", 48, [0, 0]),
    ("graphene", 24, [0, 0]),  # P6/mmm (layer in a 3-D periodic box)
    ("wurtzite-bn", 12, [0, 1, 0, 1]),  # P6_3mc: two orbits (B, N)
    ("trigonal-si", 6, [0, 0, 0]),  # P3_1 21
    ("rattled-bn", 1, [0, 1, 2, 3]),  # P1
])
def test_orbits_and_operations(name, n_ops, rep_of):
    atoms, n_box = _structure(name)
    sym = epc.displacement_symmetry(atoms, n_box)
    assert sym.n_operations == n_ops
    np.testing.assert_array_equal(sym.rep_of, rep_of)
    np.testing.assert_array_equal(sym.representatives, np.unique(rep_of))
    frac = np.linalg.solve(np.asarray(atoms.cell).T, atoms.positions.T).T
    for kap, kap0 in enumerate(sym.rep_of):
        w, t, q = sym.rotations[kap], sym.translations[kap], sym.cartesian[kap]
        image = w @ frac[kap0] + t - frac[kap]  # must be a lattice vector
        np.testing.assert_allclose(image, np.round(image), atol=1e-6)
        np.testing.assert_allclose(q @ q.T, np.eye(3), atol=1e-10)  # orthogonal
        # Q acts on Cartesian vectors as W on fractional ones
        np.testing.assert_allclose(atoms.cell.cartesian_positions(w @ frac[0]),
                                   q @ atoms.positions[0], atol=1e-9)


def test_box_lattice_filters_operations():
    """A (3, 1, 3) box is not invariant under all of Fd-3m: only the compatible ops stay."""
    atoms, n_box = _structure("si-box-101")
    sym = epc.displacement_symmetry(atoms, n_box)
    m = np.array([3, 1, 3])
    assert 1 < sym.n_operations < 48
    for w in sym.rotations:  # diag(m)^-1 W diag(m) integer: W maps the box lattice onto itself
        x = w * m[None, :] / m[:, None]
        np.testing.assert_allclose(x, np.round(x), atol=1e-12)


# ------------------------------------------------------------- reduced == direct (exact)
@pytest.mark.parametrize("name, n_rep", [
    ("si", 1), ("si-rotated", 1), ("si-box-101", 1), ("graphene", 1),
    ("wurtzite-bn", 2), ("rattled-bn", 4),
])
def test_reduced_equals_direct(name, n_rep):
    atoms, sym, ref = _pair(name, onsite_d=_random_onsite)
    n_uc = len(atoms)
    assert ref.n_provider_calls == 1 + 6 * n_uc
    assert sym.n_provider_calls == 1 + 6 * n_rep
    # the operation onto each atom is chosen to permute / flip Cartesian axes (here a 4_1
    # screw, inversion or a 2_1 screw), so the recombined central differences are the same
    # numbers
    diff, scale = _max_diff(sym, ref)
    assert scale > 1.0 and diff < 1e-11 * scale
    rng = np.random.default_rng(0)
    k, q = rng.normal(size=(3, 3)), rng.normal(size=3)
    if name == "graphene":
        k[:, 2], q[2] = 0.0, 0.0
    for field in ("dh", "ds", "d"):
        a = bloch_pair_sum(sym.cell_pairs, getattr(sym, field), k, q)
        b = bloch_pair_sum(ref.cell_pairs, getattr(ref, field), k, q)
        np.testing.assert_allclose(a, b, atol=1e-10 * np.abs(b).max())
    err_h, err_s = epc.sum_rule_error(sym)
    assert err_h < 1e-8 and err_s < 1e-8


def test_forward_scheme_counts_and_first_order_agreement():
    """Forward differences: the 2_1 screw B0 -> B2 flips x and y, turning forward
    differences into backward ones, so the two paths agree to O(delta) only."""
    diffs = []
    for delta in (0.005, 0.0025):
        atoms, sym, ref = _pair("wurtzite-bn", scheme="forward", delta=delta)
        assert (sym.n_provider_calls, ref.n_provider_calls) == (2 + 3 * 2, 2 + 3 * 4)
        diffs.append(_max_diff(sym, ref))
    assert diffs[0][0] / diffs[1][0] == pytest.approx(2.0, rel=0.05)
    assert diffs[0][0] < 1e-2 * diffs[0][1]


# --------------------------------------------------- direction mixing: O(delta^2) difference
def test_direction_mixing_converges_as_delta_squared():
    """P3_1 21: every operation between atoms mixes x and y, the reduced and direct central
    differences differ by (delta^2 / 6)(third-derivative terms) -- ratio 4 per halving."""
    diffs = []
    for delta in (0.01, 0.005):
        atoms, sym, ref = _pair("trigonal-si", delta=delta)
        assert (sym.n_provider_calls, ref.n_provider_calls) == (7, 19)
        diffs.append(_max_diff(sym, ref))
    assert diffs[0][0] / diffs[1][0] == pytest.approx(4.0, rel=0.02)
    assert diffs[0][0] < 1e-4 * diffs[0][1]  # still small at the default step
    atoms, sym, ref = _pair("trigonal-si", delta=1e-4)
    diff, scale = _max_diff(sym, ref)
    assert diff < 1e-8 * scale


def test_forward_direction_mixing_is_first_order():
    diffs = []
    for delta in (0.01, 0.005):
        atoms, sym, ref = _pair("trigonal-si", delta=delta, scheme="forward")
        diffs.append(_max_diff(sym, ref)[0])
    assert diffs[0] / diffs[1] == pytest.approx(2.0, rel=0.05)


def _oblique_improper(atoms, sym):
    """The same orbits, but atom 1 reached by an improper operation that mixes all axes."""
    import spglib

    data = spglib.get_symmetry((np.asarray(atoms.cell), atoms.get_scaled_positions(),
                                atoms.numbers), symprec=1e-5)
    frac = np.linalg.solve(np.asarray(atoms.cell).T, atoms.positions.T).T
    a_t = np.asarray(atoms.cell).T
    best = None
    for w, t in zip(data["rotations"], data["translations"], strict=True):
        image = w @ frac[0] + t - frac[1]
        q = a_t @ w @ np.linalg.inv(a_t)
        if np.allclose(image, np.round(image), atol=1e-6) and np.linalg.det(w) < 0:
            if best is None or np.count_nonzero(np.abs(q) > 1e-6) > best[0]:
                best = (np.count_nonzero(np.abs(q) > 1e-6), w, t, q)
    _, w, t, q = best
    assert best[0] == 9  # every Cartesian component mixed
    return dataclasses.replace(sym, rotations=np.stack([sym.rotations[0], w]),
                               translations=np.stack([sym.translations[0], t]),
                               cartesian=np.stack([sym.cartesian[0], q]))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_any_operation_gives_the_same_derivatives(monkeypatch):
    """Force an oblique improper operation (s, p, d blocks of Si rotated by a non-trivial
    real-SH D of det -1): equal to the direct path up to O(delta^2)."""
    module = importlib.import_module("ase_deeph.epc.derivatives")
    original = module.displacement_symmetry
    monkeypatch.setattr(module, "displacement_symmetry",
                        lambda atoms, box, symprec: _oblique_improper(
                            atoms, original(atoms, box, symprec)))
    diffs = []
    for delta in (0.01, 0.005, 1e-4):
        atoms, sym, ref = _pair("si-rotated", delta=delta, onsite_d=_random_onsite)
        diffs.append(_max_diff(sym, ref))
    assert diffs[0][0] / diffs[1][0] == pytest.approx(4.0, rel=0.02)
    assert diffs[0][0] > 1e-6 * diffs[0][1]  # the mixing is really exercised
    assert diffs[2][0] < 1e-8 * diffs[2][1]


# ------------------------------------------------------------------- coupling |g| unchanged
def test_coupling_unchanged():
    atoms, _ = _structure("si")
    ph = epc.phonopy_forces(epc.phonopy_from_atoms(atoms, np.eye(3, dtype=int) * 3),
                            epc.tersoff_si)
    modes = epc.phonon_modes(ph, [[0.2, 0.1, -0.3], [0.5, 0.5, 0.5]], atoms)
    k = [[0.1, 0.2, 0.05], [0.3, -0.1, 0.25]]
    out = []
    for symmetry in (True, False):
        derivs = epc.derivatives(PROVIDER, atoms, symmetry=symmetry, onsite_d=_random_onsite)
        out.append(epc.coupling(derivs, modes, k, form="full").g_avg)
    assert out[1].max() > 10.0  # meV, non-trivial
    np.testing.assert_allclose(out[0], out[1], atol=1e-9 * out[1].max())
