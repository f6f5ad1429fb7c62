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
from ase_deeph.cli.app import main


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


def test_convert_merges_datasets(si_run, tmp_path) -> None:
    """A folder of HSData datasets converts into one dataset holding every structure."""
    ref = interfaces.read(si_run)
    folder = tmp_path / "sets"
    folder.mkdir()
    interfaces.save_many([("a", ref), ("b", ref.replace(h=2.0 * ref.h))], folder / "one.h5")
    interfaces.save(ref.replace(h=-ref.h), folder / "two.h5", name="c")
    (folder / "two.h5.parts").mkdir()  # the generator's shards of two.h5: not read again
    interfaces.save(ref.replace(h=-ref.h), folder / "two.h5.parts" / "000000.h5", name="c")
    dst = tmp_path / "merged.h5"
    assert main(["convert", str(folder), str(dst), "-q"]) == 0
    assert interfaces.names(dst) == ["one.h5__a", "one.h5__b", "two.h5__c"]
    k = np.array([[0.1, 0.2, 0.3]])
    for name, scale in (("one.h5__b", 2.0), ("two.h5__c", -1.0)):
        np.testing.assert_allclose(solvers.eigenvalues(interfaces.load(dst, name), k),
                                   solvers.eigenvalues(ref.replace(h=scale * ref.h), k),
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
    eig = interfaces.siesta.reader.read_eig(next(si_run.glob("Si_pdos.EIG*")))
    e = np.sort(eig.eigenvalues.reshape(len(eig.eigenvalues), -1), axis=1)
    assert e[:, 3].max() < summary["fermi_level_eV"] < e[:, 4].min()
    png = tmp_path / "dos.png"
    assert main(["dos", str(si_run), "-o", str(png), "--kmesh", "4", "4", "4"]) == 0
    assert png.stat().st_size > 1000


def test_generate_train_predict_verbs(tmp_path, capsys) -> None:
    """generate (PySCF, two tiny molecules) -> train (a few epochs) -> predict -> bands."""
    pytest.importorskip("torch")
    gen = tmp_path / "gen.toml"
    gen.write_text('n_structures = 2\nseed = 1\n[system]\nprototype = "molecule"\n'
                   'molecules = ["H2"]\n[perturb]\nrattle = [0.0, 0.05]\n'
                   '[dft]\nbasis = "gth-szv"\nxc = "pbe"\n')
    data = tmp_path / "h2.h5"
    assert main(["generate", str(gen), "-o", str(data), "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["n_done"] == 2
    cfg = tmp_path / "train.toml"
    cfg.write_text(f'[model]\nr_cut = 3.0\nchannels = 4\npseudo_channels = 2\nn_layers = 1\n'
                   f'[train]\ndataset = "{data}"\nout_dir = "{tmp_path / "run"}"\nepochs = 2\n'
                   f'split = [0.5, 0.5, 0.0]\nloss = "mse"\n')
    assert main(["train", str(cfg)]) == 0
    model = tmp_path / "run" / "model.safetensors"
    assert model.exists()
    from ase.build import molecule

    xyz = tmp_path / "h2.xyz"
    molecule("H2").write(xyz)
    out = tmp_path / "pred.h5"
    assert main(["predict", str(xyz), "-m", str(model), "-o", str(out)]) == 0
    pred = interfaces.load(out)
    assert pred.source_code == "model" and pred.s is not None and pred.hermiticity_error() < 1e-12
    capsys.readouterr()
    assert main(["bands", str(out), "-o", str(tmp_path / "b.png")]) == 2
    assert "periodic" in capsys.readouterr().err
    assert main(["dos", str(out), "-o", str(tmp_path / "d.png")]) == 0
    assert (tmp_path / "d.png").stat().st_size > 1000
