"""Sparse factorisation backends side by side on the same matrices (issue 15).

For each twisted-bilayer cell the default model predicts H and S once; the matrix
``A = H(k) - E S(k)`` (E near E_F; real at Gamma and M, complex Hermitian at K) is saved,
and every available backend of :mod:`ase_deeph.solvers.factor` factorises it in a fresh
subprocess (so that the peak RSS of the child is the factor's memory plus the matrix),
interleaved, ``--repeat`` times.
Printed per cell: factorisation time (min / median), child peak RSS, the inertia count of
each backend (they must agree), the dense count where ``--dense`` allows, and the ratios
against SuperLU::

    python benchmarks/sparse_backends.py --cells 6,7 9,10 --repeat 3
    python benchmarks/sparse_backends.py --cells 6,7 9,10 13,14 --repeat 1   # 2,188 atoms
    python benchmarks/sparse_backends.py --cells 6,7 --k gamma k --repeat 2  # complex at K
    python benchmarks/sparse_backends.py --cells 19,20 --repeat 1 --skip-superlu \
        --backends pardiso pardiso-single pardiso-single-ooc               # 4,564 atoms
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def _hwm_gb() -> float:
    """Peak RSS of this process (VmHWM; ru_maxrss would include the parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _child(path: str, backend: str) -> None:
    """Factorise the saved matrix with one backend; print JSON (seconds, negatives, RSS)."""
    from ase_deeph.solvers.factor import factorize

    a = sp.load_npz(path).tocsr()
    before = _hwm_gb()
    t0 = time.perf_counter()
    fac = factorize(a, backend, inertia=not np.iscomplexobj(a.data))  # complex: for solves
    dt = time.perf_counter() - t0
    rss = _hwm_gb()
    print(json.dumps({"seconds": dt, "negatives": None if fac is None else fac.negatives,
                      "factor_entries": None if fac is None else fac.factor_entries,
                      "peak_rss_gb": rss, "rss_before_gb": before}))


KPOINTS = {"gamma": (0.0, 0.0, 0.0), "m": (0.5, 0.0, 0.0), "k": (1 / 3, 1 / 3, 0.0)}


def _matrix(m: int, n: int, energy: float, folder: Path, kname: str) -> tuple[Path, int, int]:
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.solvers import bloch_sparse

    atoms = twisted_bilayer_graphene(m, n)
    hs = ModelProvider.from_any("default", device="cpu")(atoms)
    sb = bloch_sparse(hs, np.array(KPOINTS[kname]))
    a = (sb.h[0] - energy * sb.s).tocsr()  # real at Gamma and M, complex Hermitian at K
    if not np.iscomplexobj(a.data) or not np.abs(a.data.imag).any():
        a = a.real.tocsr()
    path = folder / f"a_{m}_{n}_{kname}.npz"
    sp.save_npz(path, a)
    return path, len(atoms), a.shape[0]


def _dense_count(path: Path) -> int:
    a = sp.load_npz(path).toarray()
    return int(np.count_nonzero(np.linalg.eigvalsh(a) < 0))  # Hermitian: lower triangle


def main() -> None:
    from ase_deeph.solvers.factor import available_backends

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["6,7", "9,10"])
    parser.add_argument("--energy", type=float, default=7.70, help="E of H - E S (eV)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dense", type=int, default=8000,
                        help="dense eigvalsh count up to this many orbitals")
    parser.add_argument("--k", nargs="+", default=["gamma"], choices=sorted(KPOINTS),
                        help="k-points of H(k) - E S(k): gamma (real), m (real), k (complex)")
    parser.add_argument("--backends", nargs="+", default=None,
                        help="subset of the available backends (superlu always runs)")
    parser.add_argument("--skip-superlu", action="store_true",
                        help="leave SuperLU out (its factor outgrows memory beyond ~4,000 "
                             "atoms); ratios are then against the first backend")
    args = parser.parse_args()
    backends = available_backends()
    if args.backends:
        backends = ["superlu"] + [b for b in backends if b in args.backends and b != "superlu"]
    if args.skip_superlu:
        backends = [b for b in backends if b != "superlu"]
    print(f"backends: {backends}")
    with tempfile.TemporaryDirectory() as tmp:
        for cell, kname in ((c, k) for c in args.cells for k in args.k):
            m, n = (int(x) for x in cell.split(","))
            path, n_atoms, n_orb = _matrix(m, n, args.energy, Path(tmp), kname)
            runs: dict[str, list[dict]] = {b: [] for b in backends}
            for _ in range(args.repeat):
                for b in backends:  # interleaved
                    out = subprocess.run([sys.executable, __file__, "--child", str(path), b],
                                         capture_output=True, text=True, check=True)
                    runs[b].append(json.loads(out.stdout.strip().splitlines()[-1]))
            dense = _dense_count(path) if n_orb <= args.dense else None
            print(f"\n({m}, {n}) at {kname}: {n_atoms} atoms, {n_orb} orbitals, "
                  f"dense count: {dense if dense is not None else 'not computed'}")
            ref = backends[0]  # superlu unless skipped
            base = np.median([r["seconds"] for r in runs[ref]])
            for b in backends:
                t = [r["seconds"] for r in runs[b]]
                neg = {r["negatives"] for r in runs[b]}
                rss = max(r["peak_rss_gb"] for r in runs[b])
                grew = max(r["peak_rss_gb"] - r["rss_before_gb"] for r in runs[b])
                entries = runs[b][0].get("factor_entries")
                print(f"  {b:8s} min {min(t):8.2f} s  median {np.median(t):8.2f} s  "
                      f"x{np.median(t) / base:5.2f} of {ref}  peak RSS {rss:5.2f} GB "
                      f"(+{grew:5.2f} GB in the factorisation)  "
                      f"negatives {sorted(neg)}  factor entries {entries}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3])
    else:
        main()
