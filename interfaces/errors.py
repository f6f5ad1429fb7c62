"""The one exception type raised for bad input files."""

from __future__ import annotations

import os

__all__ = ["FormatError"]


class FormatError(ValueError):
    """A file could not be read or written as the format requires.

    Every reader and writer in :mod:`interfaces` raises this type (and only this
    type) for truncated, corrupted, wrong-version or mismatched input.

    Parameters
    ----------
    path : str or os.PathLike
        The offending file (or folder).
    reason : str
        What is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
