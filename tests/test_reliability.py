"""Issue 17: nothing lost, nothing half-written, every bad input named (each test fails
before its fix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk, molecule
from safetensors.torch import load_file, save_file

import interfaces
from ase_deeph.inference.toy import toy_hs
from ase_deeph.model.checkpoint import ModelFileError, load_model, load_state, save_model
from ase_deeph.model.network import HamiltonianNet
from ase_deeph.training.config import ModelConfig, TrainConfig
from ase_deeph.training.trainer import RunExistsError, train
from interfaces import h5io
from interfaces.atomic import atomic_path, clean_stale, is_temporary


def _hs():
    return toy_hs(bulk("C", "diamond", a=3.57), seed=0)


# ----------------------------------------------------------------------- 1, 2: storage
def test_save_refuses_to_replace_a_dataset(tmp_path):
    path = tmp_path / "dataset.h5"
    h5io.save_many([(None, _hs()), (None, _hs()), (None, _hs())], path)
    with pytest.raises(FileExistsError, match="dataset.h5 .*3 structure"):
        interfaces.save(_hs(), path)
    assert len(h5io.names(path)) == 3
    assert interfaces.save(_hs(), path, append=True) == "000003"


def test_killed_write_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    path = tmp_path / "keep.h5"
    _hs().save(path)
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
    left = [p for p in tmp_path.iterdir() if p.name != "keep.h5"]
    assert left and all(is_temporary(p.name) for p in left)  # recognisable
    _hs().save(path, append=True)
    assert sorted(os.listdir(tmp_path)) == ["keep.h5"]
    assert len(h5io.names(path)) == 2


def test_clean_stale_keeps_temporaries_of_running_processes(tmp_path):
    target = tmp_path / "x.h5"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        assert clean_stale(target) == []  # our own live temporary stays
        assert tmp.exists()
    dead = tmp_path / ".x.h5.999999999.0123abcd.tmp"  # no such pid
    dead.write_bytes(b"x")
    assert clean_stale(target) == [dead]


# --------------------------------------------------------------------------- 3: train
def test_train_refuses_an_existing_run_without_resume_or_force(tmp_path):
    data = tmp_path / "d.h5"
    h5io.save_many([(None, toy_hs(molecule("C2H4"), seed=0)) for _ in range(2)], data)
    cfg = TrainConfig(dataset=str(data), out_dir=str(tmp_path / "run"), epochs=1,
                      progress=False, split=(0.5, 0.5, 0.0), device="cpu")
    model = ModelConfig(r_cut=3.3, channels=4, pseudo_channels=2, n_layers=1, radial_hidden=8)
    train(model, cfg)
    n_lines = len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    with pytest.raises(RunExistsError, match="already holds a run"):
        train(model, cfg)
    train(model, cfg, force=True)
    assert len((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()) == n_lines


# ------------------------------------------------------------------ 7: model files
@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    net = HamiltonianNet(ModelConfig(r_cut=3.0, channels=4, pseudo_channels=2, n_layers=1,
                                     radial_hidden=8), {"C": (0, 1)})
    return save_model(net, tmp_path_factory.mktemp("m") / "m.safetensors",
                      {"valence_electrons": {"C": 4}})


def _rewrite(src, dst, meta_text=None, weights=None):
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        header = f.metadata()
    tensors = weights if weights is not None else load_file(str(src))
    save_file(tensors, str(dst), metadata={"ase_deeph": meta_text or header["ase_deeph"]})
    return dst


@pytest.mark.parametrize("mutate, message", [
    (lambda m: "{not json", "not valid JSON"),
    (lambda m: json.dumps({k: v for k, v in m.items() if k != "basis"}), "basis"),
    (lambda m: json.dumps({**m, "model_config": {**m["model_config"], "nope": 1}}),
     "model_config"),
    (lambda m: json.dumps({**m, "valence_electrons": {"C": -4}}), "valence_electrons"),
])
def test_bad_model_metadata_names_the_file(model_file, tmp_path, mutate, message):
    from ase_deeph.model.checkpoint import read_meta

    bad = _rewrite(model_file, tmp_path / "bad.safetensors", mutate(read_meta(model_file)))
    with pytest.raises(ModelFileError, match=message) as err:
        load_model(bad)
    assert "bad.safetensors" in str(err.value)


def test_nan_weights_and_truncated_state_name_the_file(model_file, tmp_path):
    weights = {k: v.clone() for k, v in load_file(str(model_file)).items()}
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first][...] = float("nan")
    bad = _rewrite(model_file, tmp_path / "nan.safetensors", weights=weights)
    with pytest.raises(ModelFileError, match="nan.safetensors.*non-finite"):
        load_model(bad)
    state = tmp_path / "state.pt"
    torch.save({"epoch": 1, "w": torch.zeros(1000)}, state)
    state.write_bytes(state.read_bytes()[:300])
    with pytest.raises(ModelFileError, match="state.pt: unreadable training state"):
        load_state(state)


# ------------------------------------------------------------------ 6, 9: user input
def test_model_without_the_elements_says_so():
    from ase.build import mx2

    from ase_deeph.inference.provider import ModelProvider

    with pytest.raises(ValueError, match=r"elements \['Mo', 'S'\] are not in the model"):
        ModelProvider.from_any("si", device="cpu")(mx2("MoS2"))


def test_bands_of_a_structure_file_without_model_suggests_m(tmp_path):
    from ase.io import write

    from ase_deeph.cli.workflows import bands_file

    write(tmp_path / "graphene.vasp", bulk("Si"), format="vasp")
    with pytest.raises(interfaces.FormatError, match="pass -m MODEL"):
        bands_file(tmp_path / "graphene.vasp", tmp_path / "b.png")


def test_band_plot_without_fermi_level_says_so(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from ase_deeph import solvers
    from ase_deeph.solvers.bands import UNKNOWN_EF_LABEL

    hs = _hs().replace(n_electrons=float("nan"), fermi_level=float("nan"))
    bs = solvers.band_structure(hs, "GX", 5)
    ax = Figure().add_subplot(1, 1, 1)
    solvers.plot_bands(bs, tmp_path / "b.png", ax=ax, fermi_known=False)
    assert ax.get_ylabel() == UNKNOWN_EF_LABEL
    lo, hi = ax.get_ylim()
    assert lo <= np.min(bs.energies) and hi >= np.max(bs.energies)


@pytest.mark.parametrize("code", ["siesta", "openmx", "deeph"])
def test_unknown_electron_count_stays_unknown_through_writers(tmp_path, code):
    """Issue 17 item 6: an unknown count was written as 0 (E_F at the band bottom)."""
    src = Path(__file__).parent / "data" / "siesta" / "si_pdos_k"
    hs = interfaces.read(src).replace(n_electrons=float("nan"))
    written = interfaces.write(hs, tmp_path / "out", code)
    back = interfaces.read(written)
    assert np.isnan(back.n_electrons)
