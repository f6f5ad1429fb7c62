"""Basis choice for the embedded generator (issue 13): conditioning and band fidelity.

For each basis: min eig S(k) on graphene, AB bilayer, AB graphite (6x6x1 / 6x6x2), diamond
and Si (4x4x4), and the error of the bands rebuilt from the folded H(R), S(R) of 2-atom Si
(SCF 3x3x3, 40 Ha) at r_cut 8 and 9 A against PySCF's own ``get_bands`` at off-mesh k
(occupied + 4 empty bands), with the SCF wall time::

    python benchmarks/basis_fidelity.py gth-dzvp-compact gth-dzvp-molopt-sr-compact
"""

from __future__ import annotations

import sys
import time

import numpy as np
from ase.build import bulk
from ase.units import Ha

from ase_deeph.generation.config import GenerateConfig
from ase_deeph.generation.generate import build_structure
from ase_deeph.solvers.bloch import bloch_matrices
from ase_deeph.solvers.eigen import solve
from ase_deeph.solvers.kpoints import mesh_points
from interfaces import pyscf as ps

K = np.array([[0.0, 0.0, 0.0], [0.1, 0.23, 0.37], [0.5, 0.5, 0.5], [0.31, 0.0, 0.13]])


def cells():
    def proto(**system):
        return build_structure(GenerateConfig.from_dict({"system": system}), 0)[0]

    return {"graphene": (proto(prototype="graphene"), (6, 6, 1)),
            "bilayer": (proto(prototype="bilayer_graphene", shift="AB"), (6, 6, 1)),
            "graphite": (proto(prototype="graphite", shift="AB",
                               interlayer_distance=[3.35, 3.35]), (6, 6, 2)),
            "diamond": (bulk("C", "diamond", a=3.567), (4, 4, 4)),
            "Si": (bulk("Si", "diamond", a=5.431), (4, 4, 4))}


def min_eig(basis: str) -> dict:
    out = {}
    for name, (atoms, mesh) in cells().items():
        s = bloch_matrices(ps.overlap(atoms, basis=basis, r_cut=8.0),
                           mesh_points(mesh, gamma_centred=True), which=("s",)).s
        out[name] = min(np.linalg.eigvalsh(x)[0] for x in s)
    return out


def fidelity(basis: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    hs, mf = ps.run(bulk("Si", "diamond", a=5.431), basis=basis, kmesh=(3, 3, 3),
                    ke_cutoff=40.0, r_cut=9.0, return_scf=True)
    seconds = time.perf_counter() - t0
    ref = np.asarray(mf.get_bands(mf.cell.get_abs_kpts(K))[0]) * Ha
    nb = int(round(hs.n_electrons)) // 2 + 4
    err = {}
    for r_cut in (8.0, 9.0):
        e = solve(hs.restrict(r_cut), K).eigenvalues[0][:, :nb]
        err[r_cut] = float(np.abs(e - ref[:, :nb]).max()) * 1e3
    return err, seconds


for basis in sys.argv[1:]:
    m = min_eig(basis)
    err, sec = fidelity(basis)
    print(f"| {basis} | " + " | ".join(f"{m[k]:.1e}" for k in m)
          + f" | {err[8.0]:.2f} | {err[9.0]:.3f} | {sec:.0f} |", flush=True)
