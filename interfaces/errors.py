"""The package's error hierarchy (one root) and the guards that produce format errors.

Every error that a user's input can provoke derives from :class:`DeepHError`: a bad
file (:class:`FormatError`), a bad configuration or option (:class:`ConfigError`), a model
file or a model that does not fit the structure (:class:`ModelError`); PySCF failures
(:mod:`interfaces.pyscf`) derive from it too. The command line catches this root only, so
that a bug still shows its traceback instead of passing for a user error.

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

__all__ = [
    "DeepHError", "FormatError", "ConfigError", "ModelError", "PARSE_ERRORS", "reading",
    "reader",
]

_F = TypeVar("_F", bound=Callable)


class DeepHError(Exception):
    """Root of every error that bad user input (files, configs, models, options) raises."""


class ConfigError(DeepHError, ValueError):
    """A configuration file or option is invalid (the message names the file or option)."""


class ModelError(DeepHError, ValueError):
    """A model file is unreadable, or a model does not fit the structure or basis asked of it."""


class FormatError(DeepHError, ValueError):
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
#: is an OSError, ``UnicodeDecodeError`` a ValueError; h5py raises RuntimeError on damaged
#: HDF5 heaps and B-trees)
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, IndexError, KeyError, TypeError, OverflowError, EOFError, zlib.error, OSError,
    RuntimeError,
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
