"""Atomic writes, the one implementation: a temporary next to the target, renamed when complete.

A killed or failing write therefore never leaves a half-written target, and the previous
file (if any) stays intact. Temporaries are named ``.<target>.<pid>.<token>.tmp``: hidden
(never picked up by format detection, which skips dot-files) and recognisable, so the next
write to the same target removes those of processes that no longer run (a SIGKILL leaves
no clean-up to Python). Files and folders get the ordinary permissions (``0o666 & ~umask``
and ``0o777 & ~umask``), not the private ``0o600`` / ``0o700`` of :mod:`tempfile`.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "atomic_folder", "write_bytes", "write_text", "clean_stale",
           "is_temporary"]

_TMP = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp$")
#: temporaries of older versions (``tempfile.mkstemp``): ``.<target>.<random>.tmp``
_OLD_TMP = re.compile(r"^\.(?P<target>.+)\.(?P<token>[a-z0-9_]{8})\.tmp$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def is_temporary(name: str) -> bool:
    """Tell whether a file name is one of this module's temporaries (any version)."""
    return bool(_TMP.match(name) or _OLD_TMP.match(name))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(target: str | os.PathLike) -> list[Path]:
    """Remove the temporaries of ``target`` left by processes that no longer run.

    Returns
    -------
    list of Path
        The removed files or folders.
    """
    target = Path(target)
    if not target.parent.is_dir():
        return []
    removed = []
    for p in target.parent.glob(f".{target.name}.*.tmp"):
        m = _TMP.match(p.name)
        stale = (m is not None and m["target"] == target.name and not _alive(int(m["pid"]))) \
            or (m is None and (o := _OLD_TMP.match(p.name)) is not None
                and o["target"] == target.name)
        if stale:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path next to ``target``; rename it over ``target`` on success.

    The temporary does not exist yet when yielded (writers create it); stale temporaries
    of the same target are removed first (:func:`clean_stale`).

    Examples
    --------
    >>> with atomic_path("out.h5") as tmp:          # doctest: +SKIP
    ...     write_everything(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    tmp = _temp_path(target)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``target``; move its files into ``target`` on success.

    A new target folder appears in one rename; into an existing folder every file is moved
    with ``os.replace`` (each file atomic). On error nothing is left behind.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(target)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{target} exists and is not a folder")
    tmp = _temp_path(target)
    tmp.mkdir(mode=0o777 & ~_umask())
    try:
        yield tmp
        if not target.exists():
            os.rename(tmp, target)
            return
        for item in tmp.iterdir():
            os.replace(item, target / item.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text)
