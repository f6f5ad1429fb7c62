"""Old module paths kept as deprecated aliases of their new homes (issue 16 relayout).

One mechanism for both packages: a meta-path finder that, for an old dotted name, imports
the new module, registers it under the old name too, and warns once with a
:class:`DeprecationWarning` naming the new path. No stub files.

Examples
--------
>>> import interfaces.siesta_write                    # doctest: +SKIP
DeprecationWarning: interfaces.siesta_write moved to interfaces.siesta.writer
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from collections.abc import Mapping

__all__ = ["MovedModules", "install"]


class MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finder and loader of old module names; ``moved`` maps old -> new dotted names."""

    def __init__(self, moved: Mapping[str, str]) -> None:
        self.moved = dict(moved)

    def find_spec(self, fullname, path=None, target=None):  # noqa: D102
        if fullname not in self.moved:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):  # noqa: D102
        new = self.moved[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes in the next release",
                      DeprecationWarning, stacklevel=3)
        module = importlib.import_module(new)
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module) -> None:  # noqa: D102
        """Nothing to run: the new module is already executed."""


def install(moved: Mapping[str, str]) -> None:
    """Register the aliases of ``moved`` (old -> new dotted module names), once."""
    for finder in sys.meta_path:
        if isinstance(finder, MovedModules):
            finder.moved.update(moved)
            return
    sys.meta_path.append(MovedModules(moved))
