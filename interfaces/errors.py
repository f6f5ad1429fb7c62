"""The one exception type raised for bad input files, and the guards that produce it.

Readers wrap their parsing in :func:`reading` (or decorate ``read`` with :func:`reader`),
so that whatever a corrupted file provokes deep inside a parser (a ``zlib.error`` of a
damaged ``.gz``, an ``EOFError`` of a truncated one, a bare ``ValueError`` of a bad
number) reaches the caller as :class:`FormatError` naming the file.
"""

from __future__ import annotations

import contextlib
import functools
import os
import zlib
from typing import Callable, Iterator, TypeVar

__all__ = ["FormatError", "PARSE_ERRORS", "reading", "reader"]

_F = TypeVar("_F", bound=Callable)


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


#: what parsers raise on truncated, corrupted or inconsistent input (``gzip.BadGzipFile``
#: is an OSError, ``UnicodeDecodeError`` a ValueError)
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, IndexError, KeyError, TypeError, OverflowError, EOFError, zlib.error, OSError,
)


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str = "cannot read") -> Iterator[None]:
    """Re-raise every :data:`PARSE_ERRORS` of the block as :class:`FormatError` naming ``path``.

    A FormatError raised inside passes unchanged (it names the file more precisely).

    Examples
    --------
    >>> with reading("run/x.HSX.gz"):                  # doctest: +SKIP
    ...     data = gzip.decompress(blob)
    """
    try:
        yield
    except FormatError:
        raise
    except PARSE_ERRORS as exc:
        raise FormatError(path, f"{what}: {type(exc).__name__}: {exc}") from exc


def reader(func: _F) -> _F:
    """Decorate ``read(path, ...)`` so that bad input raises only :class:`FormatError`."""

    @functools.wraps(func)
    def wrapper(path, *args, **kwargs):
        with reading(path):
            return func(path, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
