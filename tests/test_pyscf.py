"""The embedded PySCF generator: band fidelity, exact overlaps, equivariance, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from _pyscf_utils import bloch, eigvals
from ase import Atoms
from ase.build import bulk, molecule
from ase.units import Ha
from scipy.spatial.transform import Rotation

from interfaces import pyscf as ps
from interfaces.sph import orbital_rotation

# Off every mesh used (3x3x3 SCF, 5x5x5 dense): a path through Gamma, X, L and generic points.
K_PATH = np.array([[0.0, 0.0, 0.0], [0.1, 0.23, 0.37], [0.5, 0.5, 0.5], [0.31, 0.0, 0.13],
                   [0.375, 0.375, 0.75], [0.5, 0.0, 0.5], [0.07, 0.07, 0.0]])


@pytest.fixture(scope="module")
def si2():
    """2-atom Si, SCF 3x3x3, labels up to 9 A (its 8 A subset is the default r_cut)."""
    atoms = bulk("Si", "diamond", a=5.431)
    hs, mf = ps.run(atoms, kmesh=(3, 3, 3), ke_cutoff=40.0, r_cut=9.0, return_scf=True)
    ref = np.asarray(mf.get_bands(mf.cell.get_abs_kpts(K_PATH))[0]) * Ha  # [n_k, n_ao], eV
    return atoms, hs, ref


@pytest.mark.parametrize("r_cut, tol_ev", [(9.0, 1e-5), (8.0, 1e-3)])
def test_rebuilt_bands_match_pyscf(si2, r_cut, tol_ev):
    """Occupied + 4 empty bands from H(R), S(R) at off-mesh k equal PySCF's get_bands."""
    _, hs, ref = si2
    hs = hs.restrict(r_cut)
    n_bands = int(round(hs.n_electrons)) // 2 + 4
    err = max(np.abs(eigvals(hs, k)[:n_bands] - e[:n_bands]).max()
              for k, e in zip(K_PATH, ref, strict=True))
    assert err < tol_ev


def test_run_fills_physics(si2):
    _, hs, ref = si2
    assert hs.n_electrons == 8.0  # GTH Si: 4 valence electrons per atom
    assert hs.metadata["vbm_eV"] <= hs.fermi_level <= hs.metadata["cbm_eV"]
    assert hs.hermiticity_error() < 1e-10
    assert hs.metadata["s_alias_max"] < 1e-8  # folded S(k) agrees with the real-space S
    assert hs.basis == {"Si": (0, 0, 1, 1, 2)}
    assert hs.metadata["basis_definition"]["Si"][0][4][0] == ps.MIN_EXPONENT
    for k in K_PATH:  # the truncated S(k) stays positive definite
        assert np.linalg.eigvalsh(bloch(hs.restrict(8.0), hs.restrict(8.0).s, k)).min() > 1e-3


@pytest.mark.parametrize("r_cut", [9.0, 8.0, 5.0])
def test_overlap_equals_run(si2, r_cut):
    atoms, hs, _ = si2
    ref = hs.restrict(r_cut)
    s = ps.overlap(atoms, r_cut=r_cut)
    assert np.array_equal(s.edge_index, ref.edge_index)
    assert np.array_equal(s.cell_shift, ref.cell_shift)
    assert np.abs(s.s - ref.s).max() < 1e-10


def test_overlap_supercell_identity():
    """Blocks of a rattled 2x1x1 supercell equal those of the cell for the same bond."""
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.positions[1] += [0.03, -0.02, 0.05]
    big = atoms.repeat((2, 1, 1))
    s1, s2 = ps.overlap(atoms, r_cut=6.0), ps.overlap(big, r_cut=6.0)
    vec1 = {(int(i), tuple(np.round(v, 6))): e for e, (i, v) in
            enumerate(zip(s1.edge_index[0], s1.edge_vectors(), strict=True))}
    assert s2.n_edges == 2 * s1.n_edges
    for e in range(s2.n_edges):
        i, j = s2.edge_index[:, e]
        e1 = vec1[(int(i) % 2, tuple(np.round(s2.edge_vectors()[e], 6)))]
        blk2 = s2.s[s2.block_ptr[e]:s2.block_ptr[e + 1]]
        assert np.abs(blk2 - s1.s[s1.block_ptr[e1]:s1.block_ptr[e1 + 1]]).max() < 1e-13


def test_overlap_gradient_finite_difference():
    """D_ij = dS_ij/dtau_i (bra atom i moved) = -dS_ij/dtau_j off-site (central differences)."""
    atoms = molecule("H2O")
    g = ps.overlap_gradient(atoms, basis="gth-szv", r_cut=5.0)
    e = int(g.overlap.find_edges([0], [1], np.zeros((1, 3), int))[0])  # O-H block
    sl = slice(g.overlap.block_ptr[e], g.overlap.block_ptr[e + 1])
    h = 1e-4
    for moved, sign in ((0, 1.0), (1, -1.0)):  # the bra atom O, the ket atom H
        for c in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[moved, c] += h
            minus.positions[moved, c] -= h
            fd = ps.overlap(plus, "gth-szv", 5.0).s[sl] - ps.overlap(minus, "gth-szv", 5.0).s[sl]
            assert np.abs(fd / (2 * h) - sign * g.values[c, sl]).max() < 1e-6


def _rotated_blocks_error(hs, hs_rot, rotation) -> float:
    """Max |H'_ij - D_i H_ij D_j^T| over all blocks (same edge order)."""
    d = {el: orbital_rotation(ls, rotation) for el, ls in hs.basis.items()}
    sym = hs.atoms.get_chemical_symbols()
    err = 0.0
    for e in range(hs.n_edges):
        i, j = hs.edge_index[:, e]
        blk = hs.h[0][hs.block_ptr[e]:hs.block_ptr[e + 1]].reshape(hs.norbs[i], hs.norbs[j])
        rot = hs_rot.h[0][hs.block_ptr[e]:hs.block_ptr[e + 1]].reshape(blk.shape)
        err = max(err, float(np.abs(rot - d[sym[i]] @ blk @ d[sym[j]].T).max()))
    return err


def test_molecule_equivariance():
    """A rotated water molecule gives D H D^T of the original, to the DFT grid precision."""
    atoms = molecule("H2O")
    rotation = Rotation.random(random_state=3).as_matrix()
    rotated = atoms.copy()
    rotated.positions = atoms.positions @ rotation.T
    hs, hs_rot = ps.run(atoms), ps.run(rotated)
    assert np.array_equal(hs.edge_index, hs_rot.edge_index)
    assert hs.n_electrons == 8.0 and hs.metadata["kind"] == "molecule"
    assert _rotated_blocks_error(hs, hs_rot, rotation) < 1e-5  # measured 2e-6 eV (grid level 5)


def test_molecule_cheap_settings_keep_the_states():
    """Grid level 3 with density fitting (large molecules) keeps water's states near the gap."""
    from ase_deeph.solvers import eigenvalues

    ref = ps.run(molecule("H2O"))
    e_ref = eigenvalues(ref, np.zeros((1, 3)))[0, 0]
    near = np.abs(e_ref - ref.fermi_level) < 10.0
    assert near.sum() >= 4
    for fit in (True, "weigend"):  # PySCF's automatic auxiliary basis, then a named one
        cheap = ps.run(molecule("H2O"), grid_level=3, density_fit=fit)
        assert cheap.metadata["grid_level"] == 3 and cheap.metadata["density_fit"] == fit
        e_cheap = eigenvalues(cheap, np.zeros((1, 3)))[0, 0]
        assert np.abs(e_cheap - e_ref)[near].max() < 5e-3  # eV


def test_periodic_equivariance():
    """Rotating a rattled Si cell (lattice and atoms) rotates every block, H and S."""
    atoms = bulk("Si", "diamond", a=5.431)
    atoms.positions[1] += [0.05, -0.03, 0.02]
    rotation = Rotation.random(random_state=8).as_matrix()
    rotated = atoms.copy()
    rotated.set_cell(np.asarray(atoms.cell) @ rotation.T)
    rotated.positions = atoms.positions @ rotation.T
    kw = dict(basis="gth-szv", kmesh=(2, 2, 2), r_cut=5.0, ke_cutoff=30.0)
    hs, hs_rot = ps.run(atoms, **kw), ps.run(rotated, **kw)
    assert np.array_equal(hs.cell_shift, hs_rot.cell_shift)
    assert _rotated_blocks_error(hs, hs_rot, rotation) < 1e-5
    as_s = [x.replace(h=x.s[None]) for x in (hs, hs_rot)]
    assert _rotated_blocks_error(*as_s, rotation) < 1e-12


@pytest.mark.parametrize("atoms, error", [
    (Atoms("U2", positions=[[0, 0, 0], [0, 0, 2.5]]), ps.UnknownElementError),
    (Atoms("H2O", positions=[[0, 0, 0], [0, 0, 0.3], [0, 0.9, 0]]), ps.GeometryError),
    (Atoms("Si2", positions=[[0, 0, 0], [0, 0, 2.3]], cell=np.zeros((3, 3)), pbc=True),
     ps.GeometryError),
])
def test_bad_input(atoms, error):
    with pytest.raises(error):
        ps.run(atoms, basis="gth-szv")
    with pytest.raises(error):
        ps.overlap(atoms, basis="gth-szv")


def test_thin_vacuum_and_unconverged_scf():
    layer = Atoms("C2", scaled_positions=[[0, 0, 0.5], [1 / 3, 2 / 3, 0.5]],
                  cell=[[2.46, 0, 0], [-1.23, 2.13, 0], [0, 0, 8.0]], pbc=(True, True, False))
    with pytest.raises(ps.GeometryError, match="vacuum"):
        ps.run(layer, basis="gth-szv")
    with pytest.raises(ps.SCFConvergenceError):
        ps.run(molecule("H2O"), basis="gth-szv", max_cycle=1)


def _carbon_cells():
    from ase_deeph.generation.config import GenerateConfig
    from ase_deeph.generation.generate import build_structure

    def proto(**system):
        return build_structure(GenerateConfig.from_dict({"system": system}), 0)[0]

    return {
        "graphene": (proto(prototype="graphene"), (6, 6, 1)),
        "AB bilayer": (proto(prototype="bilayer_graphene", shift="AB"), (6, 6, 1)),
        "AB graphite": (proto(prototype="graphite", shift="AB",
                              interlayer_distance=[3.35, 3.35]), (6, 6, 2)),
        "diamond": (bulk("C", "diamond", a=3.567), (4, 4, 4)),
        "Si": (bulk("Si", "diamond", a=5.431), (4, 4, 4)),
    }


def test_default_basis_is_well_conditioned():
    """min eig S(k) of the shipped basis >= 1e-4 on the carbon family and Si (issue 13).

    The old gth-dzvp-compact basis is checked too, as the control: it is nearly singular
    on graphene (~1e-6), which is what made predictions unstable.
    """
    from ase_deeph.solvers.bloch import bloch_matrices
    from ase_deeph.solvers.kpoints import mesh_points
    from interfaces.pyscf.basis import DEFAULT_BASIS

    def min_eig(basis, atoms, mesh):
        hs = ps.overlap(atoms, basis=basis, r_cut=8.0)
        s = bloch_matrices(hs, mesh_points(mesh, gamma_centred=True), which=("s",)).s
        return min(np.linalg.eigvalsh(x)[0] for x in s)

    cells = _carbon_cells()
    new = {name: min_eig(DEFAULT_BASIS, a, m) for name, (a, m) in cells.items()}
    assert min(new.values()) >= 1e-4, new
    old = min_eig("gth-dzvp-compact", *cells["graphene"])
    assert old < 1e-5  # the control: the reason for the change


def test_overlap_tables_equal_pyscf_integrals():
    """The two-centre tables of a Gaussian basis (large cells) give PySCF's overlap blocks."""
    from interfaces.neighbours import neighbour_list
    from interfaces.pyscf.blocks import prepare
    from interfaces.pyscf.overlap import pair_values
    from interfaces.pyscf.radial import gaussian_radial_basis

    atoms = bulk("C", "diamond", a=3.57) * (2, 1, 1)
    atoms += molecule("H2")
    atoms.positions[-2:] += [0.3, 0.4, 0.9]
    setup = prepare(atoms, "gth-dzvp-molopt-sr-compact")
    i, j, shift = neighbour_list(setup.atoms, 8.0)
    ei = np.stack([i, j])
    ref = pair_values(setup, ei, shift, "int1e_ovlp", 1, tables=False)
    tab = pair_values(setup, ei, shift, "int1e_ovlp", 1, tables=True)
    assert np.abs(tab - ref).max() < 1e-8  # measured 2e-9
    rb = gaussian_radial_basis("C", setup.basis_def["C"])
    assert rb.shells == setup.shells["C"][0]
    assert np.allclose([o.norm() for o in rb.orbitals], 1.0, atol=1e-6)


def test_compact_merges_primitives_raised_to_one_exponent():
    """Two primitives raised to 0.15 become one (same function): PySCF's multigrid fails on
    repeated exponents (Mo in gth-dzvp-molopt-sr-compact)."""
    from pyscf import gto

    from interfaces.pyscf.basis import compact

    shells = [[0, [2.0, 0.4, 0.0], [0.11, 0.3, 0.5], [0.06, 0.2, 0.7]], [1, [0.9, 1.0]]]
    merged = compact(shells)
    assert merged == [[0, [2.0, 0.4, 0.0], [0.15, 0.5, 1.2]], [1, [0.9, 1.0]]]
    raised = [[0, [2.0, 0.4, 0.0], [0.15, 0.3, 0.5], [0.15, 0.2, 0.7]], [1, [0.9, 1.0]]]
    s = [gto.M(atom="H 0 0 0; H 0 0 1.1", basis={"H": b}, unit="Angstrom").intor("int1e_ovlp")
         for b in (merged, raised)]
    np.testing.assert_allclose(s[0], s[1], rtol=0, atol=1e-12)
    assert shells[0][2][0] == 0.11  # the input is not modified
