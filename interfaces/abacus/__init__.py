"""ABACUS (LCAO): CSR H(R) / S(R) files.

Reader (:mod:`.reader`), writer (:mod:`.writer`), CSR records (:mod:`.csr`), blocks
(:mod:`.blocks`), STRU and log files (:mod:`.text`).
"""

from __future__ import annotations

from interfaces.abacus.reader import (
    H_NAMES,
    S_NAMES,
    read,
    write,
    write_input,
)

__all__ = [
    "read", "write", "write_input", "H_NAMES", "S_NAMES",
]
