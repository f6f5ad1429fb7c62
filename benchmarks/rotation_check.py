"""Rigid-rotation check of a shipped model on the 21.79 deg twisted bilayer (issue 13).

Predict H(R) and S(R) of the 28-atom cell, rotate the whole cell (positions and lattice)
by random proper rotations and by an improper one (rotation times inversion), predict
again and compare *every* eigenvalue at a few k-points (fractional k is unchanged by a
rigid rotation). The solve is the calculator's (``provider.policy``: the one near-null S
rule), so what is checked is what a user gets.

    python benchmarks/rotation_check.py [--model default] [--n-rot 3]

Prints one JSON object: max |delta e| over all states and k, and within 2 eV of E_F.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.spatial.transform import Rotation

from ase_deeph import solvers
from ase_deeph.generation.structures import twisted_bilayer_graphene
from ase_deeph.inference.provider import ModelProvider

KPTS = np.array([[0.0, 0.0, 0.0], [1 / 3, 1 / 3, 0.0], [0.5, 0.0, 0.0], [0.13, 0.27, 0.0]])


def spectrum(provider: ModelProvider, atoms) -> tuple[np.ndarray, float]:
    """All eigenvalues at KPTS (eV) and the E_F of a 6x6x1 mesh, solved as the calculator."""
    hs = provider.policy.prepare(provider(atoms))
    mesh = solvers.kmesh(atoms, (6, 6, 1))
    thr = provider.policy.dense_threshold(hs, mesh.kpts)
    ef = solvers.fermi_level(solvers.eigenvalues(hs, mesh.kpts, ill_threshold=thr),
                             hs.n_electrons, mesh.weights).fermi_level
    return solvers.eigenvalues(hs, KPTS, ill_threshold=thr)[0], float(ef)


def rotated(atoms, rot: np.ndarray):
    """A copy with positions and cell vectors rotated by ``rot`` (rows transform as r @ R^T)."""
    out = atoms.copy()
    out.set_cell(atoms.cell.array @ rot.T, scale_atoms=False)
    out.positions = atoms.positions @ rot.T
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--n-rot", type=int, default=3)
    args = parser.parse_args()
    provider = ModelProvider.from_any(args.model, device="cpu")
    atoms = twisted_bilayer_graphene(1, 2, distance=3.35)
    t0 = time.perf_counter()
    ref, ef = spectrum(provider, atoms)
    rows = []
    rots = list(Rotation.random(args.n_rot, random_state=0).as_matrix())
    rots.append(-rots[0])  # improper: rotation times inversion
    for k, rot in enumerate(rots):
        e, ef_r = spectrum(provider, rotated(atoms, rot))
        ok = np.isfinite(ref) & np.isfinite(e)
        diff = np.abs(e - ref)[ok]
        near = (np.abs(ref - ef) < 2.0) & ok
        rows.append({"rotation": k, "improper": bool(np.linalg.det(rot) < 0),
                     "max_all_eV": float(diff.max()),
                     "max_near_ef_eV": float(np.abs(e - ref)[near].max()),
                     "delta_ef_eV": abs(ef_r - ef), "n_states": int(ok.sum()),
                     "spectrum_eV": [float(np.nanmin(ref) - ef), float(np.nanmax(ref) - ef)]})
    print(json.dumps({"model": args.model, "n_atoms": len(atoms),
                      "twist_deg": atoms.info["twist_angle"], "kpts": KPTS.tolist(),
                      "max_all_eV": max(r["max_all_eV"] for r in rows),
                      "rows": rows, "seconds": time.perf_counter() - t0}, indent=1))


if __name__ == "__main__":
    main()
