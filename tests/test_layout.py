"""Issue 16: the layout's rules, checked on the source (sizes, private imports, stage order)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for pkg in ("ase_deeph", "interfaces") for p in (ROOT / pkg).rglob("*.py"))
#: a stage may import only stages listed after it (lazy imports inside functions included)
ORDER = ["cli", "learn", "epc", "calculator", "training", "inference", "generation", "model",
         "solvers", "settings"]


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size_and_no_private_imports(path):
    assert len(path.read_text().splitlines()) <= 450
    for module, names in _imports(path):
        if module.split(".")[0] in ("ase_deeph", "interfaces"):
            private = [n for n in names if n.startswith("_") and n != "__version__"]
            assert not private, f"{path.name} imports private {private} from {module}"


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ase_deeph" and len(parts) > 1 else None


def test_stages_import_only_downwards():
    bad = []
    for path in ROOT.joinpath("ase_deeph").rglob("*.py"):
        rel = path.relative_to(ROOT / "ase_deeph").with_suffix("").parts
        here = rel[0]
        if here not in ORDER:
            continue
        for module, _ in _imports(path):
            there = _stage(module)
            if there in ORDER and there != here and ORDER.index(there) < ORDER.index(here):
                bad.append(f"{'/'.join(rel)} -> {module}")
    assert not bad, bad


def test_interfaces_never_import_ase_deeph():
    for path in ROOT.joinpath("interfaces").rglob("*.py"):
        assert not [m for m, _ in _imports(path) if m.split(".")[0] == "ase_deeph"], path
