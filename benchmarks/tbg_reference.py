"""Compute the PySCF reference shipped with the demo: 21.79-degree twisted bilayer graphene.

Runs real periodic Kohn-Sham DFT (PBE, GTH, compact gth-dzvp, the same settings as the
bilayer graphene generator config) on the 28-atom (1, 2) commensurate cell, rebuilds H(R),
S(R), and stores the band energies along K-Gamma-M-K with the Fermi level from electron
counting on a 6x6 mesh, solved with S(k) directions below
``ase_deeph.inference.provider.REFERENCE_THRESHOLD`` (1e-4) projected out (the folded H(R) has
spurious states along near-null S directions that this removes) and, for reference,
without it::

    python benchmarks/tbg_reference.py [-o ase_deeph/data/tbg_1_2_pyscf.npz] [--hs tbg.h5]

Takes about 10-20 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import interfaces
from ase_deeph import solvers
from ase_deeph.generation.config import GenerateConfig
from ase_deeph.generation.structures import twisted_bilayer_graphene
from ase_deeph.inference.provider import REFERENCE_THRESHOLD
from interfaces import pyscf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="ase_deeph/data/tbg_1_2_pyscf.npz")
    parser.add_argument("--hs", default=None, help="also save the full HSData here")
    parser.add_argument("--kmesh", type=int, nargs=2, default=(3, 3))
    parser.add_argument("--from-hs", default=None,
                        help="rebuild the reference bands from a saved HSData (no SCF)")
    args = parser.parse_args()

    cfg = GenerateConfig.from_toml("ase_deeph/configs/bilayer_graphene.toml")
    kwargs = cfg.dft.run_kwargs() | {"kmesh": (*args.kmesh, 1)}
    atoms = twisted_bilayer_graphene(1, 2, distance=3.35)
    if args.from_hs:
        hs = interfaces.load(args.from_hs)
        try:  # keep the SCF wall time of the previous reference file
            seconds = float(np.load(args.output)["seconds"])
        except (OSError, KeyError):
            seconds = float("nan")
    else:
        t0 = time.perf_counter()
        hs = pyscf.run(atoms, **kwargs)
        seconds = time.perf_counter() - t0
    if args.hs:
        hs.save(args.hs, overwrite=True)
    path = solvers.bandpath(atoms, "KGMK", 60)
    mesh = solvers.kmesh(atoms, (6, 6, 1))
    out = {}
    for key, thr in (("", REFERENCE_THRESHOLD), ("_unprojected", solvers.eigen.ILL_THRESHOLD)):
        out["bands" + key] = solvers.eigenvalues(hs, path.kpts, ill_threshold=thr)[0]
        e_mesh = solvers.eigenvalues(hs, mesh.kpts, ill_threshold=thr)
        out["fermi_level" + key] = solvers.fermi_level(e_mesh, hs.n_electrons,
                                                       mesh.weights).fermi_level
    np.savez_compressed(
        args.output, kpts=path.kpts, n_electrons=hs.n_electrons, positions=atoms.positions,
        cell=np.asarray(atoms.cell), settings=str(kwargs), seconds=seconds,
        ill_threshold=REFERENCE_THRESHOLD, **out,
    )
    print(f"PySCF TBG (28 atoms) in {seconds:.0f} s; E_F = {out['fermi_level']:.4f} eV "
          f"(S projection {REFERENCE_THRESHOLD:g}); wrote {args.output}")


main()
