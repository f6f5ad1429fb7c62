"""What a strain and a rattle do to the cost of one labelled structure.

The cubic 8-atom AlP cell of the ``learn`` run, four ways (unperturbed, rattled only,
strained only, both), with the plan's settings (3x3x3 mesh, 60 Ha, r_cut 8 A)::

    OMP_NUM_THREADS=2 python benchmarks/perturbation_cost.py

Prints per case the wall time of ``interfaces.pyscf.run``, its SCF part and cycle count,
and the rest (the fold onto the dense mesh). The rattle (0.07 A) and the strain (entries
up to 2 %) are one seeded draw.
"""

from __future__ import annotations

import time

import numpy as np
from ase.build import bulk


def main() -> None:
    import interfaces.pyscf.generator as gen
    from interfaces import pyscf as ps

    scf, seen = gen._scf, {}

    def timed(mf, what, opts):  # the generator's SCF, timed
        t0 = time.perf_counter()
        out = scf(mf, what, opts)
        seen.update(seconds=time.perf_counter() - t0, cycles=getattr(out, "cycles", None))
        return out

    gen._scf = timed
    unit = bulk("AlP", "zincblende", a=5.46, cubic=True)
    rng = np.random.default_rng(0)
    rattled = unit.copy()
    rattled.positions += rng.normal(0, 0.07, rattled.positions.shape)
    strain = np.eye(3) + 0.02 * rng.uniform(-1, 1, (3, 3))
    strained = unit.copy()
    strained.set_cell(unit.cell @ strain, scale_atoms=True)
    both = rattled.copy()
    both.set_cell(rattled.cell @ strain, scale_atoms=True)
    for name, atoms in (("unperturbed", unit), ("rattled only", rattled),
                        ("strained only", strained), ("strained and rattled", both)):
        t0 = time.perf_counter()
        ps.run(atoms, basis="gth-dzvp-molopt-sr-compact", xc="pbe", kmesh=(3, 3, 3),
               ke_cutoff=60.0, r_cut=8.0)
        total = time.perf_counter() - t0
        print(f"{name:22s}: {total:6.1f} s, SCF {seen['seconds']:6.1f} s ({seen['cycles']} "
              f"cycles), fold {total - seen['seconds']:5.1f} s", flush=True)


if __name__ == "__main__":
    main()
