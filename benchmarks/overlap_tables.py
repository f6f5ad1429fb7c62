"""Overlap S(R) of a large cell: PySCF integral calls against the two-centre tables.

The 1,084-atom twisted bilayer plus 3 H (all four C/H element pairs), blocks within 8 A::

    OMP_NUM_THREADS=1 python benchmarks/overlap_tables.py [--m 9 --n 10]

Prints the block count, the largest difference, the PySCF time, the tables' time
including their construction, and the tables' time once built.
"""

from __future__ import annotations

import argparse
import time

import ase
import numpy as np


def main() -> None:
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from interfaces.neighbours import neighbour_list
    from interfaces.pyscf.basis import DEFAULT_BASIS
    from interfaces.pyscf.blocks import prepare
    from interfaces.pyscf.overlap import pair_values

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=9)
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    atoms = twisted_bilayer_graphene(args.m, args.n)
    atoms += ase.Atoms("H3", positions=atoms.positions[:3] + [0.0, 0.0, 1.1])
    setup = prepare(atoms, DEFAULT_BASIS)
    i, j, shift = neighbour_list(setup.atoms, 8.0)
    ei = np.stack([i, j])
    times = {}
    for name, tables in (("pyscf", False), ("tables, built here", True),
                         ("tables, built", True)):
        t0 = time.perf_counter()
        values = pair_values(setup, ei, shift, "int1e_ovlp", 1, tables=tables)
        times[name] = (time.perf_counter() - t0, values)
    ref = times["pyscf"][1]
    print(f"{len(atoms)} atoms, {ei.shape[1]:,} blocks; largest difference "
          f"{np.abs(times['tables, built'][1] - ref).max():.2e}")
    for name, (sec, _) in times.items():
        print(f"  {name:20s} {sec:7.2f} s")


if __name__ == "__main__":
    main()
