"""The ``ase-deeph`` command line.

The ``ase-deeph`` command: argument parsing (:mod:`.app`) and one module per verb group
(:mod:`.convert`, :mod:`.workflows` for bands / dos / predict, :mod:`.epc`, :mod:`.demo`).
"""

from __future__ import annotations

from ase_deeph.cli.app import main

__all__ = ["main"]
