"""DeepH legacy / new folders: layout details, round trips, cross-format chain, bad input."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from ase.units import Ha

from interfaces import FormatError, deeph, openmx
from tests._converters_utils import assert_same, eigenvalues, random_hs

SPINS = ["none", "collinear", "spinor"]


@pytest.mark.parametrize("layout", ["legacy", "new"])
@pytest.mark.parametrize("spin", SPINS)
def test_round_trip(tmp_path, layout, spin):
    hs = random_hs(spin, seed=11)
    deeph.write(hs, tmp_path / "d", layout=layout)
    assert deeph.detect_layout(tmp_path / "d") == layout
    back = deeph.read(tmp_path / "d")
    assert_same(hs, back)  # eV / Angstrom in both: bit-exact
    assert back.hermiticity_error() == 0.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_legacy_layout_details(tmp_path):
    hs = random_hs("none", seed=12)
    deeph.write(hs, tmp_path / "old", layout="legacy")
    d = tmp_path / "old"
    np.testing.assert_allclose(np.loadtxt(d / "lat.dat").T, np.asarray(hs.atoms.cell))
    np.testing.assert_allclose(np.loadtxt(d / "site_positions.dat").T, hs.atoms.positions)
    rlat = np.loadtxt(d / "rlat.dat")  # columns b_i with a_i . b_j = 2 pi delta_ij
    np.testing.assert_allclose(np.asarray(hs.atoms.cell) @ rlat, 2 * np.pi * np.eye(3),
                               atol=1e-12)
    assert (d / "orbital_types.dat").read_text().split("\n")[1].split() == ["0", "1"]
    assert json.loads((d / "info.json").read_text())["isspinful"] is False
    with h5py.File(d / "hamiltonians.h5") as f:
        keys = set(f.keys())
        assert "[0, 0, 0, 1, 1]" in keys and "[-1, 0, 0, 2, 3]" in keys  # 1-based atoms
        blk = f["[1, 0, 0, 1, 2]"][()]  # C (s s p p d) -> Si (s p), OpenMX order
    ref = hs.block(0, 1, (1, 0, 0))  # internal: p = (y, z, x), d = (xy, yz, z2, xz, x2-y2)
    # OpenMX p = (x, y, z) -> internal index (2, 0, 1); d = (z2, x2-y2, xy, xz, yz)
    c_map = [0, 1, 4, 2, 3, 7, 5, 6, 10, 12, 8, 11, 9]
    si_map = [0, 3, 1, 2]
    np.testing.assert_array_equal(blk, ref[np.ix_(c_map, si_map)])


def test_new_layout_details_and_poscar_order(tmp_path):
    hs = random_hs("spinor", seed=13)
    deeph.write(hs, tmp_path / "new")
    d = tmp_path / "new"
    poscar = (d / "POSCAR").read_text().splitlines()
    assert poscar[5].split() == ["C", "Si"] and poscar[6].split() == ["2", "1"]
    info = json.loads((d / "info.json").read_text())
    assert info["spinful"] is True and info["elements_orbital_map"]["C"] == [0, 0, 1, 1, 2]
    assert info["orbits_quantity"] == hs.n_orbitals and info["occupation"] == 20.0
    with h5py.File(d / "hamiltonian.h5") as f:
        pairs, shapes = f["atom_pairs"][()], f["chunk_shapes"][()]
        bounds, entries = f["chunk_boundaries"][()], f["entries"][()]
    assert entries.dtype == np.complex128 and bounds[-1] == entries.size
    # DFT atom 1 (Si) is POSCAR atom 2; DFT atom 2 (C) is POSCAR atom 1 (0-based)
    k = np.flatnonzero((pairs == [0, 0, 0, 2, 1]).all(axis=1))[0]
    np.testing.assert_array_equal(shapes[k], [8, 26])
    np.testing.assert_array_equal(entries[bounds[k]:bounds[k + 1]].reshape(8, 26),
                                  hs.block(1, 2, (0, 0, 0)))
    # without our atom-order hint the folder reads in POSCAR order, same physics
    del info["ase_deeph"]
    (d / "info.json").write_text(json.dumps(info))
    plain = deeph.read(d)
    assert plain.atoms.get_chemical_symbols() == ["C", "C", "Si"]
    kpts = np.random.default_rng(1).random((2, 3))
    np.testing.assert_allclose(eigenvalues(plain, kpts), eigenvalues(hs, kpts), atol=1e-9)


@pytest.mark.parametrize("layout", ["legacy", "new"])
def test_pred_and_density_matrix_files(tmp_path, layout):
    hs = random_hs("none", seed=14)
    pred = hs.replace(h=hs.h * 1.5)
    deeph.write(hs, tmp_path / "d", layout=layout)
    deeph.write(pred, tmp_path / "d", layout=layout, which="pred")
    dm_name = "density_matrixs.h5" if layout == "legacy" else "density_matrix.h5"
    h5py.File(tmp_path / "d" / dm_name, "w").close()  # an (empty) DM file must not disturb
    assert_same(hs, deeph.read(tmp_path / "d"))
    assert_same(pred, deeph.read(tmp_path / "d", which="pred"))
    with pytest.raises(FormatError):
        deeph.read(tmp_path / "d", which="dm")  # the empty DM file has no blocks


def test_hand_built_legacy_folder(tmp_path):
    """A folder written with numpy/h5py only: one O (s, p) atom and its +x image."""
    d = tmp_path / "o"
    d.mkdir()
    np.savetxt(d / "element.dat", [8], fmt="%d")
    np.savetxt(d / "lat.dat", (4.0 * np.eye(3)).T)
    np.savetxt(d / "site_positions.dat", [[0.5], [0.5], [0.5]])
    (d / "orbital_types.dat").write_text("0 1\n")
    (d / "info.json").write_text(json.dumps({"isspinful": False, "fermi_level": -3.0}))
    onsite = np.diag([-20.0, -8.0, -7.0, -6.0])  # s, px, py, pz (OpenMX order)
    hop = np.arange(16.0).reshape(4, 4)
    with h5py.File(d / "hamiltonians.h5", "w") as f:
        f["[0, 0, 0, 1, 1]"] = onsite
        f["[1, 0, 0, 1, 1]"] = hop
        f["[-1, 0, 0, 1, 1]"] = hop.T
    with h5py.File(d / "overlaps.h5", "w") as f:
        f["[0, 0, 0, 1, 1]"] = np.eye(4)
    hs = deeph.read(d)
    assert hs.fermi_level == -3.0 and hs.basis == {"O": (0, 1)}
    np.testing.assert_array_equal(np.diag(hs.block(0, 0)), [-20.0, -7.0, -6.0, -8.0])
    perm = [0, 2, 3, 1]  # internal (s, y, z, x) from OpenMX (s, x, y, z)
    np.testing.assert_array_equal(hs.block(0, 0, (1, 0, 0)), hop[np.ix_(perm, perm)])
    np.testing.assert_array_equal(hs.block(0, 0, (1, 0, 0), "s"), 0.0)  # absent in S file


# --------------------------------------------------------------- cross-format chain
@pytest.mark.parametrize("spin", ["none", "spinor"])
def test_chain_legacy_new_openmx(tmp_path, spin):
    hs = random_hs(spin, seed=15)
    deeph.write(hs, tmp_path / "legacy", layout="legacy")
    step = deeph.read(tmp_path / "legacy")
    deeph.write(step, tmp_path / "new", layout="new")
    step = deeph.read(tmp_path / "new")
    openmx.write(step, tmp_path / "x.scfout")
    final = openmx.read(tmp_path / "x.scfout")
    kpts = np.random.default_rng(2).random((3, 3))
    ref = eigenvalues(hs, kpts)
    assert np.abs(eigenvalues(final, kpts) - ref).max() < 1e-6
    np.testing.assert_allclose(final.fermi_level, hs.fermi_level, rtol=1e-14)
    assert Ha > 27  # eV per Hartree: the chain crossed a unit boundary


# ----------------------------------------------------------------------------- bad input
def _corrupt(d, layout):
    """Yield (description, mutation) pairs applied to a fresh copy of a good folder."""
    if layout == "legacy":
        yield "missing lat", lambda: (d / "lat.dat").unlink()
        yield "bad lines", lambda: (d / "orbital_types.dat").write_text("0 0 1 1 2\n0 1\n")
        yield "orbital count", lambda: (d / "orbital_types.dat").write_text(
            "0 0 1 1 2\n0 1 1\n0 0 1 1 2\n")
        yield "malformed key", lambda: _add_key(d / "hamiltonians.h5", "[0, 0, 0, 1]")
        yield "atom range", lambda: _add_key(d / "hamiltonians.h5", "[0, 0, 0, 1, 9]")
        yield "bad json", lambda: (d / "info.json").write_text("{nope")
        yield "not hdf5", lambda: (d / "overlaps.h5").write_bytes(b"garbage")
    else:
        yield "missing info", lambda: (d / "info.json").unlink()
        yield "bad poscar", lambda: (d / "POSCAR").write_text("junk\n")
        yield "orbital map", lambda: _edit_info(d, "elements_orbital_map", {"C": [0], "Si": [0]})
        yield "boundaries", lambda: _edit_h5(d / "overlap.h5", "chunk_boundaries")
        yield "missing pairs", lambda: _drop_h5(d / "hamiltonian.h5", "atom_pairs")


def _add_key(path, key):
    with h5py.File(path, "a") as f:
        f[key] = np.zeros((13, 13))


def _edit_info(d, key, value):
    info = json.loads((d / "info.json").read_text())
    info[key] = value
    info.pop("orbits_quantity")
    (d / "info.json").write_text(json.dumps(info))


def _edit_h5(path, name):
    with h5py.File(path, "a") as f:
        data = f[name][()]
        data[1] += 1
        del f[name]
        f[name] = data


def _drop_h5(path, name):
    with h5py.File(path, "a") as f:
        del f[name]


@pytest.mark.parametrize("layout", ["legacy", "new"])
def test_bad_folders_raise_format_error(tmp_path, layout):
    hs = random_hs("none", seed=16)
    with pytest.raises(FormatError):
        deeph.read(tmp_path / "nothing")
    n_cases = len(list(_corrupt(tmp_path, layout)))
    for n in range(n_cases):
        d = tmp_path / f"case{n}"
        deeph.write(hs, d, layout=layout)
        what, mutate = list(_corrupt(d, layout))[n]
        mutate()
        with pytest.raises(FormatError):
            deeph.read(d, layout=layout)
            pytest.fail(f"accepted a folder with: {what}")


def test_failed_write_leaves_nothing(tmp_path):
    hs = random_hs("none", seed=17)
    bad = hs.replace(basis={"C": (0, 0, 1, 1, 2), "Si": (0, 4)},
                     h=None, s=None)  # l = 4 has no OpenMX (legacy) order
    bad = bad.replace(s=np.zeros(bad.n_values))
    with pytest.raises(FormatError, match="l <= 3"):
        deeph.write(bad, tmp_path / "out", layout="legacy")
    assert list(tmp_path.iterdir()) == []
