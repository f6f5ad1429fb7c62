"""Dependency rule: the torch-free modules never import torch or e3nn (checked in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

TORCH_FREE = [
    "interfaces", "interfaces.hsdata", "interfaces.h5io", "interfaces.orbitals",
    "interfaces.sph", "interfaces.checks", "interfaces.errors", "interfaces.siesta",
    "interfaces.abacus", "interfaces.openmx", "interfaces.deeph", "interfaces.deeptb",
    "interfaces.nao", "interfaces.nao_overlap", "interfaces.twocenter", "ase_deeph",
    "ase_deeph.toy", "ase_deeph.neighbors", "ase_deeph.solvers", "ase_deeph.calculator",
    "ase_deeph.convert", "ase_deeph.workflows", "ase_deeph.structures", "ase_deeph.epc",
    "ase_deeph.epc_cli", "ase_deeph.cli", "interfaces.pyscf", "ase_deeph.generate",
    "ase_deeph.demo", "ase_deeph.provider",
]


def _import_in_fresh_python(modules: list[str]) -> subprocess.CompletedProcess:
    script = textwrap.dedent(f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
        bad = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "e3nn"))
        assert not bad, f"torch/e3nn imported: {{bad[:5]}}"
    """)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)


def test_core_modules_do_not_import_torch() -> None:
    proc = _import_in_fresh_python(TORCH_FREE)
    assert proc.returncode == 0, proc.stderr


def test_lazy_functions_are_not_shadowed_by_submodules():
    """Issue 16: after the submodules are imported, the names are still the functions."""
    import importlib

    importlib.import_module("ase_deeph.predict")
    importlib.import_module("ase_deeph.train")
    from ase_deeph import predict, train

    assert callable(predict) and callable(train)
    assert predict.__module__ == "ase_deeph.predict" and train.__name__ == "train"
    assert importlib.import_module("ase_deeph.predict").predict is predict
