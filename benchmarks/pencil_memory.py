"""Memory and time of the matrices a large-cell factorisation needs, old path vs pencil.

For a twisted-bilayer cell the default model predicts H and S once (saved to a
temporary file). Then, each in a fresh process (so that the peak RSS growth is the
assembly's own), interleaved ``--repeat`` times, at Gamma (real) and K (complex):

* ``full``: :func:`ase_deeph.solvers.bloch_sparse` (full CSR H(k) and S(k), Hermitised),
  then the upper triangle of ``H - E S`` that a symmetric factorisation reads (what the
  solvers did before the pencil);
* ``pencil``: :func:`ase_deeph.solvers.pencil.upper_pencil` (the triangles of H and S on
  one pattern), then ``H - E S`` on that pattern.

Printed: seconds and peak RSS growth (GB) of each, and their ratio::

    python benchmarks/pencil_memory.py --cells 6,7 9,10 --repeat 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

KPOINTS = {"gamma": (0.0, 0.0, 0.0), "k": (1 / 3, 1 / 3, 0.0)}


def _hwm_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def _child(path: str, method: str, kname: str) -> None:
    import interfaces
    from ase_deeph.solvers import bloch_sparse
    from ase_deeph.solvers.factor import upper_with_diagonal
    from ase_deeph.solvers.pencil import upper_pencil

    hs = interfaces.load(path)
    _ = hs.block_ptr, hs.norbs  # cached bookkeeping, not part of either assembly
    before = _hwm_gb()
    t0 = time.perf_counter()
    kpt = np.array(KPOINTS[kname])
    if method == "full":
        sb = bloch_sparse(hs, kpt)
        a = upper_with_diagonal(sb.h[0] - 7.7 * sb.s)
        nnz = a.nnz
    else:
        pen = upper_pencil(hs, kpt)
        a = pen.shifted(7.7)
        nnz = a.nnz
    dt = time.perf_counter() - t0
    print(json.dumps({"seconds": dt, "grew_gb": _hwm_gb() - before, "nnz_upper": int(nnz)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", nargs="+", default=["6,7"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider

    provider = ModelProvider.from_any("default", device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        for cell in args.cells:
            m, n = (int(x) for x in cell.split(","))
            atoms = twisted_bilayer_graphene(m, n)
            path = Path(tmp) / f"hs_{m}_{n}.h5"
            provider(atoms).save(path)
            for kname in KPOINTS:
                runs: dict[str, list[dict]] = {"full": [], "pencil": []}
                for _ in range(args.repeat):
                    for method in runs:  # interleaved
                        out = subprocess.run([sys.executable, __file__, "--child", str(path),
                                              method, kname], capture_output=True, text=True,
                                             check=True)
                        runs[method].append(json.loads(out.stdout.strip().splitlines()[-1]))
                t = {k: float(np.median([r["seconds"] for r in v])) for k, v in runs.items()}
                g = {k: max(r["grew_gb"] for r in v) for k, v in runs.items()}
                print(f"({m}, {n}) {len(atoms)} atoms at {kname}: upper nnz "
                      f"{runs['pencil'][0]['nnz_upper']:,}; full path {t['full']:.2f} s, "
                      f"+{g['full']:.2f} GB; pencil {t['pencil']:.2f} s, +{g['pencil']:.2f} GB "
                      f"(time x{t['pencil'] / t['full']:.2f}, memory "
                      f"x{g['pencil'] / max(g['full'], 1e-9):.2f})", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
