"""HSData HDF5 dataset -> torch samples (graph + targets), lazily, and batching.

A sample holds the graph of one structure and, for every target value of H (and S),
the *row* of the prediction (on-site atom or edge, :mod:`ase_deeph.model.graph`) and its
position inside the full-basis block (:class:`ase_deeph.model.blocks.OutputLayout`), so
the loss is one gather. The HDF5 file is opened on first use and the handle is dropped
when the dataset is pickled into DataLoader workers or DDP processes (MACE style).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from ase_deeph.model.blocks import OutputLayout, spinor_to_channels
from ase_deeph.model.graph import build_graph, reverse_rows, target_rows
from ase_deeph.training.bandloss import BandSpec, band_targets
from interfaces.h5io import load as load_hs
from interfaces.hsdata import HSData, parse_irreps

__all__ = ["scan_dataset", "make_sample", "collate", "HSDataset", "SHELL_NAMES"]

SHELL_NAMES = "spdfgh"


def scan_dataset(path) -> tuple[dict[str, tuple[int, ...]], str, list[str]]:
    """Basis per element (from all structures), spin kind and structure names of a file.

    Raises
    ------
    ValueError
        When an element has different bases in different structures, or spins differ.
    """
    basis: dict[str, tuple[int, ...]] = {}
    spins = set()
    with h5py.File(path, "r") as f:
        names = sorted(f["structures"].keys())
        for name in names:
            attrs = f["structures"][name].attrs
            spins.add(str(attrs["spin"]))
            for el, txt in json.loads(attrs["basis"]).items():
                shells = parse_irreps(txt)
                if basis.setdefault(el, shells) != shells:
                    raise ValueError(f"{path}: element {el} has basis {basis[el]} and {shells} "
                                     f"(structure {name})")
    if len(spins) > 1:
        raise ValueError(f"{path}: mixed spin kinds {sorted(spins)}")
    return basis, spins.pop() if spins else "none", names


def _labels(hs: HSData, layout: OutputLayout, species: list[str]):
    """Per value: element-pair id and shell-pair id (la * 10 + lb)."""
    sym = np.array(hs.atoms.get_chemical_symbols())
    pair = np.empty(hs.n_values, dtype=np.int64)
    shell = np.empty(hs.n_values, dtype=np.int64)
    pos = np.empty(hs.n_values, dtype=np.int64)
    n_sp = len(species)
    for g in hs.shape_groups():
        ei, ej = sym[hs.edge_index[0, g[0]]], sym[hs.edge_index[1, g[0]]]
        idx = hs.block_index(g)  # [n_sel, n_i, n_j]
        li = np.repeat(hs.basis[ei], [2 * lv + 1 for lv in hs.basis[ei]])
        lj = np.repeat(hs.basis[ej], [2 * lv + 1 for lv in hs.basis[ej]])
        pair[idx] = species.index(ei) * n_sp + species.index(ej)
        shell[idx] = (li[:, None] * 10 + lj[None, :])[None]
        pos[idx] = layout.block_positions(ei, ej).reshape(idx.shape[1:])[None]
    return pair, shell, pos


def make_sample(hs: HSData, r_cut: float, layout: OutputLayout, species: list[str],
                bands: BandSpec | None = None) -> dict:
    """Graph and gather indices of one structure (numpy/torch tensors, CPU).

    With ``bands``, also the reference window states of the band loss
    (:func:`ase_deeph.training.bandloss.band_targets`) under ``"bands"``.
    """
    graph = build_graph(hs.atoms, r_cut)
    rows = target_rows(graph, hs)  # [n_edges_hs]
    pair, shell, pos = _labels(hs, layout, species)
    value_rows = np.repeat(rows, np.diff(hs.block_ptr))
    h = spinor_to_channels(hs, hs.h[0]) if hs.spin == "spinor" else hs.h  # [n_ch, n_values]
    sample = {
        "numbers": torch.from_numpy(hs.atoms.numbers.astype(np.int64)),
        "edge_index": torch.from_numpy(graph.edge_index),
        "vectors": torch.from_numpy(graph.vectors),
        "reverse_rows": torch.from_numpy(reverse_rows(graph)),
        "value_rows": torch.from_numpy(value_rows),
        "value_pos": torch.from_numpy(pos),
        "pair_label": torch.from_numpy(pair),
        "shell_label": torch.from_numpy(shell),
        "h": torch.from_numpy(np.ascontiguousarray(h)),  # [n_channels, n_values]
        "min_dist": _pair_distances(hs, graph, species),
    }
    if hs.s is not None:
        sample["s"] = torch.from_numpy(hs.s)
    if bands is not None:
        sample["bands"] = band_targets(hs, bands)
    return sample


def _pair_distances(hs: HSData, graph, species: list[str]) -> dict[str, list[float]]:
    """Min / max bond length per element pair of the graph (training-range statistics)."""
    sym = np.array(hs.atoms.get_chemical_symbols())
    d = np.linalg.norm(graph.vectors, axis=1)
    offsite = d > 1e-8  # on-site blocks carry no distance information
    out: dict[str, list[float]] = {}
    if not np.any(offsite):
        return out
    d = d[offsite]
    ei = graph.edge_index[:, offsite]
    names = np.char.add(np.char.add(sym[ei[0]], "-"), sym[ei[1]])
    for name in np.unique(names):
        sel = d[names == name]
        out[str(name)] = [float(sel.min()), float(sel.max())]
    return out


def collate(samples: list[dict]) -> dict:
    """Concatenate samples into one disconnected graph.

    Rows of the batch: all on-site rows (atoms in sample order) first, then all edge
    rows, matching :meth:`HamiltonianNet.forward`. Adds ``value_struct`` (structure of
    each target value) and ``n_structures``.
    """
    n_atoms = [smp["numbers"].shape[0] for smp in samples]
    n_edges = [smp["edge_index"].shape[1] for smp in samples]
    node0 = np.concatenate([[0], np.cumsum(n_atoms)])
    edge0 = node0[-1] + np.concatenate([[0], np.cumsum(n_edges)])

    def to_global(rows: torch.Tensor, k: int) -> torch.Tensor:
        """Sample-local rows (atoms, then edges) -> batch rows."""
        return torch.where(rows < n_atoms[k], rows + int(node0[k]),
                           rows - n_atoms[k] + int(edge0[k]))

    rev = [to_global(smp["reverse_rows"], k) for k, smp in enumerate(samples)]
    out = {
        "numbers": torch.cat([smp["numbers"] for smp in samples]),
        "edge_index": torch.cat([smp["edge_index"] + int(node0[k])
                                 for k, smp in enumerate(samples)], dim=1),
        "vectors": torch.cat([smp["vectors"] for smp in samples]),
        "reverse_rows": torch.cat([r[:n] for r, n in zip(rev, n_atoms, strict=True)]
                                  + [r[n:] for r, n in zip(rev, n_atoms, strict=True)]),
        "value_rows": torch.cat([to_global(smp["value_rows"], k)
                                 for k, smp in enumerate(samples)]),
        "h": torch.cat([smp["h"] for smp in samples], dim=1),
        "value_struct": torch.cat([torch.full((smp["h"].shape[1],), k, dtype=torch.long)
                                   for k, smp in enumerate(samples)]),
        "n_structures": len(samples),
        "value_ptr": np.concatenate([[0], np.cumsum([smp["h"].shape[1] for smp in samples])])
        .tolist(),
    }
    if all("bands" in smp for smp in samples):
        out["bands"] = [smp["bands"] for smp in samples]
    for key in ("value_pos", "pair_label", "shell_label"):
        out[key] = torch.cat([smp[key] for smp in samples])
    has_s = all("s" in smp for smp in samples)
    out["s"] = torch.cat([smp["s"] for smp in samples]) if has_s else None
    return out


class HSDataset(torch.utils.data.Dataset):
    """Samples of selected structures of an HSData file, built on first access and cached.

    Parameters
    ----------
    path : path-like
        HDF5 dataset (:mod:`interfaces.h5io`).
    names : list of str
        Structure names to expose (in this order).
    r_cut : float
        Graph cutoff, Angstrom.
    layout : OutputLayout
        Output layout of the model (full basis).
    species : list of str
        Element symbols of the model, in species-index order.
    bands : BandSpec, optional
        Also prepare the band-loss targets of every structure.
    """

    def __init__(self, path, names: list[str], r_cut: float, layout: OutputLayout,
                 species: list[str], bands: BandSpec | None = None):
        self.path, self.names, self.r_cut = Path(path), list(names), r_cut
        self.layout, self.species, self.bands = layout, species, bands
        self._cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return len(self.names)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_cache"] = {}  # workers rebuild lazily; no open handles travel
        return state

    def __getitem__(self, k: int) -> dict:
        if k not in self._cache:
            hs = load_hs(self.path, self.names[k])
            try:
                self._cache[k] = make_sample(hs, self.r_cut, self.layout, self.species,
                                             self.bands)
            except ValueError as exc:
                raise ValueError(f"{self.path} structure {self.names[k]!r}: {exc}") from None
        return self._cache[k]
