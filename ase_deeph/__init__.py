"""ase-deeph: deep-learning DFT Hamiltonians for ASE and phonopy.

One folder per pipeline stage: ``generation/`` (training data from the embedded DFT),
``model/`` (the network and its file), ``training/``, ``inference/`` (H(R), S(R) at run
time), ``solvers/`` (eigenvalues, bands, DOS, E_F), ``epc/`` (electron-phonon coupling),
``cli/``; the ASE calculator in :mod:`ase_deeph.calculator`. Readers and writers of the
DFT codes live in the separate, torch-free package :mod:`interfaces`.

Torch-free names are imported eagerly; the model-related ones (``predict``,
``load_model``, ``train``) load torch only when first used (PEP 562), so that
``import ase_deeph.solvers`` and the converters work without it.
"""

from __future__ import annotations

import importlib

from interfaces.moved import install as _install_moved

__version__ = "0.1.0"

_LAZY = {
    "DeepHCalculator": "ase_deeph.calculator",
    "toy_hs": "ase_deeph.inference.toy",
    "twisted_bilayer_graphene": "ase_deeph.generation.structures",
    "predict": "ase_deeph.inference.predict",
    "load_model": "ase_deeph.model.checkpoint",
    "train": "ase_deeph.training.trainer",
    "run_epc": "ase_deeph.epc",
}

#: modules of the flat layout before issue 16 -> their new homes (deprecated aliases)
MOVED_MODULES = {
    "ase_deeph.graph": "ase_deeph.model.graph",
    "ase_deeph.so2": "ase_deeph.model.so2",
    "ase_deeph.blocks": "ase_deeph.model.blocks",
    "ase_deeph.norms": "ase_deeph.model.norms",
    "ase_deeph.checkpoint": "ase_deeph.model.checkpoint",
    "ase_deeph.config": "ase_deeph.training.config",
    "ase_deeph.dataset": "ase_deeph.training.dataset",
    "ase_deeph.losses": "ase_deeph.training.losses",
    "ase_deeph.bandloss": "ase_deeph.training.bandloss",
    "ase_deeph.refine": "ase_deeph.training.refine",
    "ase_deeph.provider": "ase_deeph.inference.provider",
    "ase_deeph.accel": "ase_deeph.inference.accel",
    "ase_deeph.toy": "ase_deeph.inference.toy",
    "ase_deeph.neighbors": "interfaces.neighbours",
    "ase_deeph.generate": "ase_deeph.generation.generate",
    "ase_deeph.generate_configs": "ase_deeph.generation.config",
    "ase_deeph.structure_spec": "ase_deeph.generation.structure_spec",
    "ase_deeph.structures": "ase_deeph.generation.structures",
    "ase_deeph.epc_cli": "ase_deeph.cli.epc",
    "ase_deeph.demo": "ase_deeph.cli.demo",
    "ase_deeph.workflows": "ase_deeph.cli.workflows",
    "ase_deeph.convert": "ase_deeph.cli.convert",
}

__all__ = ["__version__", *_LAZY]

_install_moved(MOVED_MODULES)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_deeph' has no attribute {name!r}")
