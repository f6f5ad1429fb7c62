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
