"""Prediction speed of two checkouts side by side on one twisted bilayer (issue 15 item 3).

Each measurement runs in a fresh subprocess with ``PYTHONPATH`` set to one checkout: it
loads the model file, predicts the (1, 2) cell once (warm-up) and then the given cell,
and reports the wall time and its own peak RSS (``VmHWM``). The checkouts alternate,
``--repeat`` times, so that a change of machine load hits both alike. Two kinds:
``hs`` is ``provider(atoms)`` (H from the network and S from the basis, what
``DeepHCalculator`` and examples/05 do); ``h`` is ``predict(model, atoms)`` alone::

    git worktree add /tmp/base 70d514c        # the code when issue 15 was filed
    OMP_NUM_THREADS=2 python benchmarks/predict_speed.py --base /tmp/base --m 30 --n 31 \\
        --model ase_deeph/pretrained/bilayer-dzvp-compact.safetensors --repeat 2

``--model`` must be a file both checkouts can read (``bilayer-dzvp-compact`` is the
default model of 70d514c, byte for byte). Prints per checkout and kind the min / median
wall time, the peak RSS and the ratio of medians base / this checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
from pathlib import Path
import ase.io
kind, model_file, cell_file = sys.argv[1:4]
try:
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.inference.predict import predict
except ImportError:  # the flat layout before the stage folders
    from ase_deeph.provider import ModelProvider
    from ase_deeph.predict import predict
warm, atoms = ase.io.read(cell_file, index=":")
provider = ModelProvider.from_any(model_file, device="cpu")
run = (lambda a: provider(a)) if kind == "hs" else (lambda a: predict(provider.model, a,
                                                                        device="cpu"))
run(warm)
t0 = time.perf_counter()
hs = run(atoms)
wall = time.perf_counter() - t0
hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
           if line.startswith("VmHWM:"))
print(json.dumps({"wall": wall, "rss_gb": hwm / 1024**2, "blocks": int(hs.n_edges),
                  "has_s": hs.s is not None}))
"""


def _measure(tree: Path, kind: str, model: Path, cells: Path) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(model), str(cells)],
                         env=env, cwd=tree, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{tree} ({kind}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other checkout")
    parser.add_argument("--m", type=int, default=14)
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--model", type=Path,
                        default=HERE / "ase_deeph/pretrained/bilayer-dzvp-compact.safetensors")
    parser.add_argument("--kinds", nargs="+", default=["hs", "h"], choices=["hs", "h"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    import ase.io

    from ase_deeph.generation.structures import twisted_bilayer_graphene

    trees = {"base": args.base.resolve(), "this": HERE}
    atoms = twisted_bilayer_graphene(args.m, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        cells = Path(tmp) / "cells.traj"
        ase.io.write(cells, [twisted_bilayer_graphene(1, 2), atoms])
        runs: dict[tuple[str, str], list[dict]] = {}
        for _ in range(args.repeat):
            for kind in args.kinds:
                for name, tree in trees.items():
                    r = _measure(tree, kind, args.model.resolve(), cells)
                    runs.setdefault((kind, name), []).append(r)
                    print(f"  {kind:2s} {name:4s} {r['wall']:8.2f} s  {r['rss_gb']:6.2f} GB",
                          flush=True)
    blocks = runs[(args.kinds[0], "this")][0]["blocks"]
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"({args.m}, {args.n}): {len(atoms)} atoms, {blocks:,} blocks, "
          f"OMP_NUM_THREADS={threads}, "
          f"model {args.model.name}")
    print(f"{'kind':4s} {'checkout':8s} {'min s':>8s} {'median s':>9s} {'peak GB':>8s}")
    for kind in args.kinds:
        med = {}
        for name in trees:
            walls = [r["wall"] for r in runs[(kind, name)]]
            med[name] = statistics.median(walls)
            peak = max(r["rss_gb"] for r in runs[(kind, name)])
            print(f"{kind:4s} {name:8s} {min(walls):8.2f} {med[name]:9.2f} {peak:8.2f}")
        print(f"{kind:4s} base / this (medians): {med['base'] / med['this']:.2f}x")


if __name__ == "__main__":
    main()
