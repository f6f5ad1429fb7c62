"""ABACUS CSR reader/writer: real samples, k-space cross-check, round trips, bad input."""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.units import Bohr, Ry

import interfaces
from interfaces import abacus, orbitals
from interfaces.abacus.csr import parse_csr
from interfaces.abacus.text import parse_orb_header, parse_stru, read_text
from interfaces.errors import FormatError
from interfaces.hsdata import HSData

DATA = Path(__file__).parent / "data" / "abacus"
OLD = DATA / "si2_dzp_oldcsr"
NEW = DATA / "si2_sz_newcsr_v3.10"

try:
    from interfaces import checks
except ImportError:  # pragma: no cover - the checks module is written in parallel
    checks = None


# ------------------------------------------------------------------ helpers
def bloch(hs: HSData, k, which: str = "h", channel: int = 0) -> np.ndarray:
    """Dense X(k) = sum_R X(R) exp(+i 2 pi k.R) (fractional k, no intra-cell phase)."""
    spinor = which == "h" and hs.spin == "spinor"
    f = 2 if spinor else 1
    n = hs.n_orbitals
    values = hs.s if which == "s" else hs.h[channel]
    out = np.zeros((f * n, f * n), dtype=complex)
    phase = np.exp(2j * np.pi * hs.cell_shift @ np.asarray(k, dtype=float))
    off = hs.orbital_offsets
    for e in range(hs.n_edges):
        i, j = hs.edge_index[:, e]
        ni, nj = hs.norbs[i], hs.norbs[j]
        blk = values[hs.block_index([e], spinor)[0]] * phase[e]
        for a in range(f):
            for b in range(f):
                out[a * n + off[i]:a * n + off[i] + ni, b * n + off[j]:b * n + off[j] + nj] += \
                    blk[a * ni:(a + 1) * ni, b * nj:(b + 1) * nj]
    return out


def read_kspace(path: Path) -> np.ndarray:
    """ABACUS data-<ik>-S: the dimension, then the upper triangle row by row as (re,im)."""
    tok = read_text(path).translate(str.maketrans("(),", "   ")).split()
    n = int(tok[0])
    vals = np.array(tok[1:], dtype=float)
    assert len(vals) == n * (n + 1)
    upper = np.zeros((n, n), dtype=complex)
    upper[np.triu_indices(n)] = vals[0::2] + 1j * vals[1::2]
    return upper + np.triu(upper, 1).conj().T


def same_hsdata(a: HSData, b: HSData, rtol: float = 1e-14) -> None:
    assert a.spin == b.spin and a.basis == b.basis
    assert a.atoms.get_chemical_symbols() == b.atoms.get_chemical_symbols()
    np.testing.assert_allclose(b.atoms.cell, a.atoms.cell, atol=1e-12)
    np.testing.assert_allclose(b.atoms.positions, a.atoms.positions, atol=1e-12)
    assert a.n_edges == b.n_edges
    idx = b.find_edges(a.edge_index[0], a.edge_index[1], a.cell_shift)
    assert np.all(idx >= 0)
    for ga in a.shape_groups():
        spinor = a.spin == "spinor"
        ia, ib = a.block_index(ga, spinor), b.block_index(idx[ga], spinor)
        for ca, cb in zip(a.h, b.h, strict=True):
            np.testing.assert_allclose(cb[ib], ca[ia], rtol=rtol, atol=1e-300)
        np.testing.assert_allclose(b.s[b.block_index(idx[ga])], a.s[a.block_index(ga)],
                                   rtol=rtol, atol=1e-300)


def random_hsdata(spin: str, seed: int = 0) -> HSData:
    """Random Hermitian HSData on a small two-species crystal (all pairs with |R| <= 1)."""
    rng = np.random.default_rng(seed)
    atoms = Atoms("Si2O", scaled_positions=[[0, 0, 0], [0.27, 0.22, 0.31], [0.6, 0.5, 0.45]],
                  cell=[[3.1, 0.2, 0.0], [0.3, 2.9, 0.1], [0.0, 0.4, 3.3]], pbc=True)
    basis = {"Si": (0, 0, 1, 2), "O": (0, 1, 1, 3)}
    grid = np.array(np.meshgrid(*[[-1, 0, 1]] * 3, indexing="ij")).reshape(3, -1).T
    ii, jj, rr = np.meshgrid(np.arange(3), np.arange(3), np.arange(len(grid)), indexing="ij")
    ei = np.stack([ii.ravel(), jj.ravel()])
    shift = grid[rr.ravel()]
    keep = rng.random(ei.shape[1]) < 0.5
    keep |= np.all(shift == 0, axis=1) & (ei[0] == ei[1])
    skel = HSData(atoms=atoms, basis=basis, edge_index=ei, cell_shift=shift)
    rev = skel.reverse_edges
    keep |= keep[rev]
    skel = skel.select_edges(keep)
    nv = skel.n_values
    s = rng.normal(size=nv)
    if spin == "spinor":
        h = (rng.normal(size=(1, 4 * nv)) + 1j * rng.normal(size=(1, 4 * nv)))
    else:
        h = rng.normal(size=(2 if spin == "collinear" else 1, nv))
    hs = skel.replace(h=h, s=s, spin=spin).symmetrize()
    # one off-site pair of blocks that is zero in H and S (must survive a round trip)
    e = int(np.flatnonzero(hs.edge_index[0] != hs.edge_index[1])[0])
    h, s = hs.h.copy(), hs.s.copy()
    for x in (e, int(hs.reverse_edges[e])):
        h[:, hs.block_index([x], spin == "spinor")[0]] = 0
        s[hs.block_index([x])[0]] = 0
    return hs.replace(h=h, s=s)


def flip_one_sign(hs: HSData, el: str = "Si", l_val: int = 1, m_index: int = 0) -> HSData:
    """Same data with one wrong table entry: the sign of one m of one shell flipped."""
    maps = {}
    for e, ls in hs.basis.items():
        n = sum(2 * x + 1 for x in ls)
        sign = np.ones(n)
        if e == el:
            start = sum(2 * x + 1 for x in ls[:ls.index(l_val)])
            sign[start + m_index] = -1
        maps[e] = (np.arange(n), sign)
    return hs.permute_orbitals(maps)


@pytest.fixture(scope="module")
def old() -> HSData:
    return abacus.read(OLD)


@pytest.fixture(scope="module")
def new() -> HSData:
    return abacus.read(NEW)


# ------------------------------------------------------------ real samples
def test_old_sample_dimensions_and_hermiticity(old):
    assert old.n_orbitals == 26 and old.basis == {"Si": (0, 0, 1, 1, 2)}
    assert old.spin == "none" and old.source_code == "abacus"
    assert old.metadata["abacus"]["layout"] == "old" and old.metadata["abacus"]["step"] == 0
    assert np.all(old.reverse_edges >= 0)
    assert old.metadata["abacus"]["n_filled_partners"] == 0
    assert old.hermiticity_error() == 0.0
    for i in range(2):
        np.testing.assert_allclose(np.diag(old.block(i, i, (0, 0, 0), "s")), 1.0, atol=2e-3)
    assert math.isnan(old.fermi_level) and math.isnan(old.n_electrons)


def test_old_sample_s_of_k_matches_abacus_print(old):
    """S(k = (1/2, 0, 0)) equals the S(k) ABACUS printed for the same structure (5 digits)."""
    printed = read_kspace(OLD / "kspace_check_207_NO_KP_OH" / "data-1-S.ref")
    ours = bloch(orbitals.from_internal(old, "abacus"), [0.5, 0, 0], "s")
    assert np.abs(ours - printed).max() < 5e-5
    # the orbital conversion is a similarity transform: spectra agree in both orders
    np.testing.assert_allclose(np.linalg.eigvalsh(bloch(old, [0.5, 0, 0], "s")),
                               np.linalg.eigvalsh(printed), atol=2e-4)
    # and another half-integer k does not match (the check is discriminating)
    assert np.abs(bloch(orbitals.from_internal(old, "abacus"), [0, 0.5, 0], "s")
                  - printed).max() > 1e-2


def test_old_sample_cutoff_geometry_and_h_only_edges(old):
    """Non-zero S blocks are shorter than r_c(i) + r_c(j) = 16 Bohr; H-only blocks are kept."""
    orb = OLD / "Si_gga_8au_60Ry_2s2p1d.orb.gz"
    element, r_c, shells = parse_orb_header(read_text(orb), orb)
    assert (element, r_c, shells) == ("Si", 8.0, old.basis["Si"])
    length = np.linalg.norm(old.edge_vectors(), axis=1) / Bohr
    s_max = np.array([np.abs(old.s[old.block_ptr[e]:old.block_ptr[e + 1]]).max()
                      for e in range(old.n_edges)])
    h_max = np.array([np.abs(old.h[0, old.block_ptr[e]:old.block_ptr[e + 1]]).max()
                      for e in range(old.n_edges)])
    assert length[s_max > 0].max() < 2 * r_c
    h_only = s_max == 0
    assert h_only.sum() > 0 and np.all(h_max[h_only] > 0) and np.all(length[h_only] >= 2 * r_c)
    raw = parse_csr(read_text(OLD / "data-HR-sparse_SPIN0.csr.ref.gz"), "h")
    assert np.count_nonzero(raw.val) == np.count_nonzero(old.h)


def test_shells_from_orb_header(tmp_path, old):
    """With a tag-less orbital file name the shells come from the .orb header alone."""
    for name in ("data-HR-sparse_SPIN0.csr.ref.gz", "data-SR-sparse_SPIN0.csr.ref.gz"):
        shutil.copy(OLD / name, tmp_path / name)
    (tmp_path / "basis").mkdir()
    shutil.copy(OLD / "Si_gga_8au_60Ry_2s2p1d.orb.gz", tmp_path / "basis" / "Si.orb.gz")
    stru = read_text(OLD / "STRU").replace("Si_gga_8au_60Ry_2s2p1d.orb", "Si.orb")
    (tmp_path / "STRU").write_text(stru)
    (tmp_path / "INPUT").write_text("INPUT_PARAMETERS\norbital_dir ./basis\n")
    hs = abacus.read(tmp_path)
    assert hs.basis == old.basis
    np.testing.assert_array_equal(hs.h, old.h)
    (tmp_path / "INPUT").unlink()  # Si.orb not found and no tag in its name
    with pytest.raises(FormatError, match="shells"):
        abacus.read(tmp_path)


def test_new_sample(new):
    assert new.n_orbitals == 8 and new.basis == {"Si": (0, 1)}
    assert new.metadata["abacus"]["layout"] == "new"
    assert np.all(new.reverse_edges >= 0) and new.metadata["abacus"]["n_filled_partners"] == 0
    assert new.hermiticity_error() == 0.0  # exact H(R) = H(-R)^T in the file
    for i in range(2):
        np.testing.assert_allclose(np.diag(new.block(i, i, (0, 0, 0), "s")), 1.0, atol=1e-3)
    same_hsdata(new, interfaces.read(NEW / "srs1_nao.csr.ref"))  # registry + any file name
    embedded = parse_csr(read_text(NEW / "hrs1_nao.csr.ref"), "h").structure
    stru = parse_stru(read_text(NEW / "STRU"), "STRU").atoms
    assert embedded.get_chemical_symbols() == stru.get_chemical_symbols()
    np.testing.assert_allclose(embedded.cell, stru.cell, atol=1e-5)
    np.testing.assert_allclose(embedded.positions, stru.positions, atol=1e-5)


def test_new_sample_structure_from_header_only(tmp_path, new):
    """Without STRU the structure comes from the CSR header; shells must then be given."""
    for name in ("hrs1_nao.csr.ref", "srs1_nao.csr.ref"):
        shutil.copy(NEW / name, tmp_path / name)
    with pytest.raises(FormatError, match="shells"):
        abacus.read(tmp_path)
    hs = abacus.read(tmp_path / "hrs1_nao.csr.ref", basis={"Si": "1x0e+1x1o"})
    np.testing.assert_allclose(hs.atoms.cell, new.atoms.cell, atol=1e-5)
    np.testing.assert_allclose(hs.atoms.positions, new.atoms.positions, atol=1e-5)
    np.testing.assert_array_equal(hs.h, new.h)
    np.testing.assert_array_equal(hs.s, new.s)


@pytest.mark.parametrize("sample", ["old", "new"])
def test_convention_checks_on_s(sample, old, new):
    hs = {"old": old, "new": new}[sample]
    if checks is None:
        pytest.skip("interfaces.checks not available")
    assert checks.bond_axis_error(hs) < 1e-7
    assert checks.symmetry_error(hs, "s") < 1e-7
    bad = flip_one_sign(hs)
    assert checks.bond_axis_error(bad) > 1e-3
    assert checks.symmetry_error(bad, "s") > 1e-3


# ------------------------------------------------------------- round trips
@pytest.mark.parametrize("layout", ["old", "new"])
def test_sample_round_trip(tmp_path, layout, old, new):
    for hs in (old, new):
        out = tmp_path / f"{layout}_{hs.n_orbitals}"
        abacus.write(hs, out, layout=layout)
        back = abacus.read(out)
        same_hsdata(hs, back)
        assert back.metadata["abacus"]["layout"] == layout


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
@pytest.mark.parametrize("layout", ["old", "new"])
def test_synthetic_round_trip(tmp_path, spin, layout):
    hs = random_hsdata(spin, seed=len(spin) + len(layout))
    files = abacus.write(hs, tmp_path, layout=layout)
    names = {p.name for p in files}
    if layout == "old":
        assert "data-SR-sparse_SPIN0.csr" in names
        assert ("data-HR-sparse_SPIN1.csr" in names) == (spin == "collinear")
        assert read_text(tmp_path / "data-HR-sparse_SPIN0.csr").startswith("STEP: 0")
    else:
        assert "srs1_nao.csr" in names and ("hrs2_nao.csr" in names) == (spin == "collinear")
    back = abacus.read(tmp_path)
    same_hsdata(hs, back)
    rng = np.random.default_rng(5)
    for k in rng.random((3, 3)):
        for ch in range(hs.n_spin_channels):
            np.testing.assert_allclose(np.linalg.eigvalsh(bloch(back, k, "h", ch)),
                                       np.linalg.eigvalsh(bloch(hs, k, "h", ch)), atol=1e-10)


def test_spinor_file_layout_is_interleaved(tmp_path):
    """nspin 4 files index 2 * orbital + sigma; S is written spin-diagonal, read back spinless."""
    hs = random_hsdata("spinor", seed=3)
    abacus.write(hs, tmp_path)
    raw = parse_csr(read_text(tmp_path / "data-HR-sparse_SPIN0.csr"), "h")
    ab = orbitals.from_internal(hs, "abacus")
    assert raw.dim == 2 * hs.n_orbitals and np.iscomplexobj(raw.val)
    on = np.all(raw.shift == 0, axis=1)
    dense = np.zeros((raw.dim, raw.dim), complex)
    dense[raw.row[on], raw.col[on]] = raw.val[on] * Ry
    blk = ab.block(0, 0, (0, 0, 0))  # spin-major (2n, 2n)
    n = hs.norbs[0]
    inter = blk.reshape(2, n, 2, n).transpose(1, 0, 3, 2).reshape(2 * n, 2 * n)
    np.testing.assert_allclose(dense[:2 * n, :2 * n], inter, rtol=1e-14)
    raw_s = parse_csr(read_text(tmp_path / "data-SR-sparse_SPIN0.csr"), "s")
    assert raw_s.dim == 2 * hs.n_orbitals and np.all(raw_s.row % 2 == raw_s.col % 2)


def test_interleaved_species_are_regrouped(tmp_path):
    hs = random_hsdata("none", seed=9)
    perm = [0, 2, 1]  # Si O Si: not contiguous by species
    inv = np.argsort(perm)
    mixed = hs.replace(atoms=hs.atoms[perm], edge_index=inv[hs.edge_index])
    abacus.write(mixed, tmp_path)
    back = abacus.read(tmp_path)
    assert back.atoms.get_chemical_symbols() == ["Si", "Si", "O"]
    k = [0.1, 0.2, 0.3]
    np.testing.assert_allclose(np.linalg.eigvalsh(bloch(back, k)),
                               np.linalg.eigvalsh(bloch(mixed, k)), atol=1e-10)


def test_write_input(tmp_path):
    atoms = Atoms("SiO2", scaled_positions=[[0, 0, 0], [0.3, 0.2, 0.1], [0.7, 0.8, 0.9]],
                  cell=np.diag([4.0, 4.5, 5.0]), pbc=True)
    atoms = atoms[[1, 0, 2]]  # O Si O: written grouped by species
    abacus.write_input(atoms, {"Si": "Si_2s2p1d.orb", "O": "O_2s2p1d.orb"}, tmp_path,
                       kpts=(4, 4, 3), basis={"Si": (0, 0, 1, 1, 2), "O": "2x0e+2x1o+1x2e"})
    inp = read_text(tmp_path / "INPUT")
    assert "out_mat_hs2" in inp and "basis_type" in inp and "lcao" in inp
    assert read_text(tmp_path / "KPT").split()[-6:] == ["4", "4", "3", "0", "0", "0"]
    stru = parse_stru(read_text(tmp_path / "STRU"), tmp_path / "STRU")
    assert stru.atoms.get_chemical_symbols() == ["O", "O", "Si"]
    np.testing.assert_allclose(stru.atoms.cell, atoms.cell, atol=1e-12)
    np.testing.assert_allclose(sorted(map(tuple, stru.atoms.positions)),
                               sorted(map(tuple, atoms.positions)), atol=1e-12)
    assert stru.shell_notes == {"O": (0, 0, 1, 1, 2), "Si": (0, 0, 1, 1, 2)}


# ------------------------------------------------------ partners, logs, names
def test_missing_partner_elements_are_filled(tmp_path):
    hs = random_hsdata("none", seed=1)
    abacus.write(hs, tmp_path)
    path = tmp_path / "data-HR-sparse_SPIN0.csr"
    lines = read_text(path).splitlines()
    k = next(n for n, ln in enumerate(lines) if ln.split()[:3] == ["1", "1", "1"]
             and int(ln.split()[3]) > 0)
    nnz = int(lines[k].split()[3])
    lines[k] = "1 1 1 0"  # drop the whole block R = (1, 1, 1): its partners at -R remain
    del lines[k + 1:k + 4]
    path.write_text("\n".join(lines) + "\n")
    back = abacus.read(tmp_path)
    assert back.metadata["abacus"]["n_filled_partners"] == nnz
    assert back.hermiticity_error() == 0.0
    same_hsdata(hs, back, rtol=1e-13)


def test_log_gives_fermi_level_structure_and_shells(tmp_path, old):
    abacus.write(old, tmp_path)
    (tmp_path / "STRU").unlink()
    log = """
 READING UNITCELL INFORMATION
                                    ntype = 1
                  lattice constant (Bohr) = 10.2
              lattice constant (Angstrom) = 5.397605

 READING ATOM TYPE 1
                               atom label = Si
                      L=0, number of zeta = 2
                      L=1, number of zeta = 2
                      L=2, number of zeta = 1
             number of atom for this type = 2

                        TOTAL ATOM NUMBER = 2

 DIRECT COORDINATES
    atom                   x                   y                   z     mag
    taud_Si1                   0                   0                   0   0
    taud_Si2                0.25                0.25                0.25   0

 Lattice vectors: (Cartesian coordinate: in unit of a_0)
                +0.5                +0.5                  +0
                +0.5                  +0                +0.5
                  +0                +0.5                +0.5
 AUTOSET number of electrons: = 8
 EFERMI = 6.1000000 eV
 EFERMI = 6.2345678 eV
"""
    (tmp_path / "OUT.ABACUS").mkdir()
    (tmp_path / "OUT.ABACUS" / "running_scf.log").write_text(log)
    hs = abacus.read(tmp_path)
    assert hs.fermi_level == pytest.approx(6.2345678) and hs.n_electrons == 8
    assert hs.basis == old.basis
    np.testing.assert_allclose(hs.atoms.positions, old.atoms.positions, atol=1e-5)
    np.testing.assert_array_equal(hs.h, old.h)


def test_electrons_from_upf_valence(tmp_path, new):
    """Without a log the electron count is the UPF z_valence times the atom count."""
    abacus.write(new, tmp_path, pseudo_files={"Si": "Si_test.upf"})
    assert math.isnan(abacus.read(tmp_path).n_electrons)  # pseudopotential not found
    (tmp_path / "Si_test.upf").write_text('<UPF version="2.0.1">\n<PP_HEADER\n'
                                          '   z_valence="    4.000000000000000E+000"\n/>\n')
    assert abacus.read(tmp_path).n_electrons == 8.0


@pytest.mark.parametrize("name", ["data-HR-sparse_SPIN0.csr", "hrs1_nao.csr"])
def test_file_names_and_gzip(tmp_path, name):
    hs = random_hsdata("none", seed=4)
    layout = "old" if name.startswith("data") else "new"
    abacus.write(hs, tmp_path / "run" / "OUT.x", layout=layout)
    out = tmp_path / "run" / "OUT.x"
    shutil.move(out / "STRU", tmp_path / "run" / "STRU")  # STRU one level up, as in a run
    s_name = "data-SR-sparse_SPIN0.csr" if layout == "old" else "srs1_nao.csr"
    (out / s_name).rename(out / ("SR.csr" if layout == "old" else "sr_nao.csr"))
    with open(out / name, "rb") as src, gzip.open(out / (name + ".gz"), "wb") as dst:
        dst.write(src.read())
    (out / name).unlink()
    for path in (tmp_path / "run", out, out / (name + ".gz")):
        same_hsdata(hs, abacus.read(path))


def test_overlap_only_run(tmp_path, old):
    """A get_S run (SR.csr only) gives S and no H; the spin-down file alone is refused."""
    only_s = old.replace(h=None)
    abacus.write(only_s, tmp_path)  # H-only blocks: explicit zero S blocks keep the edges
    assert not (tmp_path / "data-HR-sparse_SPIN0.csr").exists()
    (tmp_path / "data-SR-sparse_SPIN0.csr").rename(tmp_path / "SR.csr")
    hs = abacus.read(tmp_path)
    assert hs.h is None and hs.hermiticity_error() == 0.0
    assert hs.n_edges == old.n_edges
    np.testing.assert_array_equal(hs.s, only_s.s)
    (tmp_path / "data-HR-sparse_SPIN1.csr").write_text("")
    with pytest.raises(FormatError, match="spin-down"):
        abacus.read(tmp_path)


# --------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path, old):
    with pytest.raises(FormatError, match="no such"):
        abacus.read(tmp_path / "nothing")
    with pytest.raises(FormatError, match="no ABACUS CSR"):
        abacus.read(tmp_path)
    with pytest.raises(FormatError, match="dimension"):  # mismatched orbital counts
        abacus.read(OLD, basis={"Si": (0, 1)})
    run = tmp_path / "run"
    abacus.write(old, run)
    h = run / "data-HR-sparse_SPIN0.csr"
    text = read_text(h)
    h.write_text(text[: len(text) // 2])
    with pytest.raises(FormatError, match="data-HR-sparse_SPIN0.csr"):
        abacus.read(run)
    h.write_text(text.replace("Matrix Dimension of H(R): 26", "Matrix Dimension of H(R): 27"))
    with pytest.raises(FormatError):
        abacus.read(run)
    h.write_text(text)
    raw = (OLD / "data-SR-sparse_SPIN0.csr.ref.gz").read_bytes()
    gz = run / "data-SR-sparse_SPIN0.csr.gz"
    (run / "data-SR-sparse_SPIN0.csr").unlink()
    for bad in (raw[: len(raw) // 2], raw[:100] + bytes([raw[100] ^ 0xFF]) + raw[101:]):
        gz.write_bytes(bad)  # truncated / corrupted gzip stream
        with pytest.raises(FormatError, match="data-SR-sparse_SPIN0.csr.gz"):
            abacus.read(run)
    gz.unlink()
    (run / "STRU").unlink()
    with pytest.raises(FormatError, match="no structure"):
        abacus.read(run)


def test_mismatched_embedded_structure(tmp_path):
    for name in ("STRU", "hrs1_nao.csr.ref", "srs1_nao.csr.ref"):
        shutil.copy(NEW / name, tmp_path / name)
    text = read_text(tmp_path / "STRU").replace("0.25 0.25 0.25", "0.26 0.25 0.25")
    (tmp_path / "STRU").write_text(text)
    with pytest.raises(FormatError, match="disagrees"):
        abacus.read(tmp_path)


def test_fuzz_new_csr_only_format_error(tmp_path):
    """Random truncations and token corruptions of the new-CSR sample raise only FormatError."""
    rng = np.random.default_rng(2024)
    originals = {n: read_text(NEW / n) for n in ("hrs1_nao.csr.ref", "srs1_nao.csr.ref")}
    shutil.copy(NEW / "STRU", tmp_path / "STRU")
    garbage = ["abc", "1e999", "-1", "99999", "(1,2)", "", "nan", "0.5", "#", "7", "1 2"]
    n_error = 0
    for trial in range(50):
        target = list(originals)[trial % 2]
        for n, t in originals.items():
            (tmp_path / n).write_text(t)
        text = originals[target]
        if trial % 3 == 0:
            text = text[: int(rng.integers(0, len(text)))]
        else:
            tokens = text.split(" ")
            for _ in range(int(rng.integers(1, 4))):
                tokens[int(rng.integers(len(tokens)))] = str(rng.choice(garbage))
            text = " ".join(tokens)
        (tmp_path / target).write_text(text)
        try:
            hs = abacus.read(tmp_path)
        except FormatError:
            n_error += 1
        else:
            assert hs.n_orbitals == 8
    assert n_error >= 25
