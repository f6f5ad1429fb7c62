"""OpenMX .scfout reader/writer: hand-built byte layouts, round trips, fuzzing."""

from __future__ import annotations

import numpy as np
import pytest
from ase.units import Bohr, Ha

from interfaces import FormatError, openmx
from tests._converters_utils import assert_same, eigenvalues, random_hs

# ---------------------------------------------------------------- hand-built byte layout
# O (s, px, py, pz in OpenMX order) at the origin and H (s) 0.97 A above it, cubic 8 A box.
# Neighbour lists (docs/formats.md 2.1): O: self, H (R=0), H (R=+x); H: self, O (R=0), O (R=-x).
_NATN = [[1, 2, 2], [2, 1, 1]]
_NCN = [[0, 0, 1], [0, 0, 2]]
_ATV_IJK = [(0, 0, 0), (1, 0, 0), (-1, 0, 0)]
_TNO = [4, 1]
_SIZES = [4 * 4, 4 * 1, 4 * 1, 1 * 1, 1 * 4, 1 * 4]
_N = sum(_SIZES)
_LINES = ["System.Name  water_piece", "<Definition.of.Atomic.Species",
          " O   O6.0-s1p1   O_PBE19", " H   H5.0-s1     H_PBE19",
          "Definition.of.Atomic.Species>", "Atoms.SpeciesAndCoordinates.Unit  Ang",
          "<Atoms.SpeciesAndCoordinates", " 1  O  0.0 0.0 0.0   3.0 3.0",
          " 2  H  0.0 0.0 0.97  0.5 0.5", "Atoms.SpeciesAndCoordinates>", "HS.fileout  on"]
_A = 8.0 / Bohr  # box edge in Bohr
_Z = 0.97 / Bohr


def _scfout_bytes(endian: str, spin: int, rng) -> tuple[bytes, dict]:
    """Write the records of docs/formats.md 2.1 one by one with numpy (not via the writer)."""
    i4, f8 = endian + "i4", endian + "f8"
    n_h = spin + 1
    hks = rng.normal(size=(n_h, _N))
    ihks = rng.normal(size=(3, _N)) if spin == 3 else None
    olp = rng.normal(size=_N)
    rec = [np.array([2, 3 * 4 + spin, 2, 0, 0, 2], i4), np.array([1], i4)]
    rec.append(np.array([[0, *(np.array(r) * _A)] for r in _ATV_IJK], f8))
    rec.append(np.array([[0, *r] for r in _ATV_IJK], i4))
    rec += [np.array(_TNO, i4), np.array([2, 2], i4)]
    rec += [np.array(x, i4) for x in _NATN] + [np.array(x, i4) for x in _NCN]
    rec.append(np.array([[0, _A, 0, 0], [0, 0, _A, 0], [0, 0, 0, _A]], f8))
    rec.append(np.array([[0, 2 * np.pi / _A, 0, 0], [0, 0, 2 * np.pi / _A, 0],
                         [0, 0, 0, 2 * np.pi / _A]], f8))
    rec.append(np.array([[0, 0, 0, 0], [0, 0, 0, _Z]], f8))
    rec.append(hks.astype(f8))
    if ihks is not None:
        rec.append(ihks.astype(f8))
    rec.append(olp.astype(f8))
    rec.append(np.zeros(3 * 1 * _N + 3 * _N + n_h * _N + 2 * _N, f8))  # OLPpo OLPmo DM iDM
    rec.append(np.array([3], i4))
    rec.append(np.array([-0.2, 1e-3, 0, 0, 0, 0, 0, 0, 7.0, 0.0], f8))
    rec.append(np.array([len(_LINES)], i4))
    text = b"".join((ln + "\n").encode().ljust(256, b"\0") for ln in _LINES)
    return b"".join(r.tobytes() for r in rec) + text, {"hks": hks, "ihks": ihks, "olp": olp}


def _code_blocks(flat: np.ndarray) -> list[np.ndarray]:
    shapes = [(4, 4), (4, 1), (4, 1), (1, 1), (1, 4), (1, 4)]
    bounds = np.concatenate([[0], np.cumsum(_SIZES)])
    return [flat[bounds[k]:bounds[k + 1]].reshape(shapes[k]) for k in range(6)]


# (atom i, atom j, R) of the six blocks in file order, and the code -> internal orbital map:
# internal p order is (y, z, x), i.e. OpenMX (x, y, z)[[1, 2, 0]] (docs/conventions.md 4).
_KEYS = [(0, 0, (0, 0, 0)), (0, 1, (0, 0, 0)), (0, 1, (1, 0, 0)),
         (1, 1, (0, 0, 0)), (1, 0, (0, 0, 0)), (1, 0, (-1, 0, 0))]
_PERM = {0: [0, 2, 3, 1], 1: [0]}


@pytest.mark.parametrize("endian", ["<", ">"])
def test_hand_built_spinless(tmp_path, endian):
    raw, ref = _scfout_bytes(endian, 0, np.random.default_rng(1))
    (tmp_path / "a.scfout").write_bytes(raw)
    hs = openmx.read(tmp_path / "a.scfout")
    assert hs.spin == "none" and hs.n_edges == 6
    assert hs.atoms.get_chemical_symbols() == ["O", "H"]
    assert hs.basis == {"O": (0, 1), "H": (0,)}
    np.testing.assert_allclose(hs.atoms.positions[1], [0, 0, 0.97], atol=1e-12)
    np.testing.assert_allclose(np.asarray(hs.atoms.cell), 8.0 * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(hs.fermi_level, -0.2 * Ha)
    assert hs.n_electrons == 7.0
    for (i, j, r), hb, sb in zip(_KEYS, _code_blocks(ref["hks"][0]), _code_blocks(ref["olp"]),
                                 strict=True):
        rows, cols = np.ix_(_PERM[i], _PERM[j])
        np.testing.assert_allclose(hs.block(i, j, r, "h"), hb[rows, cols] * Ha, rtol=1e-15)
        np.testing.assert_allclose(hs.block(i, j, r, "s"), sb[rows, cols], rtol=1e-15)


@pytest.mark.parametrize("endian", ["<", ">"])
def test_hand_built_noncollinear(tmp_path, endian):
    raw, ref = _scfout_bytes(endian, 3, np.random.default_rng(2))
    (tmp_path / "nc.scfout").write_bytes(raw)
    hs = openmx.read(tmp_path / "nc.scfout")
    assert hs.spin == "spinor"
    hks = [_code_blocks(c) for c in ref["hks"]]
    ihks = [_code_blocks(c) for c in ref["ihks"]]
    partner = {0: 0, 1: 4, 2: 5, 3: 3, 4: 1, 5: 2}  # block index of (j, i, -R)
    for k, (i, j, r) in enumerate(_KEYS):
        rows, cols = np.ix_(_PERM[i], _PERM[j])
        ni, nj = len(_PERM[i]), len(_PERM[j])
        blk = hs.block(i, j, r, "h")
        uu = hks[0][k] + 1j * ihks[0][k]
        dd = hks[1][k] + 1j * ihks[1][k]
        ud = hks[2][k] + 1j * (hks[3][k] + ihks[2][k])
        p = partner[k]
        du = np.conj(hks[2][p] + 1j * (hks[3][p] + ihks[2][p])).T
        np.testing.assert_allclose(blk[:ni, :nj], uu[rows, cols] * Ha, rtol=1e-14)
        np.testing.assert_allclose(blk[ni:, nj:], dd[rows, cols] * Ha, rtol=1e-14)
        np.testing.assert_allclose(blk[:ni, nj:], ud[rows, cols] * Ha, rtol=1e-14)
        np.testing.assert_allclose(blk[ni:, :nj], du[rows, cols] * Ha, rtol=1e-14)


def test_hand_built_eof_and_trailing(tmp_path):
    raw, _ = _scfout_bytes("<", 0, np.random.default_rng(3))
    (tmp_path / "x.scfout").write_bytes(raw + b"\0\0\0\0")
    with pytest.raises(FormatError, match="unexpected bytes"):
        openmx.read(tmp_path / "x.scfout")
    # the legacy DeepH habit `cat openmx.out >> openmx.scfout` (plain text) is tolerated
    (tmp_path / "y.scfout").write_bytes(raw + b"\n***** OpenMX output *****\n")
    assert openmx.read(tmp_path / "y.scfout").n_edges == 6


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_round_trip(tmp_path, spin):
    hs = random_hs(spin, seed=5)
    openmx.write(hs, tmp_path / "rt.scfout")
    back = openmx.read(tmp_path / "rt.scfout")
    assert_same(hs, back, rtol=1e-14, atol=1e-14)
    assert back.hermiticity_error() < 1e-13
    openmx.write(back, tmp_path / "rt2.scfout")  # same records again (values to 1 ulp)
    assert (tmp_path / "rt.scfout").stat().st_size == (tmp_path / "rt2.scfout").stat().st_size


def test_round_trip_eigenvalues(tmp_path):
    hs = random_hs("spinor", seed=6)
    openmx.write(hs, tmp_path / "e.scfout")
    kpts = np.random.default_rng(0).random((2, 3))
    np.testing.assert_allclose(eigenvalues(openmx.read(tmp_path / "e.scfout"), kpts),
                               eigenvalues(hs, kpts), atol=1e-9)


def test_write_input(tmp_path):
    hs = random_hs()
    openmx.write_input(hs.atoms, {"C": "C6.0-s2p2d1", "Si": (0, 1)}, tmp_path / "in.dat",
                       valence={"C": 4, "Si": 4})
    text = (tmp_path / "in.dat").read_text().splitlines()
    assert "HS.fileout  on" in text and "Atoms.SpeciesAndCoordinates.Unit  Ang" in text
    spec = text[text.index("<Definition.of.Atomic.Species") + 1:
                text.index("Definition.of.Atomic.Species>")]
    shells = {t.split()[0]: tuple(openmx.shells_of(t.split()[1])) for t in spec}
    assert shells == {"C": (0, 0, 1, 1, 2), "Si": (0, 1)}
    coords = text[text.index("<Atoms.SpeciesAndCoordinates") + 1:
                  text.index("Atoms.SpeciesAndCoordinates>")]
    xyz = np.array([[float(x) for x in t.split()[2:5]] for t in coords])
    np.testing.assert_allclose(xyz, hs.atoms.positions, atol=1e-12)
    assert all(float(t.split()[5]) + float(t.split()[6]) == 4.0 for t in coords)


# ----------------------------------------------------------------------------- bad input
def test_bad_inputs(tmp_path):
    with pytest.raises(FormatError):
        openmx.read(tmp_path / "missing.scfout")
    raw, _ = _scfout_bytes("<", 0, np.random.default_rng(4))
    old = bytearray(raw)
    old[4:8] = np.array([0], "<i4").tobytes()  # version 0 (OpenMX <= 3.8)
    (tmp_path / "v0.scfout").write_bytes(bytes(old))
    with pytest.raises(FormatError, match="version 0"):
        openmx.read(tmp_path / "v0.scfout")
    bad = raw.replace(b"O6.0-s1p1 ", b"O6.0-s2p1 ")  # 5 orbitals, Total_NumOrbs says 4
    (tmp_path / "orb.scfout").write_bytes(bad)
    with pytest.raises(FormatError, match="Total_NumOrbs"):
        openmx.read(tmp_path / "orb.scfout")
    bad = raw.replace(b" 2  H  0.0", b" 2  N  0.0")  # undefined species
    (tmp_path / "sp.scfout").write_bytes(bad)
    with pytest.raises(FormatError, match="undefined species"):
        openmx.read(tmp_path / "sp.scfout")


def test_failed_write_leaves_nothing(tmp_path):
    hs = random_hs("none", seed=9)
    i, j = hs.edge_index
    no_onsite = hs.select_edges(~((i == 1) & (j == 1) & ~hs.cell_shift.any(axis=1)))
    with pytest.raises(FormatError, match="on-site"):
        openmx.write(no_onsite, tmp_path / "bad.scfout")
    assert list(tmp_path.iterdir()) == []


def test_fuzz_truncations_and_flips(tmp_path):
    raw, _ = _scfout_bytes("<", 3, np.random.default_rng(7))
    rng = np.random.default_rng(8)
    target = tmp_path / "f.scfout"
    for trial in range(50):
        data = bytearray(raw)
        if trial % 2 == 0:
            data = data[:int(rng.integers(0, len(raw)))]
        else:
            for pos in rng.integers(0, len(raw), size=int(rng.integers(1, 4))):
                data[pos] ^= int(rng.integers(1, 256))
        target.write_bytes(bytes(data))
        try:
            openmx.read(target)
        except FormatError:
            continue
        assert trial % 2 == 1, "a truncated file was accepted"
