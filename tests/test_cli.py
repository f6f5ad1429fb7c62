"""Smoke tests of every ``ase-deeph`` verb on tiny inputs (real runs, checked outputs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

import interfaces
from ase_deeph import solvers
from ase_deeph.cli import main


@pytest.fixture
def si_run(data_dir, tmp_path):
    src = tmp_path / "runs" / "si"
    shutil.copytree(data_dir / "siesta" / "si_pdos_k", src)
    return src


def test_help_lists_every_verb() -> None:
    out = subprocess.run([sys.executable, "-m", "ase_deeph", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for verb in ("convert", "generate", "train", "predict", "bands", "dos", "demo", "epc"):
        assert verb in out


def test_convert_tree_into_one_dataset_reports_failures(si_run, tmp_path, capsys) -> None:
    bad = si_run.parent / "broken"
    bad.mkdir()
    (bad / "broken.HSX").write_bytes(b"\x04\x00\x00\x00garbage")
    dst = tmp_path / "all.h5"
    assert main(["convert", str(si_run.parent), str(dst), "-q"]) == 0
    err = capsys.readouterr()
    assert "FAILED" in err.err and "broken" in err.err
    names = interfaces.names(dst)
    assert len(names) == 1
    hs = interfaces.load(dst, names[0])
    ref = interfaces.read(si_run)
    k = np.random.default_rng(0).random((3, 3))
    np.testing.assert_allclose(solvers.eigenvalues(hs, k), solvers.eigenvalues(ref, k),
                               atol=1e-10)


def test_convert_to_deeph_folder(si_run, tmp_path) -> None:
    dst = tmp_path / "si_deeph"
    assert main(["convert", str(si_run), str(dst), "--to", "deeph", "-q"]) == 0
    back = interfaces.read(dst)
    ref = interfaces.read(si_run)
    k = np.array([[0.1, 0.2, 0.3]])
    np.testing.assert_allclose(solvers.eigenvalues(back, k), solvers.eigenvalues(ref, k),
                               atol=1e-9)


def test_bands_and_dos_of_a_dft_run(si_run, tmp_path, capsys) -> None:
    png = tmp_path / "bands.png"
    assert main(["bands", str(si_run), "-o", str(png), "--path", "GXL", "--npoints", "20"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert png.stat().st_size > 1000 and summary["n_kpoints"] == 20
    # E_F by electron counting lies in the gap of the printed eigenvalues
    eig = interfaces.siesta.read_eig(next(si_run.glob("Si_pdos.EIG*")))
    e = np.sort(eig.eigenvalues.reshape(len(eig.eigenvalues), -1), axis=1)
    assert e[:, 3].max() < summary["fermi_level_eV"] < e[:, 4].min()
    png = tmp_path / "dos.png"
    assert main(["dos", str(si_run), "-o", str(png), "--kmesh", "4", "4", "4"]) == 0
    assert png.stat().st_size > 1000
