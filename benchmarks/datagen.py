"""Seconds per structure of the shipped periodic generator configs (PySCF DFT labels).

Usage::

    OMP_NUM_THREADS=2 python benchmarks/datagen.py [--n 1] [--configs si_bulk bilayer_graphene]

Runs the first ``n`` structures of each config exactly as ``ase-deeph generate`` would
(same structures, same DFT settings) without writing a dataset, and prints wall and CPU
seconds per structure with the projected time of the full config.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from ase_deeph.generation import generate as generate
from ase_deeph.generation.config import GenerateConfig
from ase_deeph.generation.generate import build_structure
from interfaces import pyscf as ps

CONFIGS = Path(generate.__file__).parents[1] / "configs"


def bench(name: str, n: int) -> None:
    cfg = GenerateConfig.from_toml(CONFIGS / f"{name}.toml")
    walls, cpus = [], []
    for k in range(n):
        atoms, _ = build_structure(cfg, k)
        w0, c0 = time.perf_counter(), time.process_time()
        hs = ps.run(atoms, **cfg.dft.run_kwargs())
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        print(f"  {name}[{k}]: {len(atoms)} atoms, {hs.n_orbitals} orbitals, {hs.n_edges} blocks, "
              f"kmesh {hs.metadata['kmesh']} dense {hs.metadata['dense_kmesh']}: "
              f"{walls[-1]:.1f} s wall, {cpus[-1]:.1f} s CPU", flush=True)
    wall = sum(walls) / n
    print(f"{name}: {wall:.1f} s/structure wall ({sum(cpus) / n:.1f} s CPU); full config "
          f"({cfg.n_structures} structures) ~ {wall * cfg.n_structures / 60:.0f} min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1, help="structures per config")
    parser.add_argument("--configs", nargs="+", default=["si_bulk", "bilayer_graphene"])
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"{os.cpu_count()} CPUs visible, load average {os.getloadavg()[0]:.1f}")
    for name in args.configs:
        bench(name, args.n)


main()
