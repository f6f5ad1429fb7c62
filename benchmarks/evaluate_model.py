"""Held-out accuracy of a trained model against the DFT data it never saw (for model cards).

For every test structure recorded in the model file (or the structures given): predict H(R)
with the model and S(R) from the basis, then compare with the DFT H(R), S(R):

* block MAE of H after removing the optimal per-structure shift mu S (the energy gauge);
* band energies within +-2 eV of E_F on a Gamma-centred k-mesh (the SCF mesh of the
  generator configs), after aligning the Fermi levels (electron counting on the same mesh
  for both, Fermi-Dirac 0.1 eV as in the DFT runs, ``--smearing``). The prediction is
  solved as the calculator does (S(k) directions below 1e-2 projected out when the basis
  is ghost-prone, ``provider.dense_threshold``); the DFT H(R) with S(k) directions below
  ``provider.REFERENCE_THRESHOLD`` projected out, because the folded DFT H(R) itself has
  spurious states along them (e.g. structure 000015 of bilayer_graphene.toml: unprojected
  VBM 0.1398 eV, SCF 0.1607 eV, projected 0.1611 eV). ``bands_unprojected_*`` compare
  with the unprojected DFT H(R)::

    python benchmarks/evaluate_model.py MODEL.safetensors DATASET.h5 [--kmesh 6 6 1]

The comparison functions live in :mod:`ase_deeph.learn.evaluate` (``ase-deeph learn``
evaluates its models with them).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

import interfaces
from ase_deeph import solvers
from ase_deeph.cli.demo import compare_bands
from ase_deeph.inference.provider import REFERENCE_THRESHOLD, ModelProvider
from ase_deeph.learn.evaluate import (  # also imported from here by si_transfer.py
    gauge_mae_meV,
    predicted_levels,
    reference_levels,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("dataset")
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--kmesh", type=int, nargs=3, default=(6, 6, 1))
    parser.add_argument("--ghosts", choices=("project", "penalty"), default="project",
                        help="as DeepHCalculator(ghosts=...): 1e-2 projection or local penalty")
    parser.add_argument("--smearing", type=float, default=0.1,
                        help="Fermi-Dirac width (eV) of the E_F used to align the bands; "
                             "default 0.1, the smearing of the generator configs")
    args = parser.parse_args()
    provider = ModelProvider.from_any(args.model, device="cpu")
    names = args.names or provider.meta["dataset"]["test_names"]
    rows = []
    for name in names:
        ref = interfaces.load(args.dataset, name)
        pred = provider(ref.atoms)
        mesh = solvers.kmesh(ref.atoms, args.kmesh, gamma_centred=True)
        fd = {"smearing": "fermi-dirac", "width": args.smearing}
        e_pred, ef_pred = predicted_levels(provider, pred, mesh, args.ghosts, **fd)
        row = {"name": name, "h_mae_meV": gauge_mae_meV(pred, ref)}
        for key, t in (("", REFERENCE_THRESHOLD), ("_unprojected", solvers.eigen.ILL_THRESHOLD)):
            e_ref, ef_ref = reference_levels(ref, mesh, t, **fd)
            bands = compare_bands(e_pred[0], e_ref[0], ef_pred, ef_ref)
            row |= {f"bands{key}_mae_meV": bands["mae_meV"],
                    f"bands{key}_max_meV": bands["max_meV"], "n_states": bands["n_states"]}
        rows.append(row)
    summary = {
        "n_structures": len(rows),
        "h_mae_meV": float(np.mean([r["h_mae_meV"] for r in rows])),
        **{f"bands{key}_{stat}_meV": float(fn([r[f"bands{key}_{stat}_meV"] for r in rows]))
           for key in ("", "_unprojected") for stat, fn in (("mae", np.mean), ("max", np.max))},
        "structures": rows,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
