"""Grid level and density fitting of molecular SCFs: cost and effect on the states.

Benzene (or ``--molecule``) in the generator's basis, five settings, one after another
(fitting with PySCF's automatic auxiliary basis, and with ``weigend``)::

    OMP_NUM_THREADS=1 python benchmarks/molecule_settings.py [--molecule C6H6]

Prints per setting the SCF time and the largest change of the orbital energies against
level 5 without fitting (all states, and the states within 3 eV of mid-gap), meV.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ase.build import molecule
from ase.units import Ha


def main() -> None:
    from pyscf import dft, gto

    from interfaces.pyscf.basis import DEFAULT_BASIS, pseudo_name
    from interfaces.pyscf.blocks import prepare
    from interfaces.pyscf.generator import _fitted as fitted

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--molecule", default="C6H6")
    args = parser.parse_args()
    atoms = molecule(args.molecule)
    setup = prepare(atoms, DEFAULT_BASIS)
    mol = gto.Mole(atom=[[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(),
                                                       atoms.positions, strict=True)],
                   unit="A", basis=setup.basis_def, pseudo=pseudo_name("pbe"), verbose=0)
    mol.max_memory = 8000
    mol.build()
    ref = None
    for fit, level in ((False, 5), (True, 5), (True, 3), (False, 3), ("weigend", 3)):
        t0 = time.perf_counter()
        mf = dft.RKS(mol, xc="pbe")
        mf.grids.level = level
        if fit:
            mf = fitted(mf, fit)  # as the generator fits: 3-index integrals stored
        mf.conv_tol = 1e-9
        mf.kernel()
        dt = time.perf_counter() - t0
        e = mf.mo_energy * Ha
        n = mol.nelectron // 2
        near = np.abs(e - 0.5 * (e[n - 1] + e[n])) < 3.0
        ref = e if ref is None else ref
        d = np.abs(e - ref)
        print(f"level {level}, fitted {fit!s:7s}: {dt:6.1f} s, largest change {1e3 * d.max():.3f}"
              f" meV (within 3 eV of the gap {1e3 * d[near].max():.3f} meV)")


if __name__ == "__main__":
    main()
