"""Issue 16, "one of each": one OverlapGradient, one k-mesh rule, one neighbour-list builder."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene, molecule
from ase.units import Bohr

from ase_deeph.inference.toy import DEFAULT_ELEMENTS, ToyParams, toy_hs
from ase_deeph.model.graph import build_graph
from interfaces.kspacing import KSPACING_SCF, KSPACING_SOLVE, default_kmesh
from interfaces.nao.basis_files import RadialBasis, RadialOrbital
from interfaces.nao.twocenter import TwoCenterTables
from interfaces.neighbours import neighbor_list, neighbour_list
from interfaces.overlap_gradient import OverlapGradient

DIMER = Atoms("Si2", positions=[[0.0, 0.0, 0.0], [0.3, -0.4, 2.3]])


def _triples(i, j, shift) -> set:
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist(),
                   map(tuple, np.asarray(shift).tolist()), strict=True))


def _offsite(hs) -> set:
    i, j = hs.edge_index
    on = (i == j) & ~hs.cell_shift.any(axis=1)
    return _triples(i[~on], j[~on], hs.cell_shift[~on])


# ------------------------------------------------------------------ OverlapGradient
@functools.lru_cache(maxsize=1)
def _gth_szv_si_nao() -> TwoCenterTables:
    """PySCF's gth-szv Si contractions (s, p) tabulated as a numerical radial basis."""
    gto = pytest.importorskip("pyscf.gto")
    from interfaces.pyscf.basis import basis_definition

    basis_def = basis_definition("gth-szv", ["Si"])
    alpha_min = min(p[0] for shell in basis_def["Si"] for p in shell[1:]) / Bohr**2  # 1/A^2
    rc = math.sqrt(36.0 / alpha_min)  # exp(-36) beyond
    r = np.linspace(0.0, rc, 2001)  # [n_r], Angstrom
    mol = gto.M(atom=[["Si", (0, 0, 0)]], basis=basis_def, unit="Ang", verbose=0)
    coords = np.zeros((len(r), 3))
    coords[:, 2] = r / Bohr  # along z, Bohr
    ao = mol.eval_gto("GTOval_sph", coords) * Bohr**-1.5  # [n_r, (s, px, py, pz)], A^-3/2
    s_rad = ao[:, 0] * math.sqrt(4 * math.pi)  # phi_s = R Y_00
    p_rad = ao[:, 3] / math.sqrt(3 / (4 * math.pi))  # phi_pz on the z axis = R Y_10(z)
    basis = RadialBasis("Si", (RadialOrbital(0, 0, 1, rc, r, s_rad),
                               RadialOrbital(1, 0, 1, rc, r, p_rad)), "test")
    return TwoCenterTables({"Si": basis})  # built once, shared by every call


def _producers():
    """(gradient, overlap) of both producers for Si in the same Gaussian basis."""
    pytest.importorskip("pyscf")
    from interfaces import pyscf as ps
    from interfaces.nao import overlap as nao

    basis = _gth_szv_si_nao()
    return {
        "pyscf": (lambda a: ps.overlap_gradient(a, "gth-szv"), lambda a: ps.overlap(a, "gth-szv")),
        "nao": (lambda a: nao.overlap_gradient(a, basis), lambda a: nao.overlap(a, basis)),
    }


def test_one_overlap_gradient_class():
    from interfaces import pyscf as ps
    from interfaces.nao import overlap as nao

    assert ps.OverlapGradient is nao.OverlapGradient is OverlapGradient
    hs = toy_hs(Atoms("Si", positions=[[0, 0, 0]]))  # one 9 x 9 on-site block
    grad = OverlapGradient(overlap=hs, values=np.arange(3 * 81.0).reshape(3, 81))
    assert grad.block(0, 0).shape == (3, 9, 9) and grad.block(0, 0)[1, 0, 0] == 81.0
    with pytest.raises(KeyError):
        grad.block(0, 0, (1, 0, 0))
    with pytest.raises(ValueError, match="values must have shape"):
        OverlapGradient(overlap=hs, values=np.zeros((3, 1)))


@pytest.mark.parametrize("name", ["pyscf", "nao"])
def test_each_producer_matches_its_own_overlap(name):
    """D_ij(R) = dS_ij(R)/dtau_i (bra atom moved) = -dS_ij(R)/dtau_j (central differences)."""
    gradient, overlap = _producers()[name]
    d = gradient(DIMER).block(0, 1)  # [3, 4, 4]
    assert np.abs(d).max() > 0.1
    h = 1e-4
    for moved, sign in ((0, 1.0), (1, -1.0)):
        for ax in range(3):
            s_pm = []
            for step in (h, -h):
                atoms = DIMER.copy()
                atoms.positions[moved, ax] += step
                s_pm.append(overlap(atoms).block(0, 1, which="s"))
            np.testing.assert_allclose((s_pm[0] - s_pm[1]) / (2 * h), sign * d[ax], atol=1e-6)


def test_both_producers_agree():
    """Same basis, same convention: PySCF (int1e_ipovlp) and NAO blocks agree, on-site too."""
    producers = _producers()
    a, b = (producers[k][0](DIMER) for k in ("pyscf", "nao"))
    for i, j in ((0, 1), (1, 0), (0, 0), (1, 1)):
        np.testing.assert_allclose(a.overlap.block(i, j, which="s"),
                                   b.overlap.block(i, j, which="s"), atol=1e-8)
        np.testing.assert_allclose(a.block(i, j), b.block(i, j), atol=1e-8)
    on = a.block(0, 0)
    np.testing.assert_allclose(on, -on.transpose(0, 2, 1), atol=1e-12)  # antisymmetric
    assert np.abs(on[:, 0, 1:]).max() > 0.1  # s-p


def test_epc_onsite_d_providers_agree():
    """The EPC consumer takes both producers' blocks as they are (no sign flip)."""
    from ase_deeph import epc

    pytest.importorskip("pyscf")
    d_pyscf = epc.onsite_d_pyscf("gth-szv")("Si")
    d_nao = epc.onsite_d_nao(_gth_szv_si_nao())("Si")
    np.testing.assert_allclose(d_pyscf, d_nao, atol=1e-8)


# ------------------------------------------------------------------------ k-mesh rule
def _cells() -> list[Atoms]:
    slab = bulk("Si", "diamond", 5.43, cubic=True)
    slab.pbc = (True, True, False)
    tilted = Atoms("H", cell=[[3.1, 0, 0], [1.2, 4.4, 0], [0.3, 0.7, 6.1]], pbc=True)
    return [bulk("Si", "diamond", 5.43), bulk("Cu", "fcc", 3.6), graphene(vacuum=7.5),
            slab, tilted, molecule("H2O")]


@pytest.mark.parametrize("atoms", _cells())
def test_one_kmesh_rule_reproduces_both_defaults(atoms):
    recip = np.linalg.norm(atoms.cell.reciprocal(), axis=1)  # [3], no 2 pi
    scf = tuple(max(1, math.ceil(2 * np.pi * b / 0.5 - 1e-6)) if p else 1
                for b, p in zip(recip, atoms.pbc, strict=True))  # the PySCF rule
    solve = tuple(max(1, math.ceil(25.0 * b)) if p else 1
                  for b, p in zip(recip, atoms.pbc, strict=True))  # the CLI rule
    assert default_kmesh(atoms) == default_kmesh(atoms, KSPACING_SCF) == scf
    assert default_kmesh(atoms, KSPACING_SOLVE) == solve


def test_kmesh_rule_is_shared():
    from ase_deeph.cli import workflows
    from ase_deeph.solvers.conditioning import OverlapPolicy
    from interfaces import pyscf as ps

    assert ps.default_kmesh is default_kmesh and ps.KSPACING == KSPACING_SCF == 0.5
    assert KSPACING_SOLVE == pytest.approx(2 * np.pi / 25)
    assert not hasattr(workflows, "default_kmesh")
    si = bulk("Si", "diamond", 5.43)
    mesh = workflows.solve_on_mesh(toy_hs(si), OverlapPolicy(kind="exact"))[2]
    assert mesh.size == default_kmesh(si, KSPACING_SOLVE) == (8, 8, 8)
    with pytest.raises(ValueError, match="kspacing"):
        default_kmesh(si, 0.0)


def test_kmesh_rule_on_a_cell_without_third_vector():
    layer = Atoms("C2", positions=[[0, 0, 0], [1.42, 0, 0]],
                  cell=[[2.46, 0, 0], [-1.23, 2.13, 0], [0, 0, 0]], pbc=(True, True, False))
    # |b_1| = |b_2| = 2 / (sqrt(3) 2.46) per Angstrom (ASE's pseudo-inverse reciprocal cell)
    assert default_kmesh(layer, KSPACING_SOLVE) == (12, 12, 1)
    assert default_kmesh(layer) == (6, 6, 1)


# --------------------------------------------------------------- neighbour-list builder
def _toy_si() -> tuple[Atoms, float]:
    atoms = bulk("Si", "diamond", 5.43).repeat((2, 1, 1))
    atoms.rattle(0.05, seed=3)
    return atoms, ToyParams().cutoff * 2.0 * DEFAULT_ELEMENTS["Si"].r_cov("Si")


def test_graph_edges_equal_toy_label_blocks():
    atoms, r_cut = _toy_si()
    hs = toy_hs(atoms)
    g = build_graph(atoms, r_cut)
    assert _offsite(hs) == _triples(*g.edge_index, g.cell_shift)
    assert g.n_edges == hs.n_edges - len(atoms)


def test_graph_edges_equal_pyscf_overlap_blocks():
    pytest.importorskip("pyscf")
    from interfaces import pyscf as ps

    atoms = bulk("Si", "diamond", 5.43)
    atoms.rattle(0.05, seed=1)
    for r_cut in (3.0, 5.5):
        s = ps.overlap(atoms, "gth-szv", r_cut=r_cut)
        g = build_graph(atoms, r_cut)
        assert _offsite(s) == _triples(*g.edge_index, g.cell_shift)


def test_nao_edges_with_r_cut_are_the_neighbour_list():
    from interfaces.nao.overlap import overlap_edges

    atoms, r_cut = _toy_si()
    edge_index, shift = overlap_edges(atoms, {}, r_cut=r_cut)
    assert _triples(*edge_index, shift) == _triples(*neighbour_list(atoms, r_cut))
    assert neighbor_list is neighbour_list  # the old spelling is the same function


def test_fold_blocks_are_the_neighbour_list():
    """A short-ranged X(R) on the neighbour list survives k-space and the folding exactly."""
    from interfaces.pyscf.fold import dense_mesh, fold, mesh_kpts

    atoms = bulk("Si", "diamond", 5.43)
    atoms.rattle(0.05, seed=4)
    r_cut, n_ao = 4.0, 2
    lattice = np.asarray(atoms.cell)
    mesh = dense_mesh(lattice, (True, True, True), r_cut)
    i, j, shift = neighbour_list(atoms, r_cut)
    blocks = np.random.default_rng(0).normal(size=(len(i), n_ao, n_ao))  # [n_edges, 2, 2]
    kpts = mesh_kpts(mesh)  # [n_k, 3]
    phase = np.exp(2j * np.pi * kpts @ shift.T)  # [n_k, n_edges]
    xk = np.zeros((len(kpts), 2 * n_ao, 2 * n_ao), complex)
    for e in range(len(i)):
        xk[:, n_ao * i[e]:n_ao * i[e] + n_ao, n_ao * j[e]:n_ao * j[e] + n_ao] += (
            phase[:, e, None, None] * blocks[e])
    edge_index, cell_shift, (values,), _ = fold([xk], mesh, lattice, atoms.positions,
                                                np.arange(3) * n_ao, r_cut)
    np.testing.assert_array_equal(edge_index, np.stack([i, j]))  # same order too
    np.testing.assert_array_equal(cell_shift, shift)
    np.testing.assert_allclose(values, blocks.ravel(), atol=1e-12)


# ------------------------------------------------------------------------- spelling
def test_gamma_centred_keyword_and_its_old_spelling():
    from ase_deeph.solvers import kmesh, mesh_points

    np.testing.assert_array_equal(mesh_points(4, gamma_centred=True),
                                  mesh_points(4, gamma_centered=True))
    assert not np.array_equal(mesh_points(4, gamma_centred=True), mesh_points(4))
    si = bulk("Si", "diamond", 5.43)
    a, b = kmesh(si, 4, gamma_centred=True), kmesh(si, 4, gamma_centered=True)
    assert a.gamma_centred and b.gamma_centred
    np.testing.assert_array_equal(a.kpts, b.kpts)
    with pytest.raises(TypeError):
        mesh_points(4, gamma_centred=True, gamma_centered=False)
