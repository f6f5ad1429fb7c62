"""Band-space loss: M = C^dagger dH(k) C against dense numpy, perturbation theory, gauge."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase.build import bulk

from ase_deeph import solvers
from ase_deeph.inference.toy import ToyParams, toy_hs
from ase_deeph.training.bandloss import BandSpec, band_loss_terms, band_residual, band_targets
from ase_deeph.training.config import ModelConfig, TrainConfig
from ase_deeph.training.trainer import train
from interfaces.h5io import save_many

SPEC = BandSpec(kmesh=(2, 2, 2), window=4.0, ill_threshold=1e-6)


def _pair(spin: str = "none"):
    """Reference data and a Hermitian perturbation dH (another toy H minus the first)."""
    atoms = bulk("SiC", "zincblende", a=4.36)
    atoms.rattle(0.03, seed=1)
    ref = toy_hs(atoms, spin=spin, seed=0)
    other = toy_hs(atoms, ToyParams(decay=0.25), spin=spin, seed=0)
    return ref, other.h - ref.h  # [n_ch, n_values]


@pytest.mark.parametrize("spin", ["none", "collinear"])
def test_band_residual_equals_dense_projection(spin):
    ref, dh = _pair(spin)
    tgt = band_targets(ref, SPEC)
    mat = band_residual(torch.from_numpy(dh), tgt).numpy()  # [n_ch, nk, m, m]
    kpts = tgt["kpts"].numpy()
    dk = solvers.bloch_matrices(ref.replace(h=dh), kpts, which=("h",)).h  # [n_ch, nk, n, n]
    vecs = tgt["vecs"].numpy()
    want = np.conj(np.swapaxes(vecs, -1, -2)) @ dk @ vecs
    assert np.max(np.abs(mat - want)) < 1e-10
    assert np.max(np.abs(mat - np.conj(np.swapaxes(mat, -1, -2)))) < 1e-12  # Hermitian
    assert tgt["mask"].sum() > 0


def test_diagonal_is_first_order_band_shift():
    ref, dh = _pair()
    tgt = band_targets(ref, SPEC)
    kpts, vecs = tgt["kpts"].numpy(), tgt["vecs"].numpy()[0]  # [nk, n, m]
    eps = 1e-5
    mat = band_residual(torch.from_numpy(dh), tgt).numpy()[0]  # [nk, m, m]
    e0 = solvers.solve(ref, kpts).eigenvalues[0]
    de = (solvers.solve(ref.replace(h=ref.h + eps * dh), kpts).eigenvalues[0] - e0) / eps
    hk = solvers.bloch_matrices(ref, kpts, which=("h",)).h[0]  # [nk, n, n]
    checked = 0
    for q in range(len(kpts)):
        for col in range(int(tgt["mask"][0, q].sum())):
            v = vecs[q, :, col]
            n = int(np.argmin(np.abs(e0[q] - np.real(np.conj(v) @ hk[q] @ v))))
            gaps = np.abs(e0[q] - e0[q, n])
            if np.sort(gaps)[1] > 1e-3:  # non-degenerate: first-order theory applies
                assert abs(de[q, n] - mat[q, col, col].real) < 1e-4 * max(1.0, abs(de[q, n]))
                checked += 1
    assert checked >= 4


def test_gauge_shift_is_removed():
    ref, _ = _pair()
    tgt = band_targets(ref, SPEC)
    resid = torch.from_numpy(0.37 * ref.s[None, :])  # dH = mu S: a pure gauge
    ptr = [0, ref.n_values]
    sq, ab, count = band_loss_terms(resid, ptr, [tgt], gauge=True)
    assert count == int(tgt["mask"].sum()) and float(sq) < 1e-20 and float(ab) < 1e-9
    sq, ab, _ = band_loss_terms(resid, ptr, [tgt], gauge=False)
    assert abs(float(ab) / count - 0.37) < 1e-10  # C^dagger S C = 1


def test_spinor_data_are_refused():
    ref = toy_hs(bulk("Si", "diamond", a=5.43), spin="spinor")
    with pytest.raises(ValueError, match="spinor"):
        band_targets(ref, SPEC)


def test_training_with_band_loss_reports_band_errors(tmp_path):
    items = []
    for k in range(4):
        atoms = bulk("C", "diamond", a=3.57)
        atoms.rattle(0.05, seed=k)
        items.append((None, toy_hs(atoms, seed=0)))
    save_many(items, tmp_path / "toy.h5")
    model = ModelConfig(r_cut=3.3, channels=8, pseudo_channels=2, n_layers=1, radial_hidden=16)
    cfg = TrainConfig(dataset=str(tmp_path / "toy.h5"), out_dir=str(tmp_path / "run"),
                      epochs=2, progress=False, split=(0.5, 0.25, 0.25), device="cpu",
                      band_weight=1.0, band_kmesh=(2, 2, 2), loss="gauge_mse")
    train(model, cfg)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    val = json.loads(lines[-1])["val"]
    assert val["band_mae_meV"] > 0 and val["band_rms_meV"] >= val["band_mae_meV"]
    test = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert np.isfinite(test["band_mae_meV"])
