"""Molecular and periodic PySCF references in the same basis: do they agree?

Held-out molecules (C60) are labelled by PySCF's molecular RKS, training data by its
periodic KRKS. This runs one molecule both ways, the periodic one in a cubic box (Gamma
point, no image blocks within the 8 A cutoff), and compares H at Gamma after the one
gauge shift ``mu S`` (GTH potentials fix no energy zero)::

    OMP_NUM_THREADS=1 python benchmarks/molecule_vs_periodic.py [--molecule C2H4] [--box 16.5]
        [--ke-cutoff 100]

The molecular run uses the C60 settings (grid level 3, ``weigend`` fitting). Prints the
shift, the H difference after it and the change of the states within 5 eV of mid-gap.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg as sl
from ase.build import molecule


def main() -> None:
    from ase_deeph.solvers.bloch import bloch_matrices
    from interfaces import pyscf as ps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="C2H4")
    parser.add_argument("--box", type=float, default=16.5, help="cube edge, Angstrom")
    parser.add_argument("--ke-cutoff", type=float, default=100.0,
                        help="periodic density cutoff, Ha (the carbon training data: 100)")
    args = parser.parse_args()
    atoms = molecule(args.molecule)
    t0 = time.perf_counter()
    mol = ps.run(atoms, grid_level=3, density_fit="weigend")
    t1 = time.perf_counter()
    boxed = atoms.copy()
    boxed.cell, boxed.pbc = [args.box] * 3, True
    boxed.center()
    per = ps.run(boxed, kmesh=(1, 1, 1), ke_cutoff=args.ke_cutoff)
    t2 = time.perf_counter()
    k = np.zeros((1, 3))
    a, b = bloch_matrices(mol, k), bloch_matrices(per, k)
    h1, s1, h2, s2 = a.h[0, 0].real, a.s[0].real, b.h[0, 0].real, b.s[0].real
    mu = float(np.vdot(s1, h1 - h2) / np.vdot(s1, s1))  # eV
    d = h1 - h2 - mu * s1
    e1 = sl.eigh(h1, s1, eigvals_only=True)
    e2 = sl.eigh(h2 + mu * s2, s2, eigvals_only=True)
    n = int(round(mol.n_electrons)) // 2
    near = np.abs(e1 - 0.5 * (e1[n - 1] + e1[n])) < 5.0
    de = 1e3 * np.abs(e1 - e2)[near]
    print(f"{args.molecule}: molecular {t1 - t0:.1f} s, periodic ({args.box} A box) "
          f"{t2 - t1:.1f} s; S differs by {np.abs(s1 - s2).max():.1e}; gauge shift "
          f"{mu:+.3f} eV; H after it: MAE {1e3 * np.abs(d).mean():.2f} meV, max "
          f"{1e3 * np.abs(d).max():.1f} meV; {int(near.sum())} states within 5 eV of mid-gap:"
          f" mean {de.mean():.1f}, max {de.max():.1f} meV; gap {e1[n] - e1[n - 1]:.3f} / "
          f"{e2[n] - e2[n - 1]:.3f} eV")


if __name__ == "__main__":
    main()
