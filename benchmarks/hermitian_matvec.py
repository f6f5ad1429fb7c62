"""Products with a Hermitian matrix stored as its upper triangle (issue 15), side by side.

``plain``: SciPy's ``U x + U^T x - d x`` on the whole triangle (a float32 triangle is
widened to a double copy on every call); ``blocks``:
:func:`ase_deeph.solvers.factor.hermitian_matvec`, row blocks in double precision.
A random banded triangle of the 11,164-atom pencil's shape per row (``--n``, ``--per-row``
entries), interleaved, ``--repeat`` times::

    OMP_NUM_THREADS=2 python benchmarks/hermitian_matvec.py --n 145132 --per-row 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from ase_deeph.solvers.factor import hermitian_matvec


def _triangle(n: int, per_row: int, dtype) -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    width = 4 * per_row  # a band, as a moire cell's neighbour lists give after ordering
    cols = np.minimum(np.arange(n)[:, None] + rng.integers(1, width, (n, per_row - 1)), n - 1)
    cols = np.concatenate([np.arange(n)[:, None], cols], axis=1)
    up = sp.csr_matrix((rng.normal(size=cols.size).astype(dtype), cols.ravel(),
                        np.arange(0, cols.size + 1, per_row)), shape=(n, n))
    up.sum_duplicates()
    return up


def _plain(up: sp.csr_matrix, x: np.ndarray) -> np.ndarray:
    return up @ x + up.T @ x - up.diagonal() * x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=145132)
    parser.add_argument("--per-row", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    x = np.random.default_rng(1).normal(size=args.n)
    for dtype in (np.float64, np.float32):
        up = _triangle(args.n, args.per_row, dtype)
        ref = _plain(up.astype(np.float64), x)
        times: dict[str, list[float]] = {"plain": [], "blocks": []}
        for _ in range(args.repeat):  # interleaved
            for name, fn in (("plain", _plain), ("blocks", hermitian_matvec)):
                t0 = time.perf_counter()
                y = fn(up, x)
                times[name].append(time.perf_counter() - t0)
                assert np.allclose(y, ref, atol=1e-9 * np.abs(ref).max())
        med = {k: float(np.median(v)) for k, v in times.items()}
        print(f"{np.dtype(dtype).name}, {up.nnz:,} entries: plain {med['plain']:.3f} s, "
              f"blocks {med['blocks']:.3f} s (x{med['plain'] / med['blocks']:.2f}; "
              f"min {min(times['plain']):.3f} / {min(times['blocks']):.3f} s)")


if __name__ == "__main__":
    main()
