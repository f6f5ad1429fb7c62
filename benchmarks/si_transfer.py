"""Transfer test: a Si model against PySCF on a cell larger than its training cells.

Builds a cell of ``--repeat`` cubic cells (default 2x2x1, 32 atoms; ``--repeat 2 2 2`` for
64), rattled and strained as in the training config ``ase_deeph/configs/si_bulk.toml`` but
with a seed the training never used, so every cubic cell is rattled independently; runs
PySCF with the same DFT settings (k-mesh scaled to the cell; cached in ``--reference``),
predicts H with the model and S from the basis, and compares the gauge-aligned block MAE of
H and the band energies within 2 eV of E_F on a k-mesh (Fermi levels aligned)::

    python benchmarks/si_transfer.py MODEL.safetensors [--reference si32_pyscf.h5]
    python benchmarks/si_transfer.py si --repeat 2 2 2 --kmesh 2 2 2 --reference si64_pyscf.h5

The PySCF run takes 6 min (32 atoms) to ~30 min (64 atoms) on 2 cores; later runs reuse
the reference file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import interfaces
from ase_deeph import solvers
from ase_deeph.cli.demo import compare_bands
from ase_deeph.generation.config import GenerateConfig
from ase_deeph.generation.generate import build_structure
from ase_deeph.inference.provider import ModelProvider
from ase_deeph.learn.evaluate import gauge_mae_meV, predicted_levels, reference_levels
from interfaces import pyscf


def reference(path: Path, repeat, seed: int) -> tuple[interfaces.HSData, float]:
    """PySCF H/S of the transfer cell (computed once, then read from ``path``)."""
    if path.exists():
        return interfaces.load(path), float("nan")
    cfg = GenerateConfig.from_toml(Path(__file__).parents[1] / "ase_deeph/configs/si_bulk.toml")
    cfg = dataclasses.replace(cfg, seed=seed,
                              system=dataclasses.replace(cfg.system, supercell=tuple(repeat)))
    atoms, _ = build_structure(cfg, 0)
    kmesh = [max(1, k // r) for k, r in zip(cfg.dft.kmesh, repeat, strict=True)]
    t0 = time.perf_counter()
    hs = pyscf.run(atoms, **(cfg.dft.run_kwargs() | {"kmesh": kmesh}))
    seconds = time.perf_counter() - t0
    hs.save(path, overwrite=True)
    return hs, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--reference", default="si32_pyscf.h5")
    parser.add_argument("--repeat", type=int, nargs=3, default=(2, 2, 1))
    parser.add_argument("--seed", type=int, default=777)
    parser.add_argument("--kmesh", type=int, nargs=3, default=(2, 2, 4))
    args = parser.parse_args()
    ref, seconds = reference(Path(args.reference), args.repeat, args.seed)
    provider = ModelProvider.from_any(args.model, device="cpu")
    t0 = time.perf_counter()
    pred = provider(ref.atoms)
    t_pred = time.perf_counter() - t0
    mesh = solvers.kmesh(ref.atoms, args.kmesh)
    e_ref, ef_ref = reference_levels(ref, mesh)
    e_pred, ef_pred = predicted_levels(provider, pred, mesh)
    print(json.dumps({
        "n_atoms": len(ref.atoms), "reference_seconds": seconds, "predict_seconds": t_pred,
        "h_mae_meV": gauge_mae_meV(pred, ref),
        "bands_vs_pyscf": compare_bands(e_pred[0], e_ref[0], ef_pred, ef_ref),
    }, indent=1))


if __name__ == "__main__":
    main()
