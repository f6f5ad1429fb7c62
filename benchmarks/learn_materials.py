"""Acceptance runs of issue 14: ``ase-deeph learn`` on three kinds of material.

Runs ``ase-deeph learn SPEC -o OUT/NAME --budget 90 --transfer`` for

* ``alp``: AlP (zincblende, 8-atom cubic cell), a binary semiconductor;
* ``sic``: 3C-SiC (zincblende), the first choice, measured too dear for the target: C needs
  100 Ha, and the plan estimates 99 min per 16-atom SCF (preflight 54 s on the unit cell,
  2026-12-07), about 5 h for its three structures; left out of the default set;
* ``mos2``: MoS2 monolayer (2H), a two-element 2-D material (vacuum found by the plan);
* ``al``: fcc Al, a metal (Fermi smearing chosen by the preflight);

then prints the acceptance table: wall time (target <= 90 min each on the 2-core machine),
held-out H MAE (target < 1 meV), band error within 2 eV of E_F on the transfer cell twice
as large as the training cells (target < 15 meV mean) and, for the metal, the Fermi level
error on the transfer cell (band offset removed; target < 20 meV)::

    OMP_NUM_THREADS=2 python benchmarks/learn_materials.py [--out learn_bench]
        [--only alp mos2 al] [--budget 90] [--plan-only]

Each run is resumable: rerunning the script continues unfinished runs (the wall time
reported is ``learn.json``'s ``wall_seconds``, summed over the invocations). ``--plan-only``
prints the three preflight reports (one small SCF each) without the long work.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: name -> (kind, structure spec given to ``ase-deeph learn``)
MATERIALS = {
    "alp": ("binary semiconductor", 'bulk("AlP", "zincblende", a=5.46, cubic=True)'),
    "sic": ("binary semiconductor", 'bulk("SiC", "zincblende", a=4.36)'),
    "mos2": ("2-D, two elements", 'mx2("MoS2", "2H", a=3.18, thickness=3.19, vacuum=8.0)'),
    "al": ("metal", 'bulk("Al", "fcc", a=4.05)'),
}
TARGETS = {"wall_min": 90.0, "h_mae_meV": 1.0, "transfer_bands_meV": 15.0,
           "fermi_error_meV": 20.0}


def run(name: str, out: Path, budget: float, plan_only: bool) -> float:
    """Run (or resume) one material through the CLI; return this call's wall seconds."""
    spec = MATERIALS[name][1]
    cmd = [sys.executable, "-m", "ase_deeph", "learn", spec, "-o", str(out / name),
           "--budget", f"{budget:g}", "--transfer"] + (["--plan-only"] if plan_only else [])
    print("$", " ".join(cmd), flush=True)
    env = os.environ | {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def _num(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ok(value, target) -> str:
    return "" if value is None else (" ok" if abs(value) < target else " MISS")


def table(names, out: Path) -> str:
    """Markdown acceptance table from each run's ``learn.json`` and ``plan.json``."""
    head = ("| material | kind | wall (min) | training cell | structures | held-out H MAE "
            "(meV) | held-out bands (meV) | transfer cell | transfer bands mean / max (meV) "
            "| E_F error (meV) |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for name in names:
        path = out / name / "learn.json"
        if not path.exists():
            rows.append(f"| {name} | {MATERIALS[name][0]} | not run | | | | | | | |")
            continue
        res = json.loads(path.read_text())
        plan = json.loads((out / name / "plan.json").read_text())
        ev = res["evaluation"]
        tf = ev.get("transfer") or {}
        wall = res["wall_seconds"] / 60
        h = ev.get("test_h_mae_meV")
        tb = (tf.get("bands") or {})
        ef = tf.get("fermi_error_meV") if plan.get("smearing") else None
        held = ev.get("heldout_bands") or {}
        rows.append(
            f"| {name} ({plan['name']}) | {MATERIALS[name][0]} | {wall:.1f}"
            f"{_ok(wall, TARGETS['wall_min'])} | {'x'.join(map(str, plan['supercell']))}, "
            f"{plan['n_atoms']} atoms | {res['generate']['n_done']} | {_num(h)}"
            f"{_ok(h, TARGETS['h_mae_meV'])} | {_num(held.get('mae_meV'))} / "
            f"{_num(held.get('max_meV'))} | "
            f"{str(tf['n_atoms']) + ' atoms' if tf else 'skipped'} | "
            f"{_num(tb.get('mae_meV'))}{_ok(tb.get('mae_meV'), TARGETS['transfer_bands_meV'])}"
            f" / {_num(tb.get('max_meV'))} | {_num(ef)}"
            f"{_ok(ef, TARGETS['fermi_error_meV'])} |")
    return head + "\n" + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="learn_bench", help="folder of the runs")
    parser.add_argument("--only", nargs="*", default=["alp", "mos2", "al"],
                        choices=list(MATERIALS))
    parser.add_argument("--budget", type=float, default=90.0, help="minutes per material")
    parser.add_argument("--plan-only", action="store_true", help="print the plans only")
    args = parser.parse_args()
    out = Path(args.out)
    for name in args.only:
        seconds = run(name, out, args.budget, args.plan_only)
        print(f"{name}: this call {seconds / 60:.1f} min", flush=True)
    if not args.plan_only:
        print(table(args.only, out))


if __name__ == "__main__":
    main()
