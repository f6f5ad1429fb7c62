"""The ``ase-deeph`` command line: a thin layer over the library, one verb per job.

Each verb parses a TOML config or a few flags and calls one library function; no
physics lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def _cmd_convert(args: argparse.Namespace) -> int:
    from ase_deeph.cli.convert import convert

    report = convert(args.src, args.dst, args.from_code, args.to_code, progress=not args.quiet)
    for run, reason in report.failed:
        print(f"FAILED {run}: {reason}", file=sys.stderr)
    for run, written in report.converted[:20]:
        print(f"{run} -> {written}")
    print(f"converted {len(report.converted)} run(s) into {args.dst}; {len(report.failed)} failed")
    return 1 if report.failed and not report.converted else 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from ase_deeph.generation.generate import generate

    src = Path(args.config)
    if src.is_dir():  # a folder of configs: one dataset each, OUT/<stem>.h5
        configs = sorted(src.glob("*.toml"))
        if not configs:
            raise SystemExit(f"error: {src} holds no *.toml generator config")
        out_dir = Path(args.output or src.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        jobs = [(c, out_dir / f"{c.stem}.h5") for c in configs]
    else:
        jobs = [(src, Path(args.output or src.with_suffix(".h5").name))]
    status = 0
    for config, out in jobs:
        report = generate(config, out, progress=not args.quiet)
        print(json.dumps(report.summary, indent=1))
        status |= 1 if report.failures and not report.n_done else 0
    return status


def _cmd_train(args: argparse.Namespace) -> int:
    from ase_deeph.training.trainer import train_from_toml

    train_from_toml(args.config, out_dir=args.output, resume=args.resume, force=args.force)
    return 0


def _cmd_learn(args: argparse.Namespace) -> int:
    from ase_deeph.cli.learn import learn_command

    learn_command(args.structure, args.output, budget=args.budget, more=args.more,
                  seed=args.seed, plan_only=args.plan_only, transfer=args.transfer,
                  progress=not args.quiet, active=args.active)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from ase_deeph.cli.workflows import predict_file

    written = predict_file(args.structure, args.model, args.output, args.to_code,
                           force=args.force)
    print(f"wrote {written}")
    return 0


def _cmd_bands(args: argparse.Namespace) -> int:
    from ase_deeph.cli.workflows import bands_file

    summary = bands_file(args.input, args.output, path=args.path, npoints=args.npoints,
                         model=args.model, emin=args.emin, emax=args.emax)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_dos(args: argparse.Namespace) -> int:
    from ase_deeph.cli.workflows import dos_file

    summary = dos_file(args.input, args.output, kmesh=args.kmesh, width=args.width,
                       model=args.model)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ase_deeph.cli.demo import run_demo

    summary = run_demo(args.output, quick=args.quick, model=args.model)
    print(json.dumps(summary, indent=1))
    return 0


def _cmd_epc(args: argparse.Namespace) -> int:
    from ase_deeph.cli.epc import run_epc_config

    run_epc_config(args.config, args.output)
    return 0


def _formats_epilog(writable: bool | None = None) -> str:
    """List the registered formats with their descriptions (the verbs' help epilog).

    Parameters
    ----------
    writable : bool, optional
        ``True``: only the formats that can be written.

    Returns
    -------
    str
        ``"formats:"`` and one ``"  CODE  description"`` line per format.
    """
    from interfaces.registry import FORMATS, codes

    shown = codes(writable=writable)
    width = max(map(len, shown), default=0)
    lines = [f"  {n:<{width}}  {FORMATS[n].description}"
             + ("" if FORMATS[n].can_write else " [read only]") for n in shown]
    return "formats:\n" + "\n".join(lines)


def _add_data_verbs(sub) -> None:
    """``convert``, ``generate``, ``train``, ``learn``, ``predict``: data in, models and H out."""
    from interfaces.registry import codes

    readable, writable = codes(), codes(writable=True)
    c = sub.add_parser("convert", help=f"convert DFT runs between formats ({', '.join(readable)})",
                       epilog=_formats_epilog(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("src", help="a run (file or folder) or a tree of runs")
    c.add_argument("dst", help="output: an HDF5 dataset (--to hsdata) or a folder")
    c.add_argument("--from", dest="from_code", default=None, choices=readable, metavar="CODE",
                   help="source format, see below (default: detect)")
    c.add_argument("--to", dest="to_code", default="hsdata", choices=writable, metavar="CODE",
                   help="target format, see below (default: hsdata)")
    c.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=_cmd_convert)

    g = sub.add_parser("generate", help="generate a PySCF training dataset from a TOML config")
    g.add_argument("config", help="generator TOML, or a folder of them (see ase_deeph/configs/)")
    g.add_argument("-o", "--output", default=None,
                   help="dataset file (default CONFIG.h5); for a folder of configs, the "
                        "output folder (one CONFIG.h5 each, merge with convert)")
    g.add_argument("-q", "--quiet", action="store_true")
    g.set_defaults(func=_cmd_generate)

    t = sub.add_parser("train", help="train a model from a TOML config (torchrun for many GPUs)")
    t.add_argument("config", help="training TOML (see ase_deeph/configs/)")
    t.add_argument("-o", "--output", default=None, help="run folder (default from config)")
    t.add_argument("--resume", action="store_true", help="continue an interrupted run exactly")
    t.add_argument("--force", action="store_true", help="replace a run already in the folder")
    t.set_defaults(func=_cmd_train)

    _add_learn_verb(sub)

    r = sub.add_parser("predict", help="predict H (and S) of a structure file",
                       epilog=_formats_epilog(writable=True),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("structure", help="any ASE-readable structure file")
    r.add_argument("-m", "--model", default="default", help="'default' or a model file")
    r.add_argument("-o", "--output", required=True, help="output file or folder")
    r.add_argument("--to", dest="to_code", default="hsdata", choices=writable, metavar="CODE",
                   help="output format, see below (default: hsdata)")
    r.add_argument("--force", action="store_true", help="replace an existing HDF5 output")
    r.set_defaults(func=_cmd_predict)


def _add_learn_verb(sub) -> None:
    """``learn``: plan, PySCF data, training and errors for a new material in one verb."""
    lr = sub.add_parser("learn", help="a model for a new material in one command: plan, "
                        "PySCF data, training, errors, model card (resumable)")
    lr.add_argument("structure", help="structure file ASE can read, or an ase.build call "
                    "such as 'bulk(\"InP\", \"zincblende\", a=5.87)'")
    lr.add_argument("-o", "--output", required=True, help="output folder (rerun to resume)")
    lr.add_argument("--budget", type=float, default=60.0,
                    help="wall-time budget in minutes that sizes the plan (default 60)")
    lr.add_argument("--more", type=int, default=0, metavar="N",
                    help="N structures beyond the plan's, then retrain")
    lr.add_argument("--seed", type=int, default=0)
    lr.add_argument("--transfer", action="store_true",
                    help="also compare with PySCF on a cell twice as large (budget allowing)")
    lr.add_argument("--plan-only", action="store_true",
                    help="print the preflight report (checks, settings, estimated times), "
                         "save DIR/plan.json and stop")
    lr.add_argument("--active", type=int, nargs=2, default=None, metavar=("POOL", "PICK"),
                    help="then one active-learning round: a committee scores POOL new "
                         "structures, the PICK most uncertain are labelled, retrain, and the "
                         "held-out errors before and after are reported")
    lr.add_argument("-q", "--quiet", action="store_true", help="no report or progress bars")
    lr.set_defaults(func=_cmd_learn)


def _add_analysis_verbs(sub) -> None:
    """``bands``, ``dos``, ``demo``, ``epc``: results from H and S."""
    for name, helptext, func in (("bands", "band structure plot", _cmd_bands),
                                 ("dos", "density of states plot", _cmd_dos)):
        b = sub.add_parser(name, help=f"{helptext} from a DFT run, an HSData file or a structure")
        b.add_argument("input", help="DFT run, HSData .h5, or structure file (then --model)")
        b.add_argument("-o", "--output", default=f"{name}.png", help="PNG file")
        b.add_argument("-m", "--model", default=None, help="model for a structure input")
        if name == "bands":
            b.add_argument("--path", default=None, help="special points, e.g. GXWKGLUWLK")
            b.add_argument("--npoints", type=int, default=120)
            b.add_argument("--emin", type=float, default=-6.0, help="eV relative to E_F")
            b.add_argument("--emax", type=float, default=6.0, help="eV relative to E_F")
        else:
            b.add_argument("--kmesh", type=int, nargs=3, default=None)
            b.add_argument("--width", type=float, default=0.1, help="Gaussian width, eV")
        b.set_defaults(func=func)

    d = sub.add_parser("demo", help="the one-command demo (bands, DOS, accuracy summary)")
    d.add_argument("-o", "--output", default="demo_out", help="output folder")
    d.add_argument("--model", default="default",
                   help="model file to run instead of the shipped default")
    d.add_argument("--quick", action="store_true", help="smaller settings (for tests)")
    d.set_defaults(func=_cmd_demo)

    e = sub.add_parser("epc", help="electron-phonon coupling from a TOML config")
    e.add_argument("config")
    e.add_argument("-o", "--output", default="epc_out")
    e.set_defaults(func=_cmd_epc)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="ase-deeph",
        description="Deep-learning DFT Hamiltonians for ASE and phonopy. Start with "
        "'ase-deeph demo'; every verb has its own --help.",
    )
    sub = p.add_subparsers(dest="verb", required=True, metavar="VERB")
    _add_data_verbs(sub)
    _add_analysis_verbs(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ase-deeph`` console script.

    Bad input (a file that cannot be read, an impossible request) prints one line
    ``ase-deeph VERB: error: ...`` and returns 2; set ``ASE_DEEPH_DEBUG=1`` for the traceback.
    """
    import os

    from interfaces.errors import DeepHError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (DeepHError, FileNotFoundError) as exc:
        if os.environ.get("ASE_DEEPH_DEBUG"):
            raise
        print(f"ase-deeph {args.verb}: error: {exc}", file=sys.stderr)
        return 2
