"""ase-deeph: deep-learning DFT Hamiltonians for ASE and phonopy.

Torch-free names are imported eagerly; the model-related ones (``predict``,
``load_model``, ``train``) load torch only when first used (PEP 562), so that
``import ase_deeph.solvers`` and the converters work without it.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_LAZY = {
    "DeepHCalculator": "ase_deeph.calculator",
    "toy_hs": "ase_deeph.toy",
    "twisted_bilayer_graphene": "ase_deeph.structures",
    "predict": "ase_deeph.predict",
    "load_model": "ase_deeph.checkpoint",
    "train": "ase_deeph.train",
    "run_epc": "ase_deeph.epc",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ase_deeph' has no attribute {name!r}")


class _Package(types.ModuleType):
    """The package module, keeping lazy functions ahead of same-named submodules.

    The lazy functions ``predict`` and ``train`` share their names with submodules;
    importing a submodule would bind the *module* here, so that ``from ase_deeph import
    predict`` returned a module once a calculator had run. Those two submodules stay
    reachable as ``importlib.import_module("ase_deeph.predict")`` and
    ``from ase_deeph.predict import ...``.
    """

    def __setattr__(self, name: str, value) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
