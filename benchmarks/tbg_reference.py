"""Compute the PySCF reference shipped with the demo: 21.79-degree twisted bilayer graphene.

Runs real periodic Kohn-Sham DFT (PBE, GTH, compact gth-dzvp, the same settings as the
bilayer graphene generator config) on the 28-atom (1, 2) commensurate cell, rebuilds H(R),
S(R), and stores the band energies along K-Gamma-M-K and on a 6x6 mesh with the Fermi level
from electron counting::

    python benchmarks/tbg_reference.py [-o ase_deeph/data/tbg_1_2_pyscf.npz] [--hs tbg.h5]

Takes about 10-20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ase_deeph import solvers
from ase_deeph.generate_configs import GenerateConfig
from ase_deeph.structures import twisted_bilayer_graphene
from interfaces import pyscf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="ase_deeph/data/tbg_1_2_pyscf.npz")
    parser.add_argument("--hs", default=None, help="also save the full HSData here")
    parser.add_argument("--kmesh", type=int, nargs=2, default=(3, 3))
    args = parser.parse_args()

    cfg = GenerateConfig.from_toml("ase_deeph/configs/bilayer_graphene.toml")
    kwargs = cfg.dft.run_kwargs() | {"kmesh": (*args.kmesh, 1)}
    atoms = twisted_bilayer_graphene(1, 2, distance=3.35)
    t0 = time.perf_counter()
    hs = pyscf.run(atoms, **kwargs)
    seconds = time.perf_counter() - t0
    if args.hs:
        hs.save(args.hs)
    path = solvers.bandpath(atoms, "KGMK", 60)
    bands = solvers.eigenvalues(hs, path.kpts)[0]
    mesh = solvers.kmesh(atoms, (6, 6, 1))
    fermi = solvers.fermi_level(solvers.eigenvalues(hs, mesh.kpts), hs.n_electrons, mesh.weights)
    np.savez_compressed(
        args.output, kpts=path.kpts, bands=bands, fermi_level=fermi.fermi_level,
        n_electrons=hs.n_electrons, positions=atoms.positions, cell=np.asarray(atoms.cell),
        settings=str(kwargs), seconds=seconds,
    )
    print(f"PySCF TBG (28 atoms) in {seconds:.0f} s; E_F = {fermi.fermi_level:.4f} eV; "
          f"wrote {args.output}")


main()
