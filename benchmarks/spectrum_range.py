"""Record the spectrum of a model's training references in its metadata.

Models trained since this key exists carry ``spectrum_range_eV`` already (``ase-deeph
train`` measures it); this script adds it to an older model file from its own dataset
and training split (reproduced from the file's train config)::

    python benchmarks/spectrum_range.py MODEL DATASET [--write]

Prints the lowest and highest Gamma-point state relative to E_F over the training
references (:func:`ase_deeph.training.runs.spectrum_range`); ``--write`` stores it in the
model file (weights unchanged).
"""

from __future__ import annotations

import argparse

from ase_deeph.model.checkpoint import read_meta, update_meta
from ase_deeph.training.config import TrainConfig
from ase_deeph.training.dataset import scan_dataset
from ase_deeph.training.runs import spectrum_range
from ase_deeph.training.trainer import config_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("dataset")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    cfg = TrainConfig(**(read_meta(args.model)["train_config"] | {"dataset": args.dataset}))
    train = config_split(cfg, scan_dataset(args.dataset)[2])[0]
    rng = spectrum_range(args.dataset, train)
    print(f"{len(train)} training references: spectrum_range_eV = {rng}")
    if args.write:
        update_meta(args.model, spectrum_range_eV=rng)
        print(f"written to {args.model}")


if __name__ == "__main__":
    main()
