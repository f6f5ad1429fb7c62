"""Dependency rule: the torch-free modules never import torch or e3nn (checked in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

TORCH_FREE = [
    "interfaces", "interfaces.hsdata", "interfaces.h5io", "interfaces.orbitals",
    "interfaces.sph", "interfaces.checks", "interfaces.errors", "interfaces.siesta.reader",
    "interfaces.abacus.reader", "interfaces.openmx", "interfaces.deeph", "interfaces.deeptb",
    "interfaces.nao.basis_files", "interfaces.nao.overlap", "interfaces.nao.twocenter",
    "ase_deeph", "ase_deeph.inference.toy", "interfaces.neighbours", "ase_deeph.solvers",
    "ase_deeph.calculator", "ase_deeph.cli.convert", "ase_deeph.cli.workflows",
    "ase_deeph.generation.structures", "ase_deeph.epc", "ase_deeph.cli.epc",
    "ase_deeph.cli.app", "interfaces.pyscf.generator", "ase_deeph.generation.generate",
    "ase_deeph.cli.demo", "ase_deeph.inference.provider", "ase_deeph.inference",
    "ase_deeph.generation", "interfaces.siesta.writer", "interfaces.abacus.csr",
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

    importlib.import_module("ase_deeph.inference.predict")
    importlib.import_module("ase_deeph.training.trainer")
    import ase_deeph
    from ase_deeph import predict, train

    assert callable(predict) and callable(train)
    assert predict.__module__ == "ase_deeph.inference.predict" and train.__name__ == "train"
    assert ase_deeph.predict is predict and ase_deeph.train is train


def test_old_module_paths_are_deprecated_aliases():
    """Issue 16: the flat layout's module paths still import, with a DeprecationWarning."""
    import importlib
    import sys

    import pytest

    import ase_deeph
    import interfaces

    for old, new in {**ase_deeph.MOVED_MODULES, **interfaces.MOVED_MODULES}.items():
        sys.modules.pop(old, None)
        with pytest.warns(DeprecationWarning, match=new):
            module = importlib.import_module(old)
        assert module is importlib.import_module(new)


def test_cli_catches_only_the_package_errors(monkeypatch):
    """Issue 16: a bug (a plain ValueError) is not reported as a user error."""
    import pytest

    from ase_deeph.cli import app as cli_main
    from interfaces.errors import ConfigError

    def boom(error):
        def run(args):
            raise error
        return run

    monkeypatch.setattr("ase_deeph.cli.convert.convert", lambda *a, **k: boom(ConfigError("x"))(a))
    assert cli_main.main(["convert", "a", "b"]) == 2
    monkeypatch.setattr("ase_deeph.cli.convert.convert", lambda *a, **k: boom(ValueError("bug"))(a))
    with pytest.raises(ValueError, match="bug"):
        cli_main.main(["convert", "a", "b"])
