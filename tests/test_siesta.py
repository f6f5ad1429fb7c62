"""SIESTA interface: HSX v0/v1/v2 and TSHS reading, HSX writing, fdf/EIG/KP helpers.

References are SIESTA's own printed numbers (EIG at the KP k-points), exact identities
(Hermitian partners, HSX == TSHS, round trips) and physics invariants (bond-axis
symmetry of S, space-group covariance, Kramers degeneracy, E(k) = E(-k)).
"""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from _siesta_utils import bloch, eigvals, write_tshs_v0
from ase.units import Bohr, Ry

import interfaces
from interfaces import orbitals, siesta
from interfaces.errors import FormatError
from interfaces.siesta import records as siesta_records
from interfaces.siesta import text as siesta_text
from interfaces.sph import orbital_rotation

DATA = Path(__file__).parent / "data" / "siesta"
SI = DATA / "si_pdos_k"
H2O = DATA / "h2o_gamma"
PT2 = DATA / "pt2_soc"
SAMPLES = {"si": SI / "Si_pdos.HSX.gz", "h2o": H2O / "h2o_dipole.HSX.gz",
           "pt2": PT2 / "Pt2_xx.HSX.gz"}

checks = pytest.importorskip("interfaces.checks")


@pytest.fixture(scope="module")
def hs_all():
    return {name: siesta.read(path) for name, path in SAMPLES.items()}


def _plain_copy(src: Path, dst: Path) -> Path:
    """Decompress ``src`` (``*.gz``) into ``dst``."""
    dst.write_bytes(gzip.decompress(src.read_bytes()) if src.suffix == ".gz" else src.read_bytes())
    return dst


# ----------------------------------------------------------------------- eigenvalues
def test_si_eigenvalues_match_eig_at_all_kp_points(hs_all):
    hs = hs_all["si"]
    eig = siesta.read_eig(SI / "Si_pdos.EIG.gz")
    kp = siesta.read_kp(SI / "Si_pdos.KP")
    assert eig.eigenvalues.shape == (len(kp.weights), 1, 18)
    kf = kp.fractional(hs.atoms.cell)
    err = max(np.abs(eigvals(hs, k) - eig.eigenvalues[n, 0]).max() for n, k in enumerate(kf))
    assert err < 1e-4  # docs/formats.md 8: 2.3e-5 eV (SCF tolerance)
    assert abs(hs.fermi_level - eig.fermi_level) < 1e-5
    assert hs.n_electrons == 8.0 and hs.metadata["zval"] == {"Si": 4.0}


def test_h2o_eigenvalues_at_gamma(hs_all):
    eig = siesta.read_eig(H2O / "h2o_dipole.EIG")
    assert np.abs(eigvals(hs_all["h2o"], [0, 0, 0]) - eig.eigenvalues[0, 0]).max() < 1e-4


def test_pt2_spin_orbit_eigenvalues_at_gamma(hs_all):
    hs = hs_all["pt2"]
    eig = siesta.read_eig(PT2 / "Pt2_xx.EIG")
    assert hs.spin == "spinor" and eig.nspin == 8 and eig.eigenvalues.shape == (1, 1, 76)
    assert np.abs(eigvals(hs, [0, 0, 0]) - eig.eigenvalues[0, 0]).max() < 1e-5


def test_pt2_untransposed_soc_reading_is_wrong(hs_all):
    """The transposed storage rule matters: reading X3 + i X4 (no sign change) fails by eV."""
    hs = hs_all["pt2"]
    eig = siesta.read_eig(PT2 / "Pt2_xx.EIG").eigenvalues[0, 0]
    h = hs.h[0].copy()
    for g in hs.shape_groups():  # replace ud by conj(ud): the wrong sign of X4
        idx = hs.block_index(g, spinor=True)
        n = idx.shape[1] // 2
        h[idx[:, :n, n:]] = np.conj(h[idx[:, :n, n:]])
        h[idx[:, n:, :n]] = np.conj(h[idx[:, n:, :n]])
    wrong = hs.replace(h=h[None])
    assert np.abs(eigvals(wrong, [0, 0, 0]) - eig).max() > 1e-2


# ----------------------------------------------------------------------- containers
@pytest.mark.parametrize("name", ["si", "pt2"])
def test_hsx_and_tshs_give_the_same_data(hs_all, name, tmp_path):
    hsx = hs_all[name]
    tshs = siesta.read(SAMPLES[name].with_name(SAMPLES[name].name.replace("HSX", "TSHS")))
    assert tshs.metadata["siesta_format"] == "TSHS v1"
    np.testing.assert_array_equal(hsx.edge_index, tshs.edge_index)
    np.testing.assert_array_equal(hsx.cell_shift, tshs.cell_shift)
    np.testing.assert_array_equal(hsx.h, tshs.h)
    np.testing.assert_array_equal(hsx.s, tshs.s)
    np.testing.assert_allclose(hsx.atoms.positions, tshs.atoms.positions, atol=1e-12)
    assert hsx.basis == tshs.basis and hsx.fermi_level == tshs.fermi_level


@pytest.mark.parametrize("name", list(SAMPLES))
def test_hermitian_partners_and_onsite_overlap(hs_all, name):
    hs = hs_all[name]
    assert np.all(hs.reverse_edges >= 0)
    assert hs.hermiticity_error() < 1e-6
    onsite = np.flatnonzero((hs.edge_index[0] == hs.edge_index[1])
                            & ~hs.cell_shift.any(1))
    assert len(onsite) == hs.n_atoms
    if name == "h2o":  # Gamma-only with a 3 Angstrom period: S is folded over images
        return
    for e in onsite:
        i = hs.edge_index[0, e]
        np.testing.assert_allclose(np.diag(hs.block(i, i, (0, 0, 0), "s")), 1.0, atol=1e-4)


@pytest.mark.parametrize("name,orb", [("si", SI / "Si_pdos.ORB_INDX.gz"),
                                      ("pt2", PT2 / "Pt2_xx.ORB_INDX")])
def test_no_overlap_beyond_cutoff_radii(hs_all, name, orb):
    hs = hs_all[name]
    table = siesta_text.read_orb_indx(orb)
    rc = table.rc * Bohr  # [no_u] SIESTA order, Angstrom
    orders = hs.metadata["siesta_shell_orders"]
    symbols = hs.atoms.get_chemical_symbols()
    rc_int = np.concatenate([  # internal order via the same signed permutation
        rc[hs.orbital_offsets[a]:hs.orbital_offsets[a + 1]][
            orbitals.atom_map(hs.basis[el], "siesta", orders[el])[0]]
        for a, el in enumerate(symbols)])
    dist = np.linalg.norm(hs.edge_vectors(), axis=1)
    for g in hs.shape_groups():
        i, j = hs.edge_index[:, g]
        blocks = hs.s[hs.block_index(g)]  # [n, n_i, n_j]
        oi = hs.orbital_offsets[i][:, None] + np.arange(blocks.shape[1])
        oj = hs.orbital_offsets[j][:, None] + np.arange(blocks.shape[2])
        reach = rc_int[oi][:, :, None] + rc_int[oj][:, None, :]
        assert np.all((blocks == 0) | (dist[g][:, None, None] < reach + 1e-6))


# ----------------------------------------------------------------------- conventions
@pytest.mark.parametrize("name", ["si", "pt2"])
def test_bond_axis_invariance_of_s(hs_all, name):
    # h2o is excluded: Gamma-only with a 3 Angstrom period, its blocks sum several images
    assert checks.bond_axis_error(hs_all[name]) < 1e-7


@pytest.mark.parametrize("name", list(SAMPLES))
def test_space_group_covariance(hs_all, name):
    hs = hs_all[name]
    assert checks.symmetry_error(hs, "s") < 1e-7
    if hs.spin != "spinor":
        assert checks.symmetry_error(hs, "h") < 5e-4  # SCF tolerance of the samples


def test_pt2_spinor_covariance_under_moment_preserving_operations(hs_all):
    """Pt2 is magnetised along x: operations keeping an axial x vector leave H invariant.

    ``H_{g(i) g(j)}(g R) = U H_ij(R) U^dagger`` with ``U = D^{1/2}(det(Q) Q) x D(Q)``
    (the rotation law of docs/conventions.md 6.2), checked block by block.
    """
    hs = hs_all["pt2"]
    symbols = hs.atoms.get_chemical_symbols()
    errs = {True: 0.0, False: 0.0}
    for q, w, perm, off in checks.symmetry_operations(hs):
        keeps = bool(np.isclose((np.linalg.det(q) * q)[0, 0], 1.0))
        half = checks.spin_half_rotation(q)
        for e in range(hs.n_edges):
            i, j = hs.edge_index[:, e]
            shift = off[j] + w @ hs.cell_shift[e] - off[i]
            ui = np.kron(half, orbital_rotation(hs.basis[symbols[i]], q))
            uj = np.kron(half, orbital_rotation(hs.basis[symbols[j]], q))
            rotated = ui @ hs.block(i, j, hs.cell_shift[e]) @ uj.conj().T
            err = np.abs(hs.block(perm[i], perm[j], shift) - rotated).max()
            errs[keeps] = max(errs[keeps], err)
    assert errs[True] < 1e-5 < 1e-2 < errs[False]


def test_forgotten_siesta_signs_break_the_checks(hs_all):
    """A reader that forgot SIESTA's (-1)^m factors fails both convention checks."""
    good = hs_all["si"]
    maps = {}
    for el, shells in good.basis.items():
        sign = np.concatenate([(-1.0) ** np.abs(np.arange(-lv, lv + 1)) for lv in shells])
        maps[el] = (np.arange(len(sign)), sign)
    bad = good.permute_orbitals(maps)
    assert checks.bond_axis_error(bad) > 1e-2
    assert checks.symmetry_error(bad, "s") > 1e-2
    assert checks.bond_axis_error(good) < 1e-7


# ----------------------------------------------------------------------- round trips
def _assert_same(a, b, rtol=1e-15, atol=0.0, pos_atol=1e-14):
    """Same blocks and values; rtol covers the eV <-> Ry conversion (an ulp or two)."""
    np.testing.assert_array_equal(a.edge_index, b.edge_index)
    np.testing.assert_array_equal(a.cell_shift, b.cell_shift)
    assert a.basis == b.basis and a.spin == b.spin
    np.testing.assert_allclose(b.h, a.h, rtol=rtol, atol=atol * np.abs(a.h).max())
    np.testing.assert_allclose(b.s, a.s, rtol=rtol, atol=atol * np.abs(a.s).max())
    np.testing.assert_allclose(b.atoms.positions, a.atoms.positions, rtol=0, atol=pos_atol)
    np.testing.assert_allclose(b.atoms.cell, a.atoms.cell, rtol=0, atol=pos_atol)
    assert b.atoms.get_chemical_symbols() == a.atoms.get_chemical_symbols()


@pytest.mark.parametrize("name", list(SAMPLES))
@pytest.mark.parametrize("version", [1, 2])
def test_write_read_round_trip(hs_all, name, version, tmp_path):
    hs = hs_all[name]
    out = tmp_path / f"x.v{version}.HSX"
    siesta.write(hs, out, version=version)
    back = interfaces.read(out)  # through the registry
    _assert_same(hs, back)
    assert back.metadata["siesta_format"] == f"HSX v{version}"
    assert back.metadata["siesta_shell_orders"] == hs.metadata["siesta_shell_orders"]
    assert abs(back.fermi_level - hs.fermi_level) < 1e-12 and back.n_electrons == hs.n_electrons
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temporary left behind


def test_write_data_from_another_code(hs_all, tmp_path):
    """HSData without SIESTA metadata (e.g. a prediction) gets one species per element."""
    hs = hs_all["h2o"].replace(metadata={})
    siesta.write(hs, tmp_path / "pred.HSX")
    back = siesta.read(tmp_path / "pred.HSX")
    _assert_same(hs, back)
    assert [sp["label"] for sp in back.metadata["siesta_species"]] == ["O", "H"]
    assert back.metadata["siesta_isa"] == [0, 1, 1, 0, 1, 1]
    assert back.n_electrons == hs.n_electrons


def test_written_file_keeps_siesta_sparse_rows(tmp_path):
    """Written H(R) equals the sample's rows element by element (the same Ry values)."""
    src = _plain_copy(SAMPLES["si"], tmp_path / "a.HSX")
    siesta.write(siesta.read(src), tmp_path / "b.HSX")
    raw_a, raw_b = (siesta_records.parse(tmp_path / n) for n in ("a.HSX", "b.HSX"))

    def dense(raw):
        row = np.repeat(np.arange(raw.no_u), raw.numh)
        shift = raw.isc_off[raw.col // raw.no_u]
        key = np.column_stack([row, raw.col % raw.no_u, shift])
        order = np.lexsort(key.T[::-1])
        return key[order], raw.vals[:, order], raw.s[order]

    (ka, va, sa), (kb, vb, sb) = dense(raw_a), dense(raw_b)
    assert len(kb) >= len(ka)  # dense blocks may add explicit zeros
    code_a, code_b = (np.ravel_multi_index((k + 10).T, (100,) * 5) for k in (ka, kb))
    keep = np.isin(code_b, code_a)
    np.testing.assert_array_equal(kb[keep], ka)
    np.testing.assert_allclose(vb[:, keep], va, rtol=1e-15, atol=0)
    np.testing.assert_allclose(sb[keep], sa, rtol=1e-15, atol=0)
    assert not np.any(vb[:, ~keep]) and not np.any(sb[~keep])


@pytest.mark.parametrize("name", list(SAMPLES))
def test_version0_single_precision_round_trip(hs_all, name, tmp_path):
    hs = hs_all[name]
    siesta.write(hs, tmp_path / "old.HSX", version=0)
    siesta_text.write_xv(hs.atoms, tmp_path / "old.XV")
    back = siesta.read(tmp_path)
    assert back.metadata["siesta_format"] == "HSX v0"
    _assert_same(hs, back, rtol=1e-6, atol=1e-6, pos_atol=1e-9)  # XV: 12 decimals
    k = [0.1, 0.2, 0.3]
    assert np.abs(eigvals(back, k) - eigvals(hs, k)).max() < 1e-4


def test_unsorted_siesta_shell_order_round_trip(hs_all, tmp_path):
    """A species listed as s, d, p in the file (e.g. a polarisation p after d) round-trips."""
    hs = hs_all["si"]
    nlz = [[3, 0, 1]] + [[3, 2, 1]] * 5 + [[4, 1, 1]] * 3  # file order: s, d, p(pol)
    meta = dict(hs.metadata, siesta_species=[{"label": "Si", "nlz": nlz, "zval": 4.0}])
    siesta.write(hs.replace(metadata=meta), tmp_path / "sdp.HSX")
    raw = siesta_records.parse(tmp_path / "sdp.HSX")
    assert raw.nlz[0].tolist() == nlz
    back = siesta.read(tmp_path / "sdp.HSX")
    assert back.metadata["siesta_shell_orders"] == {"Si": [0, 2, 1]}
    _assert_same(hs, back)
    row = np.repeat(np.arange(raw.no_u), raw.numh)
    onsite = (raw.col == row)  # image 0 columns are 0..no_u-1
    file_diag = np.zeros(raw.no_u)
    file_diag[row[onsite]] = raw.vals[0, onsite] * Ry
    internal = np.diag(hs.block(0, 0, (0, 0, 0)))  # s, p(3), d(5)
    np.testing.assert_allclose(file_diag[:9], internal[[0, 4, 5, 6, 7, 8, 1, 2, 3]], rtol=1e-14)


@pytest.mark.parametrize("name,orb", [("si", SI / "Si_pdos.ORB_INDX.gz"),
                                      ("pt2", PT2 / "Pt2_xx.ORB_INDX")])
def test_old_tshs_layout(hs_all, name, orb, tmp_path):
    """TSHS of SIESTA <= 4.0 (double precision, xij, atomic numbers, no species table)."""
    hs = hs_all[name]
    write_tshs_v0(hs, tmp_path / "old.TSHS")
    shutil.copy(orb, tmp_path / ("old.ORB_INDX" + orb.suffix * (orb.suffix == ".gz")))
    back = siesta.read(tmp_path / "old.TSHS")
    assert back.metadata["siesta_format"] == "TSHS v0"
    _assert_same(hs, back, rtol=1e-14)
    assert abs(back.fermi_level - hs.fermi_level) < 1e-12


def test_version0_needs_a_structure_file(hs_all, tmp_path):
    siesta.write(hs_all["si"], tmp_path / "old.HSX", version=0)
    with pytest.raises(FormatError, match="XV"):
        siesta.read(tmp_path / "old.HSX")


def _spinor(hs, uu, ud, du, dd):
    """Spinor H (flat, spin-major blocks) from four flat spinless arrays."""
    out = np.zeros(4 * hs.n_values, dtype=np.complex128)
    for g in hs.shape_groups():
        idx, sidx = hs.block_index(g), hs.block_index(g, spinor=True)
        ni, nj = idx.shape[1:]
        for q, part in enumerate((uu, ud, du, dd)):
            a, b = divmod(q, 2)
            out[sidx[:, a * ni:(a + 1) * ni, b * nj:(b + 1) * nj]] = part[idx]
    return out


def _anti(hs, x):
    """(X_ij(R) - X_ji(-R)^T) / 2: a real field that is odd under the partner exchange."""
    return x - hs.replace(h=x[None], spin="none").symmetrize().h[0]


@pytest.fixture(scope="module")
def si_soc(hs_all):
    """Time-reversal-symmetric spin-orbit-like H on the Si sample (complex, all R)."""
    hs = hs_all["si"]
    rng = np.random.default_rng(5)
    h0 = hs.h[0]
    ax, ay, az = (0.05 * _anti(hs, rng.normal(size=hs.n_values)) for _ in range(3))
    h = _spinor(hs, h0 + 1j * az, 1j * ax + ay, 1j * ax - ay, h0 - 1j * az)
    return hs.replace(h=h[None], spin="spinor")


def test_spin_orbit_round_trip_kramers_and_inversion(si_soc, tmp_path):
    siesta.write(si_soc, tmp_path / "soc.HSX")
    back = siesta.read(tmp_path / "soc.HSX")
    assert back.metadata["siesta_nspin"] == 8
    _assert_same(si_soc, back)
    assert back.hermiticity_error() < 1e-6
    k = np.array([0.13, -0.27, 0.41])
    e_k, e_mk = eigvals(back, k), eigvals(back, -k)
    np.testing.assert_allclose(e_k, e_mk, atol=1e-8)  # time reversal: E(k) = E(-k)
    assert np.abs(e_k[0::2] - e_k[1::2]).max() > 1e-4  # SOC splits at general k ...
    for trim in ([0.5, 0, 0], [0.5, 0.5, 0.5], [0, 0.5, 0.5]):
        e = eigvals(back, trim)  # ... but Kramers pairs stay degenerate at TRIM points
        np.testing.assert_allclose(e[0::2], e[1::2], atol=1e-8)


def test_spin_orbit_storage_follows_formats_rule(si_soc, tmp_path):
    """Rebuild H(k) from the raw records with docs/formats.md 1.5 written out independently."""
    siesta.write(si_soc, tmp_path / "soc.HSX")
    raw = siesta_records.parse(tmp_path / "soc.HSX")
    n, x = raw.no_u, raw.vals * Ry
    k_frac = np.array([0.21, 0.07, -0.33])
    kc = 2 * np.pi * np.linalg.solve(raw.cell, k_frac)  # Cartesian, Bohr^-1
    row = np.repeat(np.arange(n), raw.numh)
    col, shift = raw.col % n, raw.isc_off[raw.col // n]
    phase = np.exp(-1j * (shift @ raw.cell) @ kc)  # element H_ji(-R): exp(-i k.R)
    hk = np.zeros((2 * n, 2 * n), dtype=complex)
    ys = {(0, 0): x[0] + 1j * x[4], (1, 1): x[1] + 1j * x[5], (0, 1): x[2] - 1j * x[3],
          (1, 0): x[6] + 1j * x[7]}
    for (a, b), y in ys.items():
        np.add.at(hk, (a * n + col, b * n + row), y * phase)
    sk = np.zeros((n, n), dtype=complex)
    np.add.at(sk, (row, col), raw.s * np.exp(1j * (shift @ raw.cell) @ kc))
    import scipy.linalg
    ref = scipy.linalg.eigh(hk, np.kron(np.eye(2), sk), eigvals_only=True)
    np.testing.assert_allclose(ref, eigvals(si_soc, k_frac), atol=1e-9)


def test_collinear_round_trip(hs_all, tmp_path):
    hs = hs_all["si"]
    shift_ev = 0.37  # H_down = H_up + c S shifts every band by exactly c
    col = hs.replace(h=np.stack([hs.h[0], hs.h[0] + shift_ev * hs.s]), spin="collinear")
    siesta.write(col, tmp_path / "c.HSX")
    back = siesta.read(tmp_path / "c.HSX")
    assert back.spin == "collinear" and back.metadata["siesta_nspin"] == 2
    _assert_same(col, back)
    k = [0.3, -0.1, 0.25]
    np.testing.assert_allclose(eigvals(back, k, 1), eigvals(back, k, 0) + shift_ev, atol=1e-9)


def test_noncollinear_nspin4_round_trip(hs_all, tmp_path):
    hs = hs_all["si"]
    rng = np.random.default_rng(2)
    mx, my = (0.1 * hs.replace(h=rng.normal(size=(1, hs.n_values))).symmetrize().h[0]
              for _ in range(2))  # a non-collinear exchange field, real symmetric
    h = _spinor(hs, hs.h[0], mx - 1j * my, mx + 1j * my, hs.h[0] - 0.2 * hs.s)
    nc = hs.replace(h=h[None], spin="spinor")
    siesta.write(nc, tmp_path / "nc.HSX", nspin=4)
    back = siesta.read(tmp_path / "nc.HSX")
    assert back.metadata["siesta_nspin"] == 4
    _assert_same(nc, back)
    siesta.write(back, tmp_path / "again.HSX")  # an nspin 4 source stays nspin 4
    assert siesta.read(tmp_path / "again.HSX").metadata["siesta_nspin"] == 4
    with pytest.raises(ValueError, match="nspin = 8"):
        lz = 0.01 * _anti(hs, rng.normal(size=hs.n_values))
        hs_soc = hs.replace(h=_spinor(hs, hs.h[0] + 1j * lz, 0 * mx, 0 * mx,
                                      hs.h[0] - 1j * lz)[None], spin="spinor")
        siesta.write(hs_soc, tmp_path / "bad.HSX", nspin=4)
    assert not (tmp_path / "bad.HSX").exists()


# ----------------------------------------------------------------------- text files
@pytest.mark.parametrize("name,fdf", [("si", SI / "Si_pdos.fdf"), ("h2o", H2O / "h2o_dipole.fdf"),
                                      ("pt2", PT2 / "Pt2.fdf")])
def test_input_and_output_structures_agree_with_hsx(hs_all, name, fdf):
    hs = hs_all[name]
    atoms, species = siesta_text.fdf_atoms(fdf)
    xv, xv_species = siesta_text.read_xv(next(fdf.parent.glob("*.XV")))
    np.testing.assert_array_equal(species, hs.metadata["siesta_isa"])
    np.testing.assert_array_equal(xv_species, hs.metadata["siesta_isa"])
    for other in (atoms, xv):
        assert other.get_chemical_symbols() == hs.atoms.get_chemical_symbols()
        np.testing.assert_allclose(other.cell, hs.atoms.cell, atol=1e-5)
        np.testing.assert_allclose(other.positions, hs.atoms.positions, atol=1e-5)


def test_write_fdf_for_a_new_structure(hs_all, tmp_path):
    atoms = hs_all["h2o"].atoms.copy()
    atoms.rattle(0.05, seed=1)
    siesta.write_fdf(atoms, {"O": "DZP", "H": "SZP"}, tmp_path / "new.fdf", system_label="new",
                     kgrid=(4, 1, 2))
    values, blocks = siesta_text.read_fdf(tmp_path / "new.fdf")
    assert values["savehs"] == "true" and values["forceauxcell"] == "true"
    assert values["systemlabel"] == "new"
    assert blocks["paobasissizes"] == ["O DZP", "H SZP"]
    assert [r.split()[:3] for r in blocks["kgridmonkhorstpack"]] == [
        ["4", "0", "0"], ["0", "1", "0"], ["0", "0", "2"]]
    back, species = siesta_text.fdf_atoms(tmp_path / "new.fdf")
    np.testing.assert_allclose(back.positions, atoms.positions, atol=1e-10)
    np.testing.assert_allclose(back.cell, atoms.cell, atol=1e-10)
    assert back.get_chemical_symbols() == atoms.get_chemical_symbols()
    assert list(species) == [0, 1, 1, 0, 1, 1]


def test_pt2_eig_and_kp_parse():
    eig = siesta.read_eig(PT2 / "Pt2_xx.EIG")
    assert eig.eigenvalues.shape == (1, 1, 76) and np.all(np.diff(eig.eigenvalues[0, 0]) >= 0)
    kp = siesta.read_kp(SI / "Si_pdos.KP")
    assert abs(kp.weights.sum() - 1.0) < 1e-4


# ----------------------------------------------------------------------- bad input
def _mutations(data: bytes, n: int, seed: int):
    rng = np.random.default_rng(seed)
    for t in range(n):
        if t % 2 == 0:
            yield data[:int(rng.integers(0, len(data)))]
        else:
            buf = bytearray(data)
            for pos in rng.integers(0, len(data), size=int(rng.integers(1, 4))):
                buf[pos] ^= int(rng.integers(1, 256))
            yield bytes(buf)


@pytest.mark.parametrize("kind", ["HSX", "TSHS"])
def test_fuzzed_files_raise_only_format_error(kind, tmp_path):
    src = _plain_copy(SI / f"Si_pdos.{kind}.gz", tmp_path / "ref.bin").read_bytes()
    _plain_copy(SI / "Si_pdos.ORB_INDX.gz", tmp_path / "Si_pdos.ORB_INDX")
    shutil.copy(SI / "Si_pdos.XV", tmp_path / "Si_pdos.XV")
    target = tmp_path / f"Si_pdos.{kind}"
    n_err = 0
    for data in _mutations(src, 50, seed=11 if kind == "HSX" else 12):
        target.write_bytes(data)
        try:
            siesta.read(target)
        except FormatError as exc:
            assert str(target) in str(exc)
            n_err += 1
    assert n_err >= 25  # every truncation fails; flips of values may read fine


def _patched(tmp_path, offset: int, value: int) -> Path:
    data = bytearray(gzip.decompress(SAMPLES["si"].read_bytes()))
    data[offset:offset + 4] = np.array([value], "<i4").tobytes()
    out = tmp_path / "bad.HSX"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("offset,value,reason", [
    (4, 3, "version"),  # record 0: the version
    (168 + 1564 - 4, 17, "inconsistent"),  # last lasto entry: 17 orbitals instead of 18
    (1776 + 4 + 12 * 8 + 4, 1, "shell"),  # d orbital relabelled l = 1: broken shell
])
def test_wrong_version_and_mismatched_orbital_counts(tmp_path, offset, value, reason):
    with pytest.raises(FormatError, match=reason):
        siesta.read(_patched(tmp_path, offset, value))


def test_tshs_with_a_foreign_orbital_table(tmp_path):
    _plain_copy(SI / "Si_pdos.TSHS.gz", tmp_path / "Si_pdos.TSHS")
    shutil.copy(SI / "Si_pdos.XV", tmp_path)
    shutil.copy(H2O / "h2o_dipole.ORB_INDX", tmp_path / "Si_pdos.ORB_INDX")
    with pytest.raises(FormatError, match="ORB_INDX lists 34 orbitals"):
        siesta.read(tmp_path / "Si_pdos.TSHS")


@pytest.mark.parametrize("content", [b"", b"\x04\x00\x00\x00", b"not a fortran file at all"])
def test_garbage_and_missing_files(tmp_path, content):
    (tmp_path / "x.HSX").write_bytes(content)
    with pytest.raises(FormatError):
        siesta.read(tmp_path / "x.HSX")
    with pytest.raises(FormatError):
        siesta.read(tmp_path / "nothing_here")
    for name in ("x.EIG", "x.KP"):
        (tmp_path / name).write_text("  12\n 1 0.0 0.0\n")
    with pytest.raises(FormatError):
        siesta.read_eig(tmp_path / "x.EIG")
    with pytest.raises(FormatError):
        siesta.read_kp(tmp_path / "x.KP")


# ----------------------------------------------------------------------- speed
@pytest.mark.parametrize("path", [*SAMPLES.values(), SI / "Si_pdos.TSHS.gz"])
def test_reading_a_sample_is_fast(path):
    t0 = time.perf_counter()
    siesta.read(path)
    assert time.perf_counter() - t0 < 1.0


# ----------------------------------------------------------------------- sisl (optional)
def _siesta_order_dense(hs, k):
    """Dense H(k) - Ef S(k) and S(k) in SIESTA orbital order (spinors spin-major)."""
    sh = orbitals.from_internal(hs, "siesta", hs.metadata.get("siesta_shell_orders"))
    s = bloch(sh, k, "s")
    s2 = np.kron(np.eye(2), s) if hs.spin == "spinor" else s
    return bloch(sh, k, "h") - hs.fermi_level * s2, s2


def test_sisl_reads_the_same_matrices(hs_all, si_soc, tmp_path):
    """The reference reader (sisl, if installed) sees the same H(k), including SOC signs."""
    sisl = pytest.importorskip("sisl")
    k = np.array([0.13, -0.27, 0.41])
    siesta.write(si_soc.replace(fermi_level=0.0), tmp_path / "soc.HSX")
    cases = [(_plain_copy(SAMPLES["si"], tmp_path / "si.HSX"), hs_all["si"], k),
             (_plain_copy(SAMPLES["pt2"], tmp_path / "pt.HSX"), hs_all["pt2"], np.zeros(3)),
             (tmp_path / "soc.HSX", si_soc.replace(fermi_level=0.0), k)]
    for path, hs, kk in cases:
        ham = sisl.get_sile(str(path)).read_hamiltonian()
        hk, sk = ham.Hk(kk, format="array"), ham.Sk(kk, format="array")
        if hs.spin == "spinor":  # sisl interleaves spin per orbital
            n = hk.shape[0] // 2
            idx = np.concatenate([np.arange(0, 2 * n, 2), np.arange(1, 2 * n, 2)])
            hk, sk = hk[np.ix_(idx, idx)], sk[np.ix_(idx, idx)]
        ours_h, ours_s = _siesta_order_dense(hs, kk)
        assert np.abs(sk - ours_s).max() < 1e-7
        assert np.abs(hk - ours_h).max() < 1e-5  # sisl's own Ry constant
