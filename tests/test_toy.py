"""The toy tight-binding model: covariance laws, Hermiticity, positive S, supercell folding.

Also exercises ``interfaces.checks`` (space-group and bond-axis tests) on toy crystals,
where the answers are known: zero for correct data, clearly nonzero after a wrong
orbital table is applied.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from ase import Atoms
from ase.build import bulk, graphene, molecule
from scipy.spatial.transform import Rotation

from ase_deeph.inference.toy import DEFAULT_ELEMENTS, ElementParams, ToyParams, toy_hs
from interfaces import orbitals
from interfaces.checks import bond_axis_error, symmetry_error
from interfaces.sph import orbital_rotation

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


# ----------------------------------------------------------------------------- helpers
def bloch(hs, kpt, which: str = "h", channel: int = 0) -> np.ndarray:
    """Dense X(k) = sum_R X(R) exp(+i 2 pi k.R); spinor rows are (spin, atom, orbital)."""
    spinor = which == "h" and hs.spin == "spinor"
    values = hs.s if which == "s" else hs.h[channel]
    nsp = 2 if spinor else 1
    n = hs.n_orbitals
    out = np.zeros((nsp * n, nsp * n), dtype=np.complex128)
    off = hs.orbital_offsets
    for g in hs.shape_groups():
        i, j = hs.edge_index[:, g]
        ni, nj = hs.norbs[i[0]], hs.norbs[j[0]]
        phase = np.exp(2j * np.pi * hs.cell_shift[g] @ np.asarray(kpt))
        blocks = values[hs.block_index(g, spinor)] * phase[:, None, None]
        rows = (np.arange(nsp)[:, None] * n + np.arange(ni)).reshape(-1)
        cols = (np.arange(nsp)[:, None] * n + np.arange(nj)).reshape(-1)
        np.add.at(out, (off[i][:, None, None] + rows[None, :, None],
                        off[j][:, None, None] + cols[None, None, :]), blocks)
    return out


def eigenvalues(hs, kpt) -> np.ndarray:
    return scipy.linalg.eigh(bloch(hs, kpt, "h"), _spin_s(hs, kpt), eigvals_only=True)


def _spin_s(hs, kpt):
    s = bloch(hs, kpt, "s")
    return np.kron(np.eye(2), s) if hs.spin == "spinor" else s


def rotate(atoms: Atoms, q: np.ndarray) -> Atoms:
    out = atoms.copy()
    out.set_cell(np.asarray(atoms.cell) @ q.T, scale_atoms=False)
    out.positions = atoms.positions @ q.T
    return out


def spin_half(q: np.ndarray) -> np.ndarray:
    rotvec = Rotation.from_matrix(q).as_rotvec()
    return scipy.linalg.expm(-0.5j * np.einsum("k,kab->ab", rotvec, PAULI))


def rattled(atoms: Atoms, seed: int, amount: float = 0.08) -> Atoms:
    atoms = atoms.copy()
    atoms.rattle(amount, seed=seed)
    return atoms


def structures() -> dict[str, Atoms]:
    gr = graphene(vacuum=6.0)
    gr.pbc = (True, True, False)
    cluster = molecule("CH3CH2OH")
    cluster.append("N")
    cluster.positions[-1] = [0.0, 0.0, 2.4]
    slab = bulk("Si", "diamond", 5.43) * (1, 1, 2)
    slab.pbc = (True, False, True)
    return {
        "Si-rattled": rattled(bulk("Si", "diamond", 5.43), 1),
        "BN-rattled": rattled(bulk("BN", "zincblende", 3.62), 2),
        "graphene-rattled": rattled(gr, 3, 0.05),
        "CH3CH2OH+N": rattled(cluster, 4, 0.03),
        "Si-slab-mixed-pbc": rattled(slab, 5),
        "SiC-small-cell": rattled(bulk("SiC", "zincblende", 4.36), 6),
    }


STRUCTS = structures()


def assert_blocks(hs, hs_rot, transform, atol: float = 1e-11) -> None:
    """Every block of hs_rot equals transform(X, el_i, el_j) of the same (i, j, R) block."""
    assert np.array_equal(hs.edge_index, hs_rot.edge_index)
    assert np.array_equal(hs.cell_shift, hs_rot.cell_shift)
    symbols = hs.atoms.get_chemical_symbols()
    for which in ("s", "h"):
        spinor = which == "h" and hs.spin == "spinor"
        for c in range(1 if which == "s" else hs.n_spin_channels):
            a = hs.s if which == "s" else hs.h[c]
            b = hs_rot.s if which == "s" else hs_rot.h[c]
            for g in hs.shape_groups():
                idx = hs.block_index(g, spinor)
                i, j = hs.edge_index[:, g[0]]
                want = transform(a[idx], symbols[i], symbols[j], spinor)
                np.testing.assert_allclose(b[idx], want, atol=atol, rtol=0)


# ------------------------------------------------------------------------- covariance
@pytest.mark.parametrize("name", list(STRUCTS))
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_rotation_law(name: str, spin: str) -> None:
    atoms = STRUCTS[name]
    q = Rotation.random(random_state=len(name)).as_matrix()
    hs, hs_rot = toy_hs(atoms, spin=spin), toy_hs(rotate(atoms, q), spin=spin)
    d = {el: orbital_rotation(ls, q) for el, ls in hs.basis.items()}
    u = spin_half(q)

    def transform(x, ei, ej, spinor):
        di, dj = d[ei], d[ej]
        if spinor:  # U = kron(D^{1/2}, D^orb), spin-major
            di, dj = np.kron(u, di), np.kron(u, dj)
        return di @ x @ dj.conj().T

    assert_blocks(hs, hs_rot, transform)


@pytest.mark.parametrize("name", ["Si-rattled", "CH3CH2OH+N", "Si-slab-mixed-pbc"])
def test_inversion_law(name: str) -> None:
    atoms = STRUCTS[name]
    hs, hs_inv = toy_hs(atoms, spin="spinor"), toy_hs(rotate(atoms, -np.eye(3)), spin="spinor")
    parity = {el: np.concatenate([np.full(2 * lv + 1, (-1.0) ** lv) for lv in ls])
              for el, ls in hs.basis.items()}

    def transform(x, ei, ej, spinor):
        pi, pj = parity[ei], parity[ej]
        if spinor:  # inversion acts trivially on spin
            pi, pj = np.tile(pi, 2), np.tile(pj, 2)
        return pi[:, None] * x * pj[None, :]

    assert_blocks(hs, hs_inv, transform)


def test_rotation_law_with_e3nn_wigner() -> None:
    """Cross-check against e3nn: D = Irreps(basis).D_from_matrix(P Q P^T)."""
    torch = pytest.importorskip("torch")
    o3 = pytest.importorskip("e3nn.o3")
    atoms = STRUCTS["BN-rattled"]
    q = Rotation.random(random_state=11).as_matrix()
    hs, hs_rot = toy_hs(atoms), toy_hs(rotate(atoms, q))
    p = np.eye(3)[[1, 2, 0]]
    qt = torch.tensor(p @ q @ p.T, dtype=torch.float64)
    d = {el: o3.Irreps(irr).D_from_matrix(qt).numpy() for el, irr in hs.irreps().items()}
    for el, ls in hs.basis.items():  # e3nn goes through Euler angles: ~1e-7 round-off
        np.testing.assert_allclose(d[el], orbital_rotation(ls, q), atol=1e-6)
    assert_blocks(hs, hs_rot, lambda x, ei, ej, _: d[ei] @ x @ d[ej].T, atol=2e-5)


def test_permutation_and_translation_invariance() -> None:
    atoms = STRUCTS["BN-rattled"]
    hs = toy_hs(atoms)
    moved = atoms.copy()
    moved.positions += [0.3, -1.1, 2.0]
    shuffled = moved[[1, 0]]
    hs2 = toy_hs(shuffled)
    for i, j, r in [(0, 1, (0, 0, 0)), (1, 0, (1, 0, -1)), (0, 0, (0, 1, 0)), (1, 1, (0, 0, 0))]:
        np.testing.assert_allclose(hs2.block(1 - i, 1 - j, r), hs.block(i, j, r), atol=1e-12)
        np.testing.assert_allclose(hs2.block(1 - i, 1 - j, r, "s"), hs.block(i, j, r, "s"),
                                   atol=1e-14)


# ------------------------------------------------------------------ exact identities
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
@pytest.mark.parametrize("name", ["Si-rattled", "SiC-small-cell", "CH3CH2OH+N"])
def test_hermiticity_is_exact(name: str, spin: str) -> None:
    hs = toy_hs(STRUCTS[name], spin=spin)
    assert hs.hermiticity_error() == 0.0
    assert np.all(hs.reverse_edges >= 0)


@pytest.mark.parametrize("name", list(STRUCTS))
def test_overlap_positive_definite(name: str) -> None:
    hs = toy_hs(STRUCTS[name])
    rng = np.random.default_rng(0)
    for k in rng.uniform(-0.5, 0.5, size=(4, 3)) * hs.atoms.pbc:
        s = bloch(hs, k, "s")
        np.testing.assert_allclose(s, s.conj().T, atol=1e-14)
        assert np.linalg.eigvalsh(s).min() > 0.2


@pytest.mark.parametrize("spin", ["none", "spinor"])
@pytest.mark.parametrize("name", ["graphene-rattled", "SiC-small-cell"])
def test_supercell_folding(name: str, spin: str) -> None:
    """Eigenvalues of a 2x2x1 supercell at K equal the primitive ones at (K + g) / 2."""
    prim = STRUCTS[name]
    hs_p, hs_s = toy_hs(prim, spin=spin), toy_hs(prim * (2, 2, 1), spin=spin)
    rng = np.random.default_rng(5)
    for kk in rng.uniform(-0.5, 0.5, size=(2, 3)) * prim.pbc:
        folded = np.sort(np.concatenate([
            eigenvalues(hs_p, [(kk[0] + g1) / 2, (kk[1] + g2) / 2, kk[2]])
            for g1 in (0, 1) for g2 in (0, 1)]))
        np.testing.assert_allclose(eigenvalues(hs_s, kk), folded, atol=1e-9)


# ------------------------------------------------------------------- model physics
def test_single_atom_spin_orbit_splitting() -> None:
    """Isolated C: the p level splits into j = 3/2 (eps + lambda/2) and j = 1/2 (eps - lambda)."""
    lam, eps_p = 0.3, -5.0
    c = DEFAULT_ELEMENTS["C"]
    params = ToyParams(elements={"C": ElementParams(c.shells, (c.onsite[0], eps_p), c.hopping,
                                                     c.overlap, c.valence, soc=lam)})
    hs = toy_hs(Atoms("C", positions=[[0.0, 0.0, 0.0]]), params=params, spin="spinor")
    assert hs.n_edges == 1
    e = np.linalg.eigvalsh(hs.block(0, 0))
    want = np.sort([c.onsite[0]] * 2 + [eps_p - lam] * 2 + [eps_p + lam / 2] * 4)
    np.testing.assert_allclose(e, want, atol=1e-12)


def test_crystal_field_follows_site_symmetry() -> None:
    """The L = 2 on-site term vanishes at cubic (Td) sites, splits p at D3h (graphene)."""
    si = toy_hs(bulk("Si", "diamond", 5.43))
    p_si = si.block(0, 0)[1:4, 1:4]
    np.testing.assert_allclose(p_si, p_si[0, 0] * np.eye(3), atol=1e-12)
    gr = graphene(vacuum=6.0)
    gr.pbc = True
    p_c = toy_hs(gr).block(0, 0)[1:4, 1:4]
    e = np.linalg.eigvalsh(p_c)  # p_z (index 1 = z) differs from p_x = p_y
    assert abs(e[1] - e[0]) < 1e-12 or abs(e[2] - e[1]) < 1e-12
    assert np.ptp(e) > 1e-2
    np.testing.assert_allclose(p_c[[0, 2], 1], 0.0, atol=1e-12)


def test_onsite_depends_on_environment_and_cutoff_is_smooth() -> None:
    dimer = Atoms("C2", positions=[[0, 0, 0], [0, 0, 1.4]])
    third = dimer + Atoms("H", positions=[[1.1, 0.0, 0.0]])
    assert np.abs(toy_hs(dimer).block(0, 0) - toy_hs(third).block(0, 0)).max() > 1e-2
    r_cut = ToyParams().cutoff * 2 * DEFAULT_ELEMENTS["C"].r_cov("C")
    far = toy_hs(Atoms("C2", positions=[[0, 0, 0], [0, 0, r_cut - 1e-4]]))
    assert far.n_edges == 4
    assert np.abs(far.block(0, 1)).max() < 1e-6 and np.abs(far.block(0, 1, which="s")).max() < 1e-7
    assert toy_hs(Atoms("C2", positions=[[0, 0, 0], [0, 0, r_cut + 1e-4]])).n_edges == 2


def test_metadata_and_errors() -> None:
    hs = toy_hs(molecule("CH3CH2OH"), spin="collinear")
    assert hs.n_electrons == 2 * 4 + 6 * 1 + 6
    assert math.isnan(hs.fermi_level)
    assert hs.source_code == "toy" and hs.spin == "collinear"
    np.testing.assert_allclose(hs.s[hs.block_index(hs.find_edges([0], [0], [[0, 0, 0]]))][0],
                               np.eye(4), atol=0)
    with pytest.raises(ValueError, match="Fe"):
        toy_hs(Atoms("FeC", positions=[[0, 0, 0], [0, 0, 1.8]]))
    with pytest.raises(ValueError, match="top of each other"):
        toy_hs(Atoms("C2", positions=[[0, 0, 0], [0, 0, 0]]))


def test_seed_changes_the_model_not_the_structure() -> None:
    atoms = STRUCTS["Si-rattled"]
    a, b = toy_hs(atoms, seed=0), toy_hs(atoms, seed=1)
    assert np.array_equal(a.edge_index, b.edge_index)
    assert np.abs(a.h - b.h).max() > 1e-2
    assert np.array_equal(a.h, toy_hs(atoms, seed=0).h)


# ------------------------------------------------------------- interfaces.checks
def _crystals() -> dict[str, Atoms]:
    gr = graphene(vacuum=7.0)
    gr.pbc = True
    return {"Si": bulk("Si", "diamond", 5.43), "graphene": gr,
            "BN-hexagonal-cell": bulk("BN", "wurtzite", a=2.55, c=4.17)}


@pytest.mark.parametrize("name", ["Si", "graphene", "BN-hexagonal-cell"])
@pytest.mark.parametrize("spin", ["none", "spinor"])
def test_symmetry_checks_zero_on_toy_crystals(name: str, spin: str) -> None:
    hs = toy_hs(_crystals()[name], spin=spin)
    assert symmetry_error(hs, "s") < 1e-12
    assert symmetry_error(hs, "h") < 1e-11
    assert bond_axis_error(hs) < 1e-12


@pytest.mark.parametrize("code", ["openmx", "abacus", "siesta", "pyscf"])
def test_symmetry_checks_detect_wrong_tables(code: str) -> None:
    """Data left in a code's order (a forgotten conversion) fail both checks."""
    hs = toy_hs(rattled(bulk("Si", "diamond", 5.43), 9, 0.0))
    wrong = orbitals.from_internal(hs, code)
    assert symmetry_error(wrong, "s") > 1e-2
    assert symmetry_error(wrong, "h") > 1e-2
    assert bond_axis_error(wrong) > 1e-2
    # converting back restores exact symmetry
    assert symmetry_error(orbitals.to_internal(wrong, code), "h") < 1e-11


def test_magnetic_spinor_breaks_h_but_not_spin_averaged_h() -> None:
    """An on-site Zeeman term m.sigma breaks the space group of H; (uu + dd) / 2 keeps it."""
    hs = toy_hs(bulk("Si", "diamond", 5.43), spin="spinor")
    onsite = hs.find_edges([0, 1], [0, 1], np.zeros((2, 3), int))
    h = hs.h[0].copy()
    zeeman = np.kron(0.3 * PAULI[0], np.eye(hs.norbs[0]))  # moment along x
    h[hs.block_index(onsite, spinor=True)] += zeeman
    magnet = hs.replace(h=h[None])
    assert symmetry_error(magnet, "h") > 0.1
    assert symmetry_error(magnet, "h0") < 1e-11
    assert symmetry_error(toy_hs(bulk("Si", "diamond", 5.43), spin="collinear"), "h0") < 1e-11


def test_bond_axis_detects_wrong_r_sign() -> None:
    hs = toy_hs(rattled(bulk("SiC", "zincblende", 4.36), 3))
    flipped = hs.replace(cell_shift=-hs.cell_shift)
    assert bond_axis_error(hs) < 1e-12
    assert bond_axis_error(flipped) > 1e-2


# ----------------------------------------------------------------- neighbour list
def _brute_pairs(atoms: Atoms, r_cut: float) -> set:
    from ase.geometry import complete_cell

    cell = np.asarray(atoms.cell)
    inv = np.linalg.inv(complete_cell(cell))
    frac = atoms.positions @ inv  # atoms may sit far outside the cell
    reach = np.ceil(r_cut * np.linalg.norm(inv, axis=0) + np.ptp(frac, axis=0)).astype(int) + 1
    ranges = [np.arange(-n, n + 1) if p else np.array([0])
              for n, p in zip(reach, atoms.pbc, strict=True)]
    shifts = np.stack(np.meshgrid(*ranges, indexing="ij"), -1).reshape(-1, 3)
    pos = atoms.positions
    vec = pos[None, None] + (shifts @ cell)[:, None, None] - pos[None, :, None]  # [S, i, j, 3]
    s, i, j = np.nonzero(np.linalg.norm(vec, axis=-1) < r_cut)
    return set(zip(i.tolist(), j.tolist(), *shifts[s].T.tolist(), strict=True))


def _nl_cases() -> dict[str, Atoms]:
    chain = Atoms("H2", positions=[[0, 0, 0], [0.2, 0.1, 0.74]], cell=[1.1, 0, 0],
                  pbc=(True, False, False))
    skew = Atoms("CO", positions=[[0.1, 0.2, 0.3], [1.0, 0.9, 0.4]],
                 cell=[[2.0, 0, 0], [1.7, 1.2, 0], [0.4, 0.5, 1.6]], pbc=True)
    outside = bulk("SiC", "zincblende", 4.36)
    outside.positions[1] += 2.0 * outside.cell[0] - 3.0 * outside.cell[2] + [0.1, 0.0, 0.0]
    return {"Si-slab": STRUCTS["Si-slab-mixed-pbc"], "atom-outside-cell": outside,
            "graphene": STRUCTS["graphene-rattled"], "cluster": STRUCTS["CH3CH2OH+N"],
            "chain-tiny-cell": chain, "skewed-tiny-cell": skew}


@pytest.mark.parametrize("name", list(_nl_cases()))
@pytest.mark.parametrize("r_cut", [0.9, 3.1, 6.5])
def test_neighbor_list_matches_brute_force(name: str, r_cut: float) -> None:
    from interfaces.neighbours import neighbor_list

    atoms = _nl_cases()[name]
    i, j, shift = neighbor_list(atoms, r_cut)
    got = list(zip(i.tolist(), j.tolist(), *shift.T.tolist(), strict=True))
    assert got == sorted(got)  # sorted by (i, j, R), hence deterministic
    assert set(got) == _brute_pairs(atoms, r_cut) and len(set(got)) == len(got)
    assert i.dtype == j.dtype == shift.dtype == np.int64
    i2, j2, s2 = neighbor_list(atoms, r_cut, self_interaction=False)
    onsite = (i == j) & ~shift.any(axis=1)
    assert onsite.sum() == len(atoms)
    np.testing.assert_array_equal(i2, i[~onsite])
    np.testing.assert_array_equal(s2, shift[~onsite])


def test_f_shells_are_covariant_too() -> None:
    """A user element with s, p, d, f shells: rotation law (incl. spinors) and symmetry checks."""
    elements = dict(DEFAULT_ELEMENTS)
    elements["Pt"] = ElementParams((0, 1, 2, 3), (-6.0, -1.0, -4.0, 2.0), (2.0, 2.0, 1.5, 1.0),
                                   (0.3, 0.3, 0.25, 0.2), 10.0)
    params = ToyParams(elements=elements)
    pt = bulk("Pt", "fcc", 3.92)
    hs = toy_hs(pt, params=params, spin="spinor")
    assert hs.irreps() == {"Pt": "1x0e+1x1o+1x2e+1x3o"}
    assert symmetry_error(hs, "h") < 1e-11 and bond_axis_error(hs) < 1e-12
    atoms = rattled(pt * (1, 1, 2) + Atoms("C", positions=[[1.0, 0.4, 0.3]]), 8, 0.05)
    q = Rotation.random(random_state=3).as_matrix()
    a, b = toy_hs(atoms, params=params), toy_hs(rotate(atoms, q), params=params)
    d = {el: orbital_rotation(ls, q) for el, ls in a.basis.items()}
    assert_blocks(a, b, lambda x, ei, ej, _: d[ei] @ x @ d[ej].T)
    with pytest.raises(ValueError, match="l <= 3"):
        ElementParams((0, 4), (0.0, 0.0), (1.0, 1.0), (0.1, 0.1), 1.0)
