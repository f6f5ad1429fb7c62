"""SIESTA: ``.HSX`` / ``.TSHS`` files.

Reader (:mod:`.reader`), HSX writer (:mod:`.writer`), Fortran records (:mod:`.records`),
text files such as fdf, EIG, KP (:mod:`.text`).
"""

from __future__ import annotations

from interfaces.siesta.reader import (
    read,
    read_eig,
    read_kp,
    shells_from_nlz,
    write,
    write_fdf,
)

__all__ = [
    "read", "write", "write_fdf", "read_eig", "read_kp", "shells_from_nlz",
]
