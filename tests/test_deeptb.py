"""DeePTB DefaultDataset folders: round trips, DeePTB-parser-style files, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from interfaces import FormatError, deeptb
from tests._converters_utils import assert_same, eigenvalues, random_hs


@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_round_trip(tmp_path, spin):
    hs = random_hs(spin, seed=21)
    deeptb.write(hs, tmp_path / "set.0")
    back = deeptb.read(tmp_path / "set.0")
    assert_same(hs, back)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_written_layout(tmp_path):
    hs = random_hs("none", seed=22)
    deeptb.write(hs, tmp_path / "d")
    d = tmp_path / "d"
    np.testing.assert_allclose(np.loadtxt(d / "cell.dat"), np.asarray(hs.atoms.cell))
    np.testing.assert_allclose(np.loadtxt(d / "positions.dat"), hs.atoms.positions)
    assert (d / "basis.dat").read_text().split() == ["2s2p1d", "1s1p", "2s2p1d"]
    info = json.loads((d / "info.json").read_text())
    lengths = np.linalg.norm(hs.edge_vectors(), axis=1)
    assert info["nframes"] == 1 and info["pos_type"] == "cart" and info["r_max"] > lengths.max()
    with h5py.File(d / "hamiltonians.h5") as f:
        assert list(f.keys()) == ["0"]
        np.testing.assert_array_equal(f["0"]["1_2_0_-1_1"][()], hs.block(1, 2, (0, -1, 1)))


def test_deeptb_parser_style_folder(tmp_path):
    """1-based keys, frame group "1", one direction stored only, per-atom basis lines.

    Written with numpy/h5py only, the way DeePTB's ABACUS parser writes its files.
    """
    hs = random_hs("none", seed=23)
    d = tmp_path / "abacus_style"
    d.mkdir()
    np.savetxt(d / "cell.dat", np.asarray(hs.atoms.cell))
    np.savetxt(d / "positions.dat", hs.atoms.positions)
    np.savetxt(d / "atomic_numbers.dat", hs.atoms.numbers, fmt="%d")
    (d / "basis.dat").write_text("2s2p1d\n1s1p\n2s2p1d\n")
    keep = [e for e in range(hs.n_edges)
            if (hs.edge_index[0, e], hs.edge_index[1, e], *hs.cell_shift[e])
            <= (hs.edge_index[1, e], hs.edge_index[0, e], *(-hs.cell_shift[e]))]
    for name, which in (("hamiltonians.h5", "h"), ("overlaps.h5", "s")):
        with h5py.File(d / name, "w") as f:
            grp = f.create_group("1")
            for e in keep:
                i, j = hs.edge_index[:, e]
                r = hs.cell_shift[e]
                grp[f"{i + 1}_{j + 1}_{r[0]}_{r[1]}_{r[2]}"] = hs.block(i, j, r, which)
    back = deeptb.read(d)
    assert_same(hs.replace(fermi_level=np.nan, n_electrons=np.nan), back, atol=1e-15)
    assert back.hermiticity_error() == 0.0


def test_eigenvalues_survive(tmp_path):
    hs = random_hs("spinor", seed=24)
    deeptb.write(hs, tmp_path / "d")
    kpts = np.random.default_rng(3).random((2, 3))
    np.testing.assert_allclose(eigenvalues(deeptb.read(tmp_path / "d"), kpts),
                               eigenvalues(hs, kpts), atol=1e-9)


def test_parse_basis():
    assert deeptb.parse_basis("2s2p1d") == (0, 0, 1, 1, 2)
    assert deeptb.parse_basis(["3s", "3p", "d*"]) == (0, 1, 2)
    with pytest.raises(ValueError):
        deeptb.parse_basis("2s2x")


@pytest.mark.parametrize("damage", [
    "no_basis", "basis_lines", "orbital_count", "malformed_key", "atom_range", "no_h5",
    "positions_shape", "bad_json",
])
def test_bad_input(tmp_path, damage):
    hs = random_hs("none", seed=25)
    d = tmp_path / "d"
    deeptb.write(hs, d)
    if damage == "no_basis":
        (d / "basis.dat").unlink()
    elif damage == "basis_lines":
        (d / "basis.dat").write_text("2s2p1d\n")
    elif damage == "orbital_count":
        (d / "basis.dat").write_text("2s2p1d\n1s2p\n2s2p1d\n")
    elif damage in ("malformed_key", "atom_range"):
        with h5py.File(d / "overlaps.h5", "a") as f:
            f["0"]["0_0_0_0" if damage == "malformed_key" else "0_7_0_0_0"] = np.zeros((13, 13))
    elif damage == "no_h5":
        (d / "hamiltonians.h5").unlink()
        (d / "overlaps.h5").unlink()
    elif damage == "positions_shape":
        np.savetxt(d / "positions.dat", np.zeros((4, 3)))
    elif damage == "bad_json":
        (d / "info.json").write_text("[1, 2")
    with pytest.raises(FormatError):
        deeptb.read(d)
