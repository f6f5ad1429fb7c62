"""EPC timing: lambda of 2-atom toy Si on an 8x8x8 k mesh x 8x8x8 q mesh (not a test).

Run: ``python benchmarks/epc.py [--k 8] [--q 8]``. Prints the time of the
finite differences (12 supercell H/S calls), phonons, and the mesh calculation, which processes
one q-point at a time (memory bounded by one (nk, 6, n_orb, n_orb) complex block per q) and
reuses the k-mesh eigenvectors at k + q. The toy model is an insulator; E_F is placed 0.3 eV
below the valence-band top (hole doping) so that lambda is non-zero.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from ase.build import bulk

from ase_deeph import epc
from ase_deeph.inference.toy import toy_hs
from ase_deeph.solvers import solve


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--q", type=int, default=8)
    parser.add_argument("--sigma", type=float, default=0.1, help="electron smearing, eV")
    args = parser.parse_args()
    si = bulk("Si", "diamond", a=5.43)
    t0 = time.perf_counter()
    derivs = epc.derivatives(toy_hs, si)
    t1 = time.perf_counter()
    ph = epc.phonopy_forces(epc.phonopy_from_atoms(si, np.eye(3, dtype=int) * 3),
                            epc.tersoff_si)
    t2 = time.perf_counter()
    e_top = float(solve(derivs.hs0, [[0, 0, 0]]).eigenvalues[0, 0, 3])
    res = epc.eliashberg(derivs, ph, k_mesh=(args.k,) * 3, q_mesh=(args.q,) * 3,
                         sigma_el=args.sigma, fermi_level=e_top - 0.3)
    t3 = time.perf_counter()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"derivatives: {t1 - t0:.2f} s ({derivs.cell_pairs.shape[0]} cell pairs, "
          f"n_orb {derivs.n_orb})")
    print(f"phonons (Tersoff + phonopy): {t2 - t1:.2f} s")
    print(f"lambda on {args.k}^3 k x {args.q}^3 q: {t3 - t2:.2f} s "
          f"({(t3 - t2) / args.q**3 * 1e3:.1f} ms per q), peak RSS {rss:.0f} MiB")
    print(f"lambda = {res.lam:.4f}, omega_log = {res.omega_log:.2f} meV, "
          f"Tc(mu*=0.1) = {res.tc(0.1):.3f} K, N_F = {res.n_f:.4f} /eV/spin, "
          f"{res.n_soft} soft modes skipped")


if __name__ == "__main__":
    main()
