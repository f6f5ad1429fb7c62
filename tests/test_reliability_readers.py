"""Reader/writer reliability (issue 17, items 4, 5, 8, 13 and hidden files).

Damaged gzip streams, truncated basis files and NaN coordinates raise FormatError naming
the file; a tree conversion reports such a run and converts the others; single-file
writers add the extension that detection needs; folders get ordinary permissions; hidden
files are never taken for runs.
"""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import interfaces
from ase_deeph.cli.app import main
from ase_deeph.cli.convert import convert, find_runs
from interfaces import FormatError, abacus, siesta
from interfaces.nao.basis_files import read_basis
from interfaces.nao.overlap import bases_from_metadata, embed_basis_files
from tests._converters_utils import assert_same, eigenvalues, random_hs

DATA = Path(__file__).parent / "data"
H2O = DATA / "siesta" / "h2o_gamma"
NAO = DATA / "nao"
SI_ION_XML = NAO / "siesta_si_pdos_k" / "Si.ion.xml.gz"
SI_ION = NAO / "siesta_si_pdos_k" / "Si.ion.gz"
SI_ORB = NAO / "abacus_si2_dzp_oldcsr" / "Si_gga_8au_60Ry_2s2p1d.orb.gz"
K = np.array([[0.0, 0.0, 0.0], [0.1, 0.2, 0.3], [0.5, 0.0, 0.25]])


def _damage_gzip(path: Path) -> None:
    """Flip a run of bytes inside the deflate stream (a zlib.error when read)."""
    data = bytearray(path.read_bytes())
    data[200:400] = bytes(b ^ 0xFF for b in data[200:400])
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------- item 4: damaged gzip
@pytest.fixture
def tree_with_bad_run(tmp_path) -> Path:
    root = tmp_path / "tree"
    for name in ("a", "b", "c"):
        shutil.copytree(H2O, root / name)
    _damage_gzip(root / "b" / "h2o_dipole.HSX.gz")
    return root


@pytest.mark.parametrize("to_code", ["hsdata", "deeph"])
def test_tree_with_a_damaged_gzip_converts_the_other_runs(tree_with_bad_run, tmp_path, to_code):
    dst = tmp_path / ("all.h5" if to_code == "hsdata" else "out")
    report = convert(tree_with_bad_run, dst, to_code=to_code, progress=False)
    assert sorted(Path(run).name for run, _ in report.converted) == ["a", "c"]
    assert len(report.failed) == 1
    run, reason = report.failed[0]
    assert Path(run).name == "b"
    assert reason.startswith("FormatError") and "h2o_dipole.HSX.gz" in reason
    ref = interfaces.read(H2O)
    back = (interfaces.load(dst, "a") if to_code == "hsdata" else interfaces.read(dst / "a"))
    np.testing.assert_allclose(eigenvalues(back, K[:1]), eigenvalues(ref, K[:1]), atol=1e-9)


def test_cli_reports_the_damaged_file(tree_with_bad_run, tmp_path, capsys):
    assert main(["convert", str(tree_with_bad_run), str(tmp_path / "all.h5"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "FAILED" in err and "h2o_dipole.HSX.gz" in err
    assert sorted(interfaces.names(tmp_path / "all.h5")) == ["a", "c"]


def test_truncated_gzip_of_every_text_reader_is_a_format_error(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(H2O, run)
    hsx = run / "h2o_dipole.HSX.gz"
    hsx.write_bytes(hsx.read_bytes()[: len(hsx.read_bytes()) // 2])  # EOFError inside gzip
    with pytest.raises(FormatError, match="h2o_dipole.HSX.gz"):
        interfaces.read(run)
    eig = tmp_path / "x.EIG.gz"
    eig.write_bytes(gzip.compress((H2O / "h2o_dipole.EIG").read_bytes())[:40])
    with pytest.raises(FormatError, match="x.EIG.gz"):
        siesta.read_eig(eig)


@pytest.mark.parametrize("src", [SI_ION_XML, SI_ION, SI_ORB], ids=["ion.xml", "ion", "orb"])
@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_gzip_basis_file_is_a_format_error(tmp_path, src, damage):
    bad = tmp_path / src.name
    if damage == "truncate":
        bad.write_bytes(src.read_bytes()[:5000])
    else:
        shutil.copy(src, bad)
        _damage_gzip(bad)
    with pytest.raises(FormatError, match=bad.name):
        read_basis(bad)


def test_bad_numbers_and_embedded_content_are_format_errors(tmp_path):
    text = gzip.decompress(SI_ION_XML.read_bytes()).decode()
    bad = tmp_path / "Si.ion.xml"
    bad.write_text(text.replace("<npts>", "<npts> x", 1))  # int(" x 500") -> ValueError
    with pytest.raises(FormatError, match="Si.ion.xml"):
        read_basis(bad)
    meta = embed_basis_files({"Si": SI_ION_XML})
    blob = bytearray(base64.b64decode(meta["files"]["Si"]["content_gz_b64"]))
    blob[200:400] = bytes(b ^ 0xFF for b in blob[200:400])
    meta["files"]["Si"]["content_gz_b64"] = base64.b64encode(bytes(blob)).decode()
    with pytest.raises(FormatError, match="Si.ion.xml"):
        bases_from_metadata(meta)


# ------------------------------------------------------------ item 5: truncated basis files
def _cut_before(text: str, marker: str, occurrence: int) -> str:
    pos = -1
    for _ in range(occurrence):
        pos = text.index(marker, pos + 1)
    return text[:pos]


@pytest.mark.parametrize("src, marker, occurrence", [
    (SI_ION_XML, "<orbital ", 3),  # the d shell is the third <orbital>
    (SI_ION, "#orbital l, n, z", 3),
    (SI_ORB, "Type", 5),  # 2s 2p 1d: the fifth block is the d shell
], ids=["ion.xml", "ion", "orb"])
def test_truncated_basis_file_losing_the_d_shell(tmp_path, src, marker, occurrence):
    text = gzip.decompress(src.read_bytes()).decode()
    assert 2 in read_basis(src).shells
    cut = _cut_before(text, marker, occurrence)
    if marker == "#orbital l, n, z":
        cut = cut[:cut.rindex("\n") + 1]  # keep whole lines
    name = src.name[:-3]
    (tmp_path / name).write_text(cut)
    with pytest.raises(FormatError, match=f"{name}.*declares") as err:
        read_basis(tmp_path / name)
    assert "truncated" in str(err.value)


def test_truncated_ion_file_losing_projectors(tmp_path):
    text = gzip.decompress(SI_ION.read_bytes()).decode()
    (tmp_path / "Si.ion").write_text(_cut_before(text, "# Vna", 1).rsplit("#kb l", 1)[0])
    with pytest.raises(FormatError, match="KB projectors"):
        read_basis(tmp_path / "Si.ion")


# --------------------------------------------------------------- item 5: NaN coordinates
def _nan_atoms(hs, where: str):
    atoms = hs.atoms.copy()
    if where == "position":
        pos = atoms.positions
        pos[1, 2] = np.nan
        atoms.positions = pos
    else:
        cell = np.array(atoms.cell)
        cell[0, 0] = np.inf
        atoms.cell = cell
    return hs.replace(atoms=atoms)


@pytest.mark.parametrize("where", ["position", "cell"])
@pytest.mark.parametrize("code, name", [("siesta", "x.HSX"), ("openmx", "x.scfout")])
def test_binary_readers_reject_nan_structures(tmp_path, code, name, where):
    path = tmp_path / name
    with np.errstate(invalid="ignore"):  # the writer's inf * 0 in the OpenMX cell records
        interfaces.write(_nan_atoms(random_hs(), where), path, code)
    with pytest.raises(FormatError, match=name) as err:
        interfaces.read(path)
    assert "NaN or infinite" in str(err.value)


@pytest.mark.parametrize("code, file", [
    ("deeph", "POSCAR"), ("deeph-legacy", "site_positions.dat"), ("deeptb", "positions.dat"),
    ("abacus", "STRU"),
])
def test_text_readers_reject_nan_positions(tmp_path, code, file):
    folder = tmp_path / "run"
    interfaces.write(random_hs(), folder, code)
    lines = (folder / file).read_text().splitlines()
    if file == "STRU":  # Direct, "", species, magnetism, count, first position
        k = lines.index("Direct") + 5
    else:
        k = 8 if file == "POSCAR" else 0  # POSCAR: comment, scale, 3 cell, species, counts
    tok = lines[k].split()
    tok[1] = "nan"
    lines[k] = " ".join(tok)
    (folder / file).write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError, match=file):
        interfaces.read(folder, code)


# ----------------------------------------------------- item 8: extensions of written files
@pytest.mark.parametrize("code, ext", [("siesta", ".HSX"), ("openmx", ".scfout")])
def test_single_file_writers_add_the_extension(tmp_path, code, ext):
    hs = random_hs()
    written = interfaces.write(hs, tmp_path / "out", code)
    assert written == tmp_path / f"out{ext}" and written.is_file()
    assert not (tmp_path / "out").exists()
    assert interfaces.detect(written) == code
    back = interfaces.read(written)
    assert_same(hs, back, atol=1e-12, rtol=1e-12)
    np.testing.assert_allclose(eigenvalues(back, K), eigenvalues(hs, K), atol=1e-10)
    assert interfaces.write(hs, written, code) == written  # an extension already there stays
    assert_same(hs, interfaces.read(tmp_path / "out", code), atol=1e-12, rtol=1e-12)


def test_hsx_gz_name_keeps_gzip(tmp_path):
    written = interfaces.write(random_hs(), tmp_path / "out.gz", "siesta")
    assert written.name == "out.HSX.gz"
    assert gzip.decompress(written.read_bytes())[:4] == b"\x04\x00\x00\x00"
    assert_same(random_hs(), interfaces.read(written), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("code, ext", [("siesta", ".HSX"), ("openmx", ".scfout")])
def test_cli_convert_to_a_bare_name_reads_back(tmp_path, code, ext):
    src = tmp_path / "src"
    shutil.copytree(H2O, src)
    report = convert(src, tmp_path / "out", to_code=code, progress=False)
    assert report.converted == ((str(src), str(tmp_path / f"out{ext}")),)
    assert main(["convert", str(src), str(tmp_path / "cli"), "--to", code, "-q"]) == 0
    ref = interfaces.read(src)
    for path in (tmp_path / f"out{ext}", tmp_path / f"cli{ext}"):
        back = interfaces.read(path)
        np.testing.assert_allclose(eigenvalues(back, K[:1]), eigenvalues(ref, K[:1]),
                                   atol=1e-9)


# ------------------------------------------------------------ item 13: folder permissions
@pytest.mark.parametrize("code", ["deeph", "deeph-legacy", "deeptb"])
def test_folder_writers_use_ordinary_permissions(tmp_path, code):
    old = os.umask(0o022)
    try:
        out = interfaces.write(random_hs(), tmp_path / "folder", code)
    finally:
        os.umask(old)
    assert out == tmp_path / "folder"
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert_same(random_hs(), interfaces.read(out), atol=1e-12, rtol=1e-12)


# -------------------------------------------------------------------------- hidden files
def test_detect_never_picks_hidden_files(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "._si.HSX").write_bytes(b"AppleDouble")
    (folder / ".x.h5.123.tmp").write_bytes(b"partial")
    (folder / ".STRU").write_text("hidden")
    with pytest.raises(FormatError):
        interfaces.detect(folder)
    with pytest.raises(FormatError):
        interfaces.detect(folder / "._si.HSX")
    hsx = interfaces.write(random_hs(), folder / "good", "siesta")
    assert interfaces.detect(folder) == "siesta"
    assert_same(random_hs(), interfaces.read(folder), atol=1e-12, rtol=1e-12)
    assert interfaces.read(hsx).n_edges == random_hs().n_edges


def test_tree_walk_skips_hidden_files_and_folders(tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(H2O, root / "a")
    shutil.copytree(H2O, root / ".trash" / "old")
    (root / "a" / "sub").mkdir()
    (root / "a" / "sub" / "._junk.HSX").write_bytes(b"AppleDouble")
    interfaces.write(random_hs(), root / "b" / "x", "siesta")
    (root / "b" / ".x.HSX").write_bytes(b"partial")
    assert find_runs(root) == [root / "a", root / "b"]
    assert find_runs(root, "siesta") == [root / "a", root / "b"]
    report = convert(root, tmp_path / "all.h5", progress=False)
    assert not report.failed and sorted(interfaces.names(tmp_path / "all.h5")) == ["a", "b"]


def test_abacus_reader_reports_bad_gzip_csr(tmp_path):
    hs = random_hs()
    files = abacus.write(hs, tmp_path / "run")
    csr = next(p for p in files if p.name.startswith("data-SR"))
    gz = csr.with_name(csr.name + ".gz")
    gz.write_bytes(gzip.compress(csr.read_bytes())[:-12])
    csr.unlink()
    with pytest.raises(FormatError, match=gz.name):
        abacus.read(tmp_path / "run")
