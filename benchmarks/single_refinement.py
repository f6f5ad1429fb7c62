"""Refinement steps of the single-precision PARDISO factor against the double factor (issue 15).

On one twisted-bilayer cell predicted by the default model (H and S in float32, as
``examples/05 --compact`` keeps them), the ``--bands`` states nearest E_F at Gamma (real)
and K (complex) by shift-invert with the double factor (``pardiso``), then with the
single-precision factor refined 3, 1 and 0 times; prints the time of each solve and the
largest eigenvalue difference against the double factor::

    OMP_NUM_THREADS=2 python benchmarks/single_refinement.py --m 6 --n 7
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=6)
    parser.add_argument("--n", type=int, default=7)
    parser.add_argument("--bands", type=int, default=16)
    args = parser.parse_args()
    from ase_deeph import solvers
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.solvers import factor

    hs = ModelProvider.from_any("default")(twisted_bilayer_graphene(args.m, args.n))
    hs = hs.replace(h=hs.h.astype(np.float32), s=hs.s.astype(np.float32))
    os.environ["ASE_DEEPH_SPARSE_BACKEND"] = "pardiso"
    ef = solvers.fermi_level_sparse(hs).fermi_level
    ref: dict[str, np.ndarray] = {}
    for steps in (None, 3, 1, 0):
        if steps is not None:  # the single-precision backend with this many steps
            factor.BACKENDS["pardiso-single"] = (
                lambda u, inertia=True, s=steps: factor._pardiso_single(u, inertia, steps=s))
            os.environ["ASE_DEEPH_SPARSE_BACKEND"] = "pardiso-single"
        for kname, k in (("Gamma", (0, 0, 0)), ("K", (1 / 3, 1 / 3, 0))):
            t0 = time.perf_counter()
            e = solvers.solve_sparse(hs, k, sigma=ef, n_bands=args.bands).eigenvalues[0]
            dt = time.perf_counter() - t0
            if steps is None:
                ref[kname] = e
                print(f"double factor at {kname}: {dt:.1f} s", flush=True)
            else:
                diff = 1e3 * np.abs(e - ref[kname]).max()
                print(f"single factor, {steps} refinement steps, at {kname}: {dt:.1f} s, "
                      f"max |dE| vs double {diff:.2e} meV", flush=True)


if __name__ == "__main__":
    main()
