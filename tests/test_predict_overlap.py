"""S copied into a prediction's blocks (issue 15 item 3): the fast path equals the general one."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk

pytest.importorskip("torch")

from ase_deeph.inference import predict as P  # noqa: E402
from ase_deeph.inference.toy import ToyParams, toy_hs  # noqa: E402


def _general(src, skel):
    found = src.find_edges(skel.edge_index[0], skel.edge_index[1], skel.cell_shift)
    out, have = np.zeros(skel.n_values), found >= 0
    for g in skel.shape_groups():
        g = g[have[g]]
        out[skel.block_index(g)] = src.s[src.block_index(found[g])]
    return out


@pytest.mark.parametrize("symbols", ["Si", "SiC"])
def test_overlap_copy_matches_block_by_block(symbols):
    atoms = bulk(symbols, "zincblende" if len(symbols) > 2 else "diamond", a=5.0, cubic=True)
    atoms.rattle(0.02, seed=1)
    src = toy_hs(atoms, ToyParams(cutoff=2.5))  # S over a longer range than the skeleton
    skel = toy_hs(atoms, ToyParams(cutoff=1.6))
    got = P._overlap_values(src, skel)
    np.testing.assert_array_equal(got, _general(src, skel))
    assert np.count_nonzero(got) > 0.5 * skel.n_values


@pytest.mark.parametrize("symbols, tables", [("Si", False), ("SiC", False), ("Si", True)])
def test_overlap_on_blocks_equals_overlap_copied(symbols, tables, monkeypatch):
    """S computed on a prediction's blocks (half of them, partners by transposition)."""
    import importlib

    from interfaces import pyscf

    ov = importlib.import_module("interfaces.pyscf.overlap")
    if tables:  # the two-centre tables of large cells, forced on a small one
        monkeypatch.setattr(ov, "TABLE_EDGES", 0)
    monkeypatch.setattr(ov, "_BATCH", 97)  # several batches, partners across batches
    atoms = bulk(symbols, "zincblende" if len(symbols) > 2 else "diamond", a=5.43)
    atoms.rattle(0.03, seed=2)
    basis = "gth-szv"
    skel = pyscf.overlap(atoms, basis=basis, r_cut=4.0).replace(s=None)
    got = pyscf.overlap_on(skel, basis=basis, r_cut=3.5)  # blocks beyond 3.5 A stay zero
    want = P.copy_overlap(pyscf.overlap(atoms, basis=basis, r_cut=3.5), skel)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8 if tables else 1e-14)
    assert 0 < np.count_nonzero(want) < skel.n_values


def test_workers_split_chunks_deterministically():
    """Chunks spread over threads give the one-thread prediction, the same on every run."""
    import torch

    from ase_deeph.model.config import ModelConfig
    from ase_deeph.model.network import HamiltonianNet

    torch.manual_seed(0)
    model = HamiltonianNet(ModelConfig(r_cut=4.0, channels=8, pseudo_channels=2, n_layers=2,
                                       radial_hidden=16), {"Si": (0, 1)})
    atoms = bulk("Si", "diamond", a=5.43, cubic=True)
    atoms.rattle(0.05, seed=3)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = P.predict(model, atoms, device="cpu", chunk_size=64).h
        torch.set_num_threads(2)
        runs = [P.predict(model, atoms, device="cpu", chunk_size=64).h for _ in range(2)]
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0], serial, rtol=0, atol=1e-5)
    assert np.abs(serial).max() > 1e-3
