"""The ase-deeph HDF5 format itself, exposed with the same verbs as the DFT codes."""

from __future__ import annotations

import os

from interfaces.h5io import load, save
from interfaces.hsdata import HSData

__all__ = ["read", "write"]


def read(path: str | os.PathLike, name: str | int | None = None) -> HSData:
    """Read one structure of an ase-deeph HDF5 file."""
    return load(path, name)


def write(
    hs: HSData, path: str | os.PathLike, name: str | None = None, append: bool = False
) -> None:
    """Write one structure to an ase-deeph HDF5 file (atomically)."""
    save(hs, path, name=name, append=append)
