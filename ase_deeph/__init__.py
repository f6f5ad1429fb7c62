"""ase-deeph: deep-learning DFT Hamiltonians for ASE and phonopy."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
