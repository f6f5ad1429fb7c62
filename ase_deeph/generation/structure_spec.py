"""Read a user's structure: a file ASE can read, or a safe ``ase.build`` call as text.

``read_structure("POSCAR")`` reads a file; ``read_structure('bulk("InP", "zincblende",
a=5.87)')`` evaluates a call of one of :data:`BUILDERS` whose arguments are literals only
(numbers, strings, tuples, lists, booleans, None), parsed with :mod:`ast`: no ``eval``, so
a generator config can never run code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
from ase import Atoms

from interfaces.errors import ConfigError

__all__ = ["BUILDERS", "StructureSpecError", "read_structure", "is_build_spec"]


class StructureSpecError(ConfigError):
    """A structure file or ``ase.build`` spec cannot be turned into atoms."""


def _builders() -> dict:
    from ase import build

    names = ("bulk", "graphene", "graphene_nanoribbon", "mx2", "molecule", "nanotube",
             "fcc100", "fcc110", "fcc111", "bcc100", "bcc110", "bcc111", "hcp0001",
             "diamond100", "diamond111")
    return {n: getattr(build, n) for n in names}


#: ``ase.build`` functions a spec may call.
BUILDERS = tuple(sorted(_builders()))


def is_build_spec(text: str) -> bool:
    """Tell whether ``text`` looks like ``name(...)`` with ``name`` in :data:`BUILDERS`."""
    head = text.strip().split("(", 1)[0].strip()
    return text.strip().endswith(")") and head in BUILDERS


def _literal(node: ast.AST, spec: str):
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise StructureSpecError(
            f"structure spec {spec!r}: arguments must be literals (numbers, strings, "
            f"lists), got {ast.unparse(node)!r}") from exc


def _from_spec(spec: str) -> Atoms:
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as exc:
        raise StructureSpecError(f"structure spec {spec!r} is not a valid call: {exc}") from exc
    call = tree.body
    if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name):
        raise StructureSpecError(f"structure spec {spec!r} must be a call such as "
                                 f"bulk(\"Si\"); allowed functions: {', '.join(BUILDERS)}")
    if call.func.id not in BUILDERS:
        raise StructureSpecError(f"structure spec {spec!r}: {call.func.id!r} is not one of "
                                 f"{', '.join(BUILDERS)}")
    args = [_literal(a, spec) for a in call.args]
    kwargs = {k.arg: _literal(k.value, spec) for k in call.keywords}
    try:
        return _builders()[call.func.id](*args, **kwargs)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise StructureSpecError(f"structure spec {spec!r} failed in ase.build: "
                                 f"{type(exc).__name__}: {exc}") from exc


def _from_file(path: Path) -> Atoms:
    from ase.io import read

    if not path.is_file():
        raise StructureSpecError(f"structure file {path} does not exist (and the text is not "
                                 f"an ase.build call of {', '.join(BUILDERS)})")
    try:
        atoms = read(path)
    except Exception as exc:  # ASE raises many types for unreadable files
        raise StructureSpecError(f"ASE cannot read structure file {path}: "
                                 f"{type(exc).__name__}: {exc}") from exc
    if isinstance(atoms, list):  # pragma: no cover - read() without index returns one
        atoms = atoms[-1]
    return atoms


def read_structure(spec: str | Path) -> Atoms:
    """Atoms from a structure file or an ``ase.build`` spec.

    Parameters
    ----------
    spec : str or path-like
        A file ASE can read (CIF, POSCAR, xyz, ...) or a call such as
        ``'bulk("Si", "diamond", a=5.431, cubic=True)'``.

    Returns
    -------
    ase.Atoms
        The structure, Angstrom; positions and cell checked finite.

    Raises
    ------
    StructureSpecError
        Unreadable file, unknown builder, non-literal argument, non-finite numbers.
    """
    text = str(spec)
    atoms = _from_spec(text) if is_build_spec(text) else _from_file(Path(text))
    if len(atoms) == 0:
        raise StructureSpecError(f"structure {text!r} has no atoms")
    if not (np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(atoms.cell[:]))):
        raise StructureSpecError(f"structure {text!r} has non-finite positions or cell")
    return atoms
