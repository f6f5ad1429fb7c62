"""HSData container and its HDF5 storage: round trips, damage, atomic writes, helpers."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene, molecule

import interfaces
from ase_deeph.inference.toy import toy_hs
from interfaces import h5io
from interfaces.errors import FormatError
from interfaces.hsdata import HSData, irreps_string, parse_irreps


def _si(spin: str = "none") -> HSData:
    atoms = bulk("Si", "diamond", 5.43)
    atoms.rattle(0.05, seed=1)
    return toy_hs(atoms, spin=spin).replace(fermi_level=-3.25, source_version="1.2.3")


def _cluster(spin: str = "none") -> HSData:
    return toy_hs(molecule("CH3CH2OH"), spin=spin)


def assert_identical(a: HSData, b: HSData) -> None:
    """Bit-identical fields (NaN == NaN), dtypes included."""
    for name in ("numbers", "positions", "cell", "pbc"):
        x, y = np.asarray(getattr(a.atoms, name)), np.asarray(getattr(b.atoms, name))
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    assert a.basis == b.basis and a.spin == b.spin
    for name in ("edge_index", "cell_shift", "h", "s"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes(), name
    for name in ("fermi_level", "n_electrons"):
        x, y = getattr(a, name), getattr(b, name)
        assert (math.isnan(x) and math.isnan(y)) or x == y, name
    assert (a.source_code, a.source_version, a.metadata) == (b.source_code, b.source_version,
                                                             b.metadata)


# --------------------------------------------------------------------------- storage
@pytest.mark.parametrize("spin", ["none", "collinear", "spinor"])
def test_save_load_round_trip_is_bit_identical(tmp_path: Path, spin: str) -> None:
    for hs in (_si(spin), _cluster(spin), _si(spin).replace(h=None), _si(spin).replace(s=None)):
        path = tmp_path / f"{spin}.h5"
        hs.save(path, overwrite=True)
        assert_identical(hs, HSData.load(path))


def test_many_structures_and_append(tmp_path: Path) -> None:
    path = tmp_path / "set.h5"
    items = [_si("none"), _cluster("spinor"), _si("collinear")]
    assert h5io.save_many([(None, items[0]), ("ethanol", items[1])], path) == ["000000", "ethanol"]
    before = {n: h5io.load(path, n) for n in h5io.names(path)}
    assert items[2].save(path, append=True) == "000001"
    assert h5io.names(path) == ["000000", "000001", "ethanol"]
    assert_identical(h5io.load(path, "000000"), items[0])
    assert_identical(h5io.load(path, "ethanol"), items[1])
    assert_identical(h5io.load(path, 1), items[2])
    for name, hs in h5io.iter_load(path):
        if name in before:
            assert_identical(hs, before[name])
    with pytest.raises(FormatError, match="already exists"):
        items[0].save(path, name="ethanol", append=True)
    assert_identical(h5io.load(path, "ethanol"), items[1])
    with pytest.raises(FormatError, match="pass name="):
        h5io.load(path)
    with pytest.raises(FormatError, match="no structure named"):
        h5io.load(path, "nope")
    with pytest.raises(FileExistsError, match=r"set.h5 already exists and holds a dataset of "
                                              r"3 structure"):
        items[0].save(path)  # never replaced by accident (issue 17)
    assert h5io.names(path) == ["000000", "000001", "ethanol"]
    items[0].save(path, overwrite=True)
    assert h5io.names(path) == ["000000"]


def test_missing_truncated_and_foreign_files_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "data.h5"
    _si().save(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.h5"
    for size in (len(raw) // 2, len(raw) - 100, 64, 0):
        cut.write_bytes(raw[:size])
        with pytest.raises(FormatError, match="cut.h5"):
            HSData.load(cut)
    with pytest.raises(FormatError, match="absent.h5"):
        HSData.load(tmp_path / "absent.h5")
    import h5py

    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(FormatError, match="foreign.h5.*not an ase-deeph"):
        HSData.load(tmp_path / "foreign.h5")


def test_corrupted_superblock_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    _si().save(path)
    raw = bytearray(path.read_bytes())
    raw[0:16] = bytes(16)
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="bad.h5"):
        HSData.load(path)


def test_any_corruption_is_detected_or_harmless(tmp_path: Path) -> None:
    """Flip 4 bytes at many places: each load either raises FormatError or reads the same data."""
    path = tmp_path / "ok.h5"
    hs = _si()
    hs.save(path)
    raw = path.read_bytes()
    bad = tmp_path / "flip.h5"
    for pos in range(0, len(raw) - 4, max(len(raw) // 150, 1)):
        data = bytearray(raw)
        data[pos:pos + 4] = bytes(b ^ 0xFF for b in data[pos:pos + 4])
        bad.write_bytes(bytes(data))
        try:
            got = HSData.load(bad)
        except FormatError as exc:
            assert "flip.h5" in str(exc)
            continue
        assert_identical(got, hs)


def _crashing_write_group():
    def write_group(grp, hs):
        grp["numbers"] = hs.atoms.numbers
        grp["positions"] = hs.atoms.positions
        raise RuntimeError("simulated crash in the middle of a write")
    return write_group


def test_failed_write_leaves_previous_file_intact(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "keep.h5"
    _si().save(path)
    original = path.read_bytes()
    monkeypatch.setattr(h5io, "_write_group", _crashing_write_group())
    for append in (True, False):
        with pytest.raises(RuntimeError, match="simulated crash"):
            _cluster().save(path, append=append, overwrite=True)
        assert path.read_bytes() == original
        assert sorted(os.listdir(tmp_path)) == ["keep.h5"]  # no temporary file left behind


def test_killed_write_leaves_previous_file_intact(tmp_path: Path) -> None:
    """A process killed (SIGKILL) halfway through an append does not touch the target."""
    path = tmp_path / "keep.h5"
    _si().save(path)
    original = path.read_bytes()
    script = textwrap.dedent(f"""
        import os, signal
        from ase.build import molecule
        from ase_deeph.inference.toy import toy_hs
        from interfaces import h5io
        def dying(grp, hs):
            grp["numbers"] = hs.atoms.numbers
            grp.file.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        h5io._write_group = dying
        toy_hs(molecule("H2O")).save({str(path)!r}, append=True)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert path.read_bytes() == original
    assert h5io.names(path) == ["000000"]
    assert_identical(HSData.load(path), _si())


# -------------------------------------------------------------------------- helpers
def test_find_edges_and_block_lookup() -> None:
    hs = _si()
    i, j = hs.edge_index
    e = hs.find_edges(i, j, hs.cell_shift)
    np.testing.assert_array_equal(e, np.arange(hs.n_edges))
    assert hs.find_edges([0], [1], [[7, 7, 7]])[0] == -1
    rev = hs.reverse_edges
    np.testing.assert_array_equal(i[rev], j)
    np.testing.assert_array_equal(hs.cell_shift[rev], -hs.cell_shift)
    for k in (0, 5, hs.n_edges - 1):
        n_i, n_j = hs.norbs[i[k]], hs.norbs[j[k]]
        want = hs.s[hs.block_ptr[k]:hs.block_ptr[k + 1]].reshape(n_i, n_j)
        np.testing.assert_array_equal(hs.block(i[k], j[k], hs.cell_shift[k], "s"), want)
        np.testing.assert_array_equal(hs.block(j[k], i[k], -hs.cell_shift[k]), hs.block(
            i[k], j[k], hs.cell_shift[k]).T)
    with pytest.raises(KeyError, match="no block"):
        hs.block(0, 1, (9, 9, 9))
    sp = _si("spinor")
    big = sp.block(0, 1, sp.cell_shift[sp.find_edges([0], [1], [[0, 0, 0]])[0]])
    assert big.shape == (18, 18) and big.dtype == np.complex128


def test_restrict_keeps_exactly_the_short_bonds() -> None:
    hs = _si()
    lengths = np.linalg.norm(hs.edge_vectors(), axis=1)
    for r in (0.5, 2.5, 3.9):
        sub = hs.restrict(r)
        assert sub.n_edges == int(np.sum(lengths < r))
        assert np.all(np.linalg.norm(sub.edge_vectors(), axis=1) < r)
        for k in range(0, sub.n_edges, 3):
            a, b = sub.edge_index[:, k]
            np.testing.assert_array_equal(sub.block(a, b, sub.cell_shift[k]),
                                          hs.block(a, b, sub.cell_shift[k]))
        assert sub.hermiticity_error() == 0.0
    assert_identical(hs.restrict(100.0), hs)


def test_with_spin_round_trips() -> None:
    hs = _si()
    assert_identical(hs.with_spin("collinear").with_spin("none"), hs)
    sp = hs.with_spin("spinor")
    assert sp.h.shape == (1, 4 * hs.n_values)
    assert_identical(sp.with_spin("none"), hs)
    col = _si("collinear")
    assert_identical(col.with_spin("spinor").with_spin("collinear"), col)
    with pytest.raises(ValueError, match="different channels"):
        col.with_spin("none")
    with pytest.raises(ValueError, match="not collinear"):
        _si("spinor").with_spin("collinear")  # spin-orbit coupling mixes spins


def test_symmetrize_enforces_hermiticity() -> None:
    for spin in ("none", "spinor"):
        hs = _si(spin)
        assert_identical(hs.symmetrize(), hs)
        rng = np.random.default_rng(0)
        noise = rng.normal(size=hs.h.shape) * 1e-3
        noisy = hs.replace(h=hs.h + (noise * (1 + 1j) if spin == "spinor" else noise))
        assert noisy.hermiticity_error() > 1e-4
        fixed = noisy.symmetrize()
        assert fixed.hermiticity_error() == 0.0
        assert np.abs(fixed.h - hs.h).max() <= np.abs(noise).max() * 1.5


def test_hermiticity_error_is_inf_without_partners() -> None:
    hs = _si()
    lonely = hs.select_edges(~((hs.edge_index[0] == 0) & (hs.edge_index[1] == 1)))
    assert lonely.hermiticity_error() == math.inf
    with pytest.raises(ValueError, match="partner"):
        lonely.symmetrize()


def test_irreps_strings() -> None:
    for shells, text in [((0,), "1x0e"), ((0, 0, 1, 1, 2), "2x0e+2x1o+1x2e"),
                         ((0, 1, 2, 3), "1x0e+1x1o+1x2e+1x3o")]:
        assert irreps_string(shells) == text
        assert parse_irreps(text) == shells
    assert parse_irreps("2x0e + 1o") == (0, 0, 1)
    with pytest.raises(ValueError, match="parity"):
        parse_irreps("1x1e")
    hs = _si()
    assert hs.irreps() == {"Si": "1x0e+1x1o+1x2e"}
    assert interfaces.irreps_string(hs.basis["Si"]) == "1x0e+1x1o+1x2e"


def test_constructor_validates_shapes() -> None:
    atoms = Atoms("C2", positions=[[0, 0, 0], [0, 0, 1.4]])
    good = dict(atoms=atoms, basis={"C": (0, 1)}, edge_index=[[0, 1], [1, 0]],
                cell_shift=np.zeros((2, 3), int))
    HSData(**good, s=np.zeros(32))
    with pytest.raises(ValueError, match="s has"):
        HSData(**good, s=np.zeros(31))
    with pytest.raises(ValueError, match="basis lacks"):
        HSData(**{**good, "basis": {"H": (0,)}})
    with pytest.raises(ValueError, match="outside"):
        HSData(**{**good, "edge_index": [[0, 2], [1, 0]]})
    with pytest.raises(ValueError, match="spinor"):
        HSData(**good, h=np.zeros((1, 32), complex))
    with pytest.raises(ValueError, match="duplicate"):
        HSData(**{**good, "edge_index": [[0, 0], [1, 1]]}).find_edges([0], [1], [[0, 0, 0]])


def test_graphene_summary_and_sizes() -> None:
    gr = graphene(vacuum=6.0)
    hs = toy_hs(gr)
    assert hs.n_orbitals == 8 and hs.n_atoms == 2
    assert hs.block_ptr[-1] == hs.n_values == 16 * hs.n_edges
    assert "C2" in hs.summary()
