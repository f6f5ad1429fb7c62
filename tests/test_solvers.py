"""Tests of ase_deeph.solvers on hand-built tight-binding models with analytic answers."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from _solvers_utils import (
    chain,
    graphene_f,
    graphene_pz,
    graphene_supercell,
    hs_from_blocks,
    random_model,
)
from ase import Atoms
from ase.spectrum.band_structure import BandStructure

from ase_deeph import solvers
from ase_deeph.solvers import bloch as bloch_mod

RNG = np.random.default_rng(20261121)


@pytest.fixture(scope="module")
def big_model():
    return random_model(n_atoms=50, shells=(0, 1), seed=3)  # 200 orbitals


# --------------------------------------------------------------------- analytic bands
@pytest.mark.parametrize("s_nn", [0.0, 0.12])
def test_graphene_analytic(s_nn):
    t = -2.7
    hs = graphene_pz(t=t, s_nn=s_nn)
    k = RNG.uniform(-1, 1, (50, 3))
    f = graphene_f(k)
    expect = np.sort(np.stack([t * f / (1 + s_nn * f), -t * f / (1 - s_nn * f)], 1), 1)
    e = solvers.eigenvalues(hs, k)
    assert e.shape == (1, 50, 2)
    np.testing.assert_allclose(e[0], expect, atol=1e-10, rtol=0)


@pytest.mark.parametrize("s", [0.0, 0.2, -0.3])
def test_chain_with_overlap(s):
    e0, t = 0.3, -1.1
    hs = chain(e0=e0, t=t, s=s)
    k = RNG.uniform(-1, 1, (40, 3))
    c = np.cos(2 * np.pi * k[:, 0])
    e = solvers.eigenvalues(hs, k)[0, :, 0]
    np.testing.assert_allclose(e, (e0 + 2 * t * c) / (1 + 2 * s * c), atol=1e-10, rtol=0)


# --------------------------------------------------------------------- Bloch sums
def _direct_bloch(hs, k, values, spinor):
    """Reference H(k) by an explicit loop over blocks (slow, independent of the layout code)."""
    f = 2 if spinor else 1
    n_orb = hs.n_orbitals
    out = np.zeros((f * n_orb, f * n_orb), dtype=complex)
    off = hs.orbital_offsets
    for e in range(hs.n_edges):
        i, j = hs.edge_index[:, e]
        blk = values[hs.block_index([e], spinor=spinor)[0]]
        ph = np.exp(2j * np.pi * k @ hs.cell_shift[e])
        ni, nj = hs.norbs[i], hs.norbs[j]
        for a in range(f):
            for b in range(f):
                out[a * n_orb + off[i]:a * n_orb + off[i] + ni,
                    b * n_orb + off[j]:b * n_orb + off[j] + nj] += (
                    ph * blk[a * ni:(a + 1) * ni, b * nj:(b + 1) * nj])
    return out


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_bloch_dense_sparse_match_direct_sum(spin, monkeypatch):
    hs = random_model(n_atoms=6, shells=(0, 1), spin=spin, seed=1, density=0.05)
    ks = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.13, -0.27, 0.41]])
    bm = solvers.bloch_matrices(hs, ks)
    monkeypatch.setattr(bloch_mod, "_DENSE_R_BUDGET", 0)  # per-k scatter path
    monkeypatch.setattr(bloch_mod, "_CHUNK_VALUES", 50)  # layouts built in many chunks
    hs2 = hs.replace()  # fresh object: no cached layout
    bm2 = solvers.bloch_matrices(hs2, ks)
    nc = 2 if spin == "collinear" else 1
    n = hs.n_orbitals * (2 if spin == "spinor" else 1)
    assert bm.h.shape == (nc, 3, n, n) and bm.s.shape == (3, n, n)
    for q, k in enumerate(ks):
        s_ref = _direct_bloch(hs, k, hs.s, False)
        np.testing.assert_allclose(bm.s[q], np.kron(np.eye(n // hs.n_orbitals), s_ref), atol=1e-13)
        sb = solvers.bloch_sparse(hs2 if q % 2 else hs, k)
        assert sb.real == (q < 2 and spin != "spinor")
        np.testing.assert_allclose(sb.s.toarray(), bm.s[q], atol=1e-13)
        for c in range(nc):
            h_ref = _direct_bloch(hs, k, hs.h[c], spin == "spinor")
            np.testing.assert_allclose(bm.h[c, q], h_ref, atol=1e-13)
            np.testing.assert_allclose(bm2.h[c, q], h_ref, atol=1e-13)
            np.testing.assert_allclose(sb.h[c].toarray(), h_ref, atol=1e-13)
            assert sb.h[c].indices.dtype == np.int32


def test_eigenvectors_s_orthonormal(big_model):
    k = np.array([[0.1, 0.2, -0.3], [0.0, 0.0, 0.0]])
    sol = solvers.solve(big_model, k, return_vectors=True)
    bm = solvers.bloch_matrices(big_model, k)
    for q in range(2):
        c, s, h = sol.eigenvectors[0, q], bm.s[q], bm.h[0, q]
        np.testing.assert_allclose(c.conj().T @ s @ c, np.eye(len(c)), atol=1e-11)
        np.testing.assert_allclose(h @ c, s @ c * sol.eigenvalues[0, q], atol=1e-10)
    assert np.all(np.diff(sol.eigenvalues, axis=-1) >= 0)
    assert np.all(sol.n_dropped == 0) and np.all(sol.min_overlap_eig > 0)


# --------------------------------------------------------------------- spin kinds
def test_spin_kinds_shapes_and_physics():
    hs = random_model(n_atoms=8, shells=(0, 1), seed=5)
    n, k = hs.n_orbitals, RNG.uniform(-0.5, 0.5, (4, 3))
    e = solvers.eigenvalues(hs, k)
    # collinear with the down channel rigidly shifted by delta * S: bands shift by delta
    delta = 0.37
    col = hs.replace(h=np.stack([hs.h[0], hs.h[0] + delta * hs.s]), spin="collinear")
    ec = solvers.eigenvalues(col, k)
    assert ec.shape == (2, 4, n)
    np.testing.assert_allclose(ec[0], e[0], atol=1e-10)
    np.testing.assert_allclose(ec[1], e[0] + delta, atol=1e-10)
    # spinor without spin-orbit: every band twice
    es = solvers.eigenvalues(hs.with_spin("spinor"), k)
    assert es.shape == (1, 4, 2 * n)
    np.testing.assert_allclose(es[0, :, 0::2], e[0], atol=1e-10)
    np.testing.assert_allclose(es[0, :, 1::2], e[0], atol=1e-10)
    sol = solvers.solve(random_model(n_atoms=8, spin="spinor", seed=5), k)
    assert sol.eigenvalues.shape == (1, 4, 2 * n) and sol.spin_degeneracy == 1


# --------------------------------------------------------------------- sparse solvers
@pytest.mark.parametrize("kpt", [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0), (0.11, 0.23, -0.37)])
def test_shift_invert_matches_dense(big_model, kpt):
    sigma, nb = 0.25, 16
    dense = solvers.eigenvalues(big_model, kpt)[0, 0]
    res = solvers.solve_sparse(big_model, kpt, sigma=sigma, n_bands=nb, return_vectors=True)
    near = np.sort(dense[np.argsort(np.abs(dense - sigma))[:nb]])
    np.testing.assert_allclose(res.eigenvalues[0], near, atol=1e-9)
    sb = solvers.bloch_sparse(big_model, kpt)
    v = res.eigenvectors[0]
    resid = sb.h[0] @ v - (sb.s @ v) * res.eigenvalues[0]
    assert np.abs(resid).max() < 1e-8


def test_shift_invert_spinor():
    hs = random_model(n_atoms=20, spin="spinor", seed=2)
    kpt = (0.2, -0.1, 0.3)
    dense = solvers.eigenvalues(hs, kpt)[0, 0]
    res = solvers.solve_sparse(hs, kpt, sigma=-0.5, n_bands=10)
    near = np.sort(dense[np.argsort(np.abs(dense + 0.5))[:10]])
    np.testing.assert_allclose(res.eigenvalues[0], near, atol=1e-9)


@pytest.mark.parametrize("kpt", [(0.0, 0.0, 0.0), (0.21, 0.4, -0.1)])
def test_inertia_count_matches_dense(big_model, kpt):
    dense = solvers.eigenvalues(big_model, kpt)[0, 0]
    for energy in np.linspace(dense[0] - 1, dense[-1] + 1, 9):
        assert solvers.count_states_below(big_model, energy, kpt)[0] == np.sum(dense < energy)


@pytest.mark.parametrize("n_e", [120.0, 121.0, 250.0])
def test_sparse_fermi_level_matches_dense(big_model, n_e):
    e = solvers.eigenvalues(big_model, [0, 0, 0])
    ref = solvers.fermi_level(e, n_e, spin_degeneracy=2)
    res = solvers.fermi_level_sparse(big_model, n_electrons=n_e, tol=1e-7)
    assert res.is_insulator == ref.is_insulator
    if ref.is_insulator:
        np.testing.assert_allclose([res.vbm, res.cbm, res.fermi_level],
                                   [ref.vbm, ref.cbm, ref.fermi_level], atol=1e-9)
    else:
        assert abs(res.fermi_level - ref.fermi_level) < 1e-6


@pytest.mark.parametrize("n, extra", [(6, 0), (6, -2), (6, 1), (5, 0)])
def test_sparse_fermi_level_degenerate_graphene(n, extra):
    """Dirac level folded to Gamma (n = 6: 4-fold at E = 0); the sparse count must cope."""
    hs = graphene_supercell(n)
    n_e = hs.n_orbitals + extra
    ref = solvers.fermi_level(solvers.eigenvalues(hs, [0, 0, 0]), n_e)
    res = solvers.fermi_level_sparse(hs, n_electrons=n_e, tol=1e-8)
    assert res.is_insulator == ref.is_insulator
    assert abs(res.fermi_level - ref.fermi_level) < 1e-6
    if n == 6 and extra == 0:
        assert abs(res.fermi_level) < 1e-6 and not res.is_insulator  # Dirac point, exactly 0


# --------------------------------------------------------------------- k-meshes
@pytest.mark.parametrize("gamma", [False, True])
@pytest.mark.parametrize("size", [6, 9])
def test_irreducible_sums_equal_full_mesh(gamma, size):
    hs = graphene_pz(t=-2.7, s_nn=0.1, onsite=(0.4, -0.4))
    mesh = solvers.kmesh(hs.atoms, size, gamma_centred=gamma)
    assert mesh.size == (size, size, 1) and len(mesh.full_kpts) == size * size
    assert mesh.nk < size * size and abs(mesh.weights.sum() - 1) < 1e-14
    full = solvers.mesh_points(mesh.size, gamma)
    fold = lambda k: {tuple(np.round((x + 0.5) % 1 - 0.5, 9)) for x in k}  # noqa: E731
    assert fold(full) == fold(mesh.full_kpts)
    e_irr = solvers.eigenvalues(hs, mesh.kpts)
    e_full = solvers.eigenvalues(hs, full)
    for fn in (np.abs, np.square, lambda x: np.exp(-x)):
        irr = np.einsum("k,kn->", mesh.weights, fn(e_irr[0]))
        assert abs(irr - fn(e_full[0]).mean(0).sum()) < 1e-10
    # equivalent points have equal bands
    np.testing.assert_allclose(e_full[0], e_irr[0][mesh.mapping][_order(full, mesh)], atol=1e-10)


def test_kmesh_non_periodic_directions():
    mol = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], pbc=False)
    m = solvers.kmesh(mol, 5)
    assert m.size == (1, 1, 1) and m.kpts.tolist() == [[0.0, 0.0, 0.0]]
    chain_atoms = chain().atoms  # periodic along x only
    m = solvers.kmesh(chain_atoms, (8, 4, 4))
    assert m.size == (8, 1, 1) and np.all(m.kpts[:, 1:] == 0)
    # MP points +-1/16, +-3/16, +-5/16, +-7/16; k and -k merged by time reversal
    np.testing.assert_allclose(np.sort(np.abs(m.kpts[:, 0])), np.arange(1, 8, 2) / 16)
    np.testing.assert_allclose(m.weights, 0.25)


def _order(full, mesh):
    """Index of each ``full`` point in ``mesh.full_kpts`` (both folded)."""
    key = lambda k: np.round((k + 0.5) % 1 - 0.5, 9)  # noqa: E731
    a, b = key(full), key(mesh.full_kpts)
    return np.array([np.flatnonzero(np.all(np.abs(b - x) < 1e-8, axis=1))[0] for x in a])


# --------------------------------------------------------------------- Fermi level
@pytest.mark.parametrize("s", [0.0, 0.25])
@pytest.mark.parametrize("smearing,width", [("fermi-dirac", 0.0), ("fermi-dirac", 0.05),
                                            ("gaussian", 0.05), ("methfessel-paxton", 0.05)])
def test_half_filled_chain_fermi_at_band_centre(s, smearing, width):
    e0 = 0.3
    hs = chain(e0=e0, t=-1.0, s=s)
    mesh = solvers.kmesh(hs.atoms, 40, gamma_centred=True)  # contains k = +-1/4 (cos = 0)
    e = solvers.eigenvalues(hs, mesh.kpts)
    res = solvers.fermi_level(e, 1.0, mesh.weights, spin_degeneracy=2, smearing=smearing,
                              width=width)
    n = 2 * np.einsum("k,skn->", mesh.weights, res.occupations)
    assert abs(n - 1.0) < 1e-10  # electron count conserved
    if s == 0.0 or width == 0.0:  # particle-hole symmetric, or exact level at E = e0
        assert abs(res.fermi_level - e0) < 1e-9
    else:
        assert abs(res.fermi_level - e0) < 0.05
    assert not res.is_insulator


def test_insulator_mid_gap():
    delta = 0.8
    hs = graphene_pz(t=-2.7, onsite=(delta, -delta))
    mesh = solvers.kmesh(hs.atoms, 12, gamma_centred=True)  # contains K
    e = solvers.eigenvalues(hs, mesh.kpts)
    for width in (0.0, 0.01):
        res = solvers.fermi_level(e, 2.0, mesh.weights, spin_degeneracy=2, width=width)
        assert res.is_insulator
        np.testing.assert_allclose([res.vbm, res.cbm, res.gap, res.fermi_level],
                                   [-delta, delta, 2 * delta, 0.0], atol=1e-10)
        assert np.all((res.occupations[0, :, 0] > 0.999) & (res.occupations[0, :, 1] < 1e-3))
    np.testing.assert_allclose(res.occupation_numbers, 2 * res.occupations)


@pytest.mark.parametrize("smearing", ["fermi-dirac", "gaussian", "methfessel-paxton"])
def test_smeared_fermi_level_counts_electrons(smearing):
    hs = graphene_pz(t=-2.7, s_nn=0.1)
    mesh = solvers.kmesh(hs.atoms, 9)
    e = solvers.eigenvalues(hs, mesh.kpts)
    res = solvers.fermi_level(e, 2.3, mesh.weights, smearing=smearing, width=0.1)
    f = solvers.occupation_function((e - res.fermi_level) / 0.1, smearing)
    assert abs(2 * np.einsum("k,skn->", mesh.weights, f) - 2.3) < 1e-10
    assert res.fermi_level > np.min(e[0, :, 1])  # above the bottom of the upper band


# --------------------------------------------------------------------- DOS
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_dos_integrates_to_states(spin):
    hs = random_model(n_atoms=6, shells=(0, 1), spin=spin, seed=7, density=0.05)
    mesh = solvers.kmesh(hs.atoms, 3, symmetry=False)
    sol = solvers.solve(hs, mesh.kpts)
    d = solvers.dos(sol.eigenvalues, mesh.weights, width=0.05, npts=4001,
                    spin_degeneracy=sol.spin_degeneracy)
    per_channel = np.trapezoid(d.dos, d.energies, axis=1)
    n_states = {"none": 2 * hs.n_orbitals, "collinear": hs.n_orbitals,
                "spinor": 2 * hs.n_orbitals}[spin]
    np.testing.assert_allclose(per_channel, n_states, rtol=1e-6)
    assert d.dos.shape == (2 if spin == "collinear" else 1, 4001)


@pytest.mark.parametrize("spin", ["none", "spinor"])
def test_mulliken_pdos_sums_to_total(spin):
    hs = random_model(n_atoms=6, shells=(0, 1, 2), spin=spin, seed=11, density=0.05)
    mesh = solvers.kmesh(hs.atoms, 2, symmetry=False)
    sol = solvers.solve(hs, mesh.kpts, return_vectors=True)
    grid = np.linspace(-6, 6, 601)
    d = solvers.dos(sol.eigenvalues, mesh.weights, grid, 0.1, sol.spin_degeneracy)
    p = solvers.projected_dos(hs, sol, mesh.weights, grid, 0.1)
    assert p.orbital.shape == (1, hs.n_orbitals, 601) and p.angular.shape == (1, 3, 601)
    for part in (p.total, p.atom.sum(1), p.angular.sum(1), sum(p.element.values())):
        np.testing.assert_allclose(part, d.dos, atol=1e-10)
    mw = solvers.mulliken_weights(hs, sol)
    np.testing.assert_allclose(mw.sum(axis=2), 1.0, atol=1e-10)
    n_e = 0.8 * hs.n_orbitals  # 40 % of the 2 * n_orbitals states (both spin kinds)
    fr = solvers.fermi_level(sol.eigenvalues, n_e, mesh.weights, sol.spin_degeneracy,
                             width=0.05)
    pops = solvers.mulliken_populations(hs, sol, fr, mesh.weights)
    assert abs(pops.total - n_e) < 1e-8 and pops.atom.shape == (1, hs.n_atoms)


# --------------------------------------------------------------------- ill-conditioned S
@pytest.mark.parametrize("eps", [1e-9, 0.0])
def test_ill_conditioned_overlap_projected(eps):
    # one atom with two s-like orbitals that are (nearly) the same function
    atoms = Atoms("H", positions=[[0, 0, 0]], cell=[8, 8, 8], pbc=False)
    h = np.array([[-1.0, -0.9], [-0.9, -0.8]])
    s = np.array([[1.0, 1 - eps], [1 - eps, 1.0]])
    hs = hs_from_blocks(atoms, {"H": (0, 0)}, [0], [0], [[0, 0, 0]], [[h]], [s])
    with pytest.warns(RuntimeWarning, match="ill-conditioned"):
        sol = solvers.solve(hs, [[0, 0, 0]], return_vectors=True, ill_threshold=1e-6)
    assert sol.n_dropped.tolist() == [1] and sol.min_overlap_eig[0] == pytest.approx(eps, abs=1e-12)
    u = np.array([1.0, 1.0]) / np.sqrt(2)  # kept S direction, S u = (2 - eps) u
    np.testing.assert_allclose(sol.eigenvalues[0, 0, 0], u @ h @ u / (2 - eps), atol=1e-12)
    assert np.isnan(sol.eigenvalues[0, 0, 1])
    c = sol.eigenvectors[0, 0, :, 0]
    assert abs(c @ s @ c - 1) < 1e-12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fr = solvers.fermi_level(sol.eigenvalues, 2.0)  # NaN band is never occupied
        d = solvers.dos(sol.eigenvalues, width=0.1)
    assert fr.occupations[0, 0].tolist() == [1.0, 0.0]
    assert abs(np.trapezoid(d.total, d.energies) - 2.0) < 1e-6


# --------------------------------------------------------------------- bands and plots
def test_band_structure_and_plots(tmp_path):
    t = -2.7
    hs = graphene_pz(t=t).replace(fermi_level=0.0)
    bs = solvers.band_structure(hs, "GMKG", npoints=60)
    assert isinstance(bs, BandStructure) and bs.energies.shape == (1, 60, 2)
    assert bs.reference == 0.0
    f = graphene_f(bs.path.kpts)
    np.testing.assert_allclose(bs.energies[0], np.stack([t * f, -t * f], 1), atol=1e-10)
    out = solvers.plot_bands(bs, tmp_path / "bands.png", emin=-9, emax=9)
    mesh = solvers.kmesh(hs.atoms, 6)
    sol = solvers.solve(hs, mesh.kpts, return_vectors=True)
    pd = solvers.projected_dos(hs, sol, mesh.weights, width=0.2, fermi_level=0.0)
    out2 = solvers.plot_dos(pd, tmp_path / "pdos.png", by="l")
    out3 = solvers.plot_dos(solvers.dos(sol.eigenvalues, mesh.weights), tmp_path / "dos.png")
    for o in (out, out2, out3):
        with open(o, "rb") as fh:
            assert fh.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bands.png", "dos.png", "pdos.png"]


def test_solvers_do_not_import_torch():
    code = "import sys, interfaces, ase_deeph.solvers; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_band_plot_is_drawn_relative_to_the_fermi_level(tmp_path) -> None:
    """The plotted curves are E - E_F (ASE's own plot draws absolute energies)."""
    from matplotlib.figure import Figure

    from ase_deeph.solvers import band_structure, plot_bands

    hs = graphene_pz(t=-2.7)
    bs = band_structure(hs, "GMKG", npoints=31, fermi_level=5.0)  # a deliberately big E_F
    ax = Figure().add_subplot(1, 1, 1)
    plot_bands(bs, tmp_path / "b.png", emin=-20, emax=20, ax=ax)
    drawn = np.concatenate([line.get_ydata() for line in ax.get_lines()
                            if len(line.get_ydata()) == 31])
    np.testing.assert_allclose(np.sort(drawn), np.sort(bs.energies.ravel() - 5.0))


@pytest.mark.parametrize("n_e", [120.0, 121.0, 250.0])
def test_windowed_fermi_search_equals_bisection_with_fewer_factorisations(big_model, n_e):
    """The windowed search (count + nearest eigenvalues from one LU) against bisection."""
    fast = solvers.fermi_level_sparse(big_model, n_electrons=n_e)
    slow = solvers.fermi_level_sparse(big_model, n_electrons=n_e, window=0, tol=1e-9)
    assert fast.is_insulator == slow.is_insulator
    assert abs(fast.fermi_level - slow.fermi_level) < 1e-8
    assert fast.n_factorizations < slow.n_factorizations
