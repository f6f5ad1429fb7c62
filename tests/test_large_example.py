"""examples/05 end to end on a small twisted bilayer: sparse E_F and states equal dense."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_large_twisted_bilayer_example_small_cell(tmp_path):
    out = tmp_path / "tbg"
    env = os.environ | {"OMP_NUM_THREADS": "2"}
    subprocess.run([sys.executable, str(ROOT / "examples" / "05_large_twisted_bilayer.py"),
                    "--m", "2", "--n", "3", "-o", str(out), "--dense-check"],
                   check=True, env=env, capture_output=True, text=True)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_atoms"] == 76 and summary["labels"] == ["M", "K"]
    check = summary["dense_check"]
    assert abs(check["fermi_diff_meV"]) < 0.1 and check["states_max_diff_meV"] < 0.1
    assert len(summary["gamma_rel_eV"]) == 8 and (out / "bands.png").stat().st_size > 0
    assert summary["n_factorizations_fermi"] >= 1
    # a rerun resumes the finished k-points from the checkpoint
    subprocess.run([sys.executable, str(ROOT / "examples" / "05_large_twisted_bilayer.py"),
                    "--m", "2", "--n", "3", "-o", str(out)], check=True, env=env,
                   capture_output=True, text=True)
    again = json.loads((out / "summary.json").read_text())
    assert again["seconds_per_k"] == summary["seconds_per_k"]  # not recomputed
    assert np.allclose(again["bands_rel_eV"], summary["bands_rel_eV"], atol=1e-9)
