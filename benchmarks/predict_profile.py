"""Where the time of ``provider(atoms)`` goes on a large twisted bilayer (issue 15).

Predicts the cell once to warm up (model load, first allocations), then once under
cProfile (chunks run in worker threads, which cProfile does not follow: run it with
``OMP_NUM_THREADS=1`` for per-stage times of the network), and prints the wall time, the
peak RSS and the cumulative time of each stage:
graph building, the plan (bond frames, invariants), message passing (node features),
edge and on-site blocks, writing blocks into the flat arrays, S from the basis, and the
final HSData::

    OMP_NUM_THREADS=2 python benchmarks/predict_profile.py --m 30 --n 31   # 11,164 atoms
    OMP_NUM_THREADS=2 python benchmarks/predict_profile.py --m 9 --n 10    # 1,084 atoms
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import time

STAGES = {
    "graph (neighbour list)": ("graph.py", "build_graph"),
    "plan (frames, invariants)": ("predict.py", "_plan"),
    "message passing": ("predict.py", "_node_features"),
    "edge blocks (network)": ("network.py", "edge_blocks"),
    "on-site blocks (network)": ("network.py", "onsite_blocks"),
    "write blocks to flat arrays": ("predict.py", "write"),
    "S from the basis, on the graph's blocks": ("overlap.py", "overlap_on"),
    "HSData construction": ("hsdata.py", "replace"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=9)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    from ase_deeph.generation.structures import twisted_bilayer_graphene
    from ase_deeph.inference.provider import ModelProvider

    provider = ModelProvider.from_any(args.model, device="cpu")
    provider(twisted_bilayer_graphene(1, 2))  # warm up
    atoms = twisted_bilayer_graphene(args.m, args.n)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    hs = provider(atoms)
    prof.disable()
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    stats = pstats.Stats(prof).stats
    print(f"({args.m}, {args.n}): {len(atoms)} atoms, {hs.n_edges:,} blocks, "
          f"{hs.n_values:,} values; predict {wall:.1f} s (under cProfile), peak RSS {peak:.2f} GB")
    for name, (file, func) in STAGES.items():
        cum = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file) and fn == func)
        print(f"  {name:38s} {cum:8.2f} s  {100 * cum / wall:5.1f} %")


if __name__ == "__main__":
    main()
