"""Fortran unformatted sequential records (int32 markers, little-endian), read and written.

Each record is ``int32 n | n bytes payload | int32 n``. :class:`RecordReader` checks
both markers of every record and that the file ends exactly after the last one;
runs of many records (one per matrix row) are located and gathered with numpy in
one go (:meth:`RecordReader.rows`), never with a Python loop per element.
Every problem raises :class:`interfaces.errors.FormatError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from interfaces.atomic import write_bytes
from interfaces.errors import FormatError

__all__ = ["RecordReader", "RecordWriter", "read_bytes", "atomic_write_bytes"]

_MARK = np.dtype("<i4")


def read_bytes(path: str | os.PathLike) -> bytes:
    """Return the bytes of ``path``, transparently gunzipping ``*.gz`` files.

    Raises
    ------
    FormatError
        Naming ``path`` for a missing file or a damaged or truncated gzip stream.
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise FormatError(path, f"cannot read file: {exc}") from exc


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    write_bytes(path, data)


class RecordReader:
    """Sequential reader of Fortran unformatted records held in memory.

    Parameters
    ----------
    path : str or os.PathLike
        File name (read with :func:`read_bytes`), used in error messages.
    data : bytes, optional
        File content if already loaded.
    """

    def __init__(self, path: str | os.PathLike, data: bytes | None = None):
        self.path = Path(path)
        self.data = read_bytes(path) if data is None else data
        self.buf = np.frombuffer(self.data, dtype=np.uint8)
        self.pos = 0
        self.index = 0

    def fail(self, reason: str) -> FormatError:
        """Return a FormatError locating the current record."""
        return FormatError(self.path, f"record {self.index} (byte {self.pos}): {reason}")

    def peek_size(self) -> int:
        """Payload size of the next record (-1 at end of file)."""
        if self.pos + 4 > len(self.data):
            return -1
        return int(np.frombuffer(self.data, _MARK, 1, self.pos)[0])

    def at_end(self) -> bool:
        """Return True when every byte has been consumed."""
        return self.pos == len(self.data)

    def expect_end(self) -> None:
        """Raise unless every byte of the file has been consumed."""
        if not self.at_end():
            raise self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")

    def record(self) -> bytes:
        """Return the payload of the next record, checking both markers."""
        if self.pos + 4 > len(self.data):
            raise self.fail("unexpected end of file")
        n = self.peek_size()
        if n < 0:
            raise self.fail(f"negative record length {n}")
        end = self.pos + 4 + n
        if end + 4 > len(self.data):
            raise self.fail(f"record of {n} bytes runs past the end of the file")
        if int(np.frombuffer(self.data, _MARK, 1, end)[0]) != n:
            raise self.fail("leading and trailing record markers differ")
        out = self.data[self.pos + 4:end]
        self.pos = end + 4
        self.index += 1
        return out

    def array(self, dtype, count: int | None = None) -> np.ndarray:
        """Next record as a 1-D array of ``dtype``; checks its length if ``count`` is given."""
        dtype = np.dtype(dtype)
        payload = self.record()
        if len(payload) % dtype.itemsize or (
            count is not None and len(payload) != count * dtype.itemsize
        ):
            want = "?" if count is None else count * dtype.itemsize
            self.index -= 1
            raise self.fail(f"record holds {len(payload)} bytes, expected {want} ({dtype})")
        return np.frombuffer(payload, dtype=dtype)

    def rows(self, counts: np.ndarray, dtype, width: int = 1) -> np.ndarray:
        """Read ``len(counts)`` consecutive records; record r holds ``counts[r] * width`` items.

        Returns the concatenated items, shape (sum(counts) * width,). All offsets and
        markers are computed and checked with numpy.
        """
        dtype = np.dtype(dtype)
        counts = np.asarray(counts, dtype=np.int64)
        if len(counts) and counts.min() < 0:
            raise self.fail("negative number of items in a row record")
        sizes = counts * width * dtype.itemsize  # [n_rec] payload bytes
        starts = self.pos + 4 + np.concatenate([[0], np.cumsum(sizes + 8)[:-1]]).astype(np.int64)
        end = int(starts[-1] + sizes[-1] + 4) if len(counts) else self.pos
        if end > len(self.data):
            raise self.fail(f"{len(counts)} row records run past the end of the file")
        lead = self.buf[(starts - 4)[:, None] + np.arange(4)].copy().view(_MARK)[:, 0]
        trail = self.buf[(starts + sizes)[:, None] + np.arange(4)].copy().view(_MARK)[:, 0]
        bad = np.flatnonzero((lead != sizes) | (trail != sizes))
        if len(bad):
            self.index += int(bad[0])
            self.pos = int(starts[bad[0]] - 4)
            raise self.fail(f"row record markers disagree with the expected size {sizes[bad[0]]}")
        n_items = int(counts.sum()) * width
        if n_items == 0:
            out = np.zeros(0, dtype=dtype)
        else:
            first = int(starts[0])
            elem = np.frombuffer(self.data, dtype=dtype, count=(end - 4 - first) // dtype.itemsize,
                                 offset=first)
            rel = (starts - first) // dtype.itemsize  # [n_rec] first item of each record
            per = counts * width
            idx = np.arange(n_items) + np.repeat(rel - np.concatenate([[0], np.cumsum(per)[:-1]]),
                                                 per)
            out = elem[idx]
        self.pos = end
        self.index += len(counts)
        return out


class RecordWriter:
    """Accumulates Fortran unformatted records in memory (little-endian, int32 markers)."""

    def __init__(self):
        self.parts: list[bytes] = []

    def record(self, *items) -> None:
        """Append one record whose payload is the concatenated bytes of ``items``."""
        payload = b"".join(
            x if isinstance(x, bytes) else np.ascontiguousarray(x).tobytes() for x in items
        )
        mark = np.array([len(payload)], dtype=_MARK).tobytes()
        self.parts.append(mark + payload + mark)

    def rows(self, values: np.ndarray, counts: np.ndarray, width: int = 1) -> None:
        """Append ``len(counts)`` records; record r holds the next ``counts[r] * width`` values."""
        values = np.ascontiguousarray(values)
        counts = np.asarray(counts, dtype=np.int64)
        item = values.dtype.itemsize
        sizes = counts * width * item  # [n_rec]
        total = int(sizes.sum() + 8 * len(counts))
        out = np.zeros(total, dtype=np.uint8)
        starts = 4 + np.concatenate([[0], np.cumsum(sizes + 8)[:-1]]).astype(np.int64)
        marks = sizes.astype(_MARK).view(np.uint8).reshape(-1, 4)
        out[(starts - 4)[:, None] + np.arange(4)] = marks
        out[(starts + sizes)[:, None] + np.arange(4)] = marks
        n_items = int(counts.sum()) * width
        if n_items:  # payload starts are item-aligned relative to byte 4
            per = counts * width
            span = (total - 8) // item
            elem = out[4:4 + span * item].view(values.dtype)
            rel = (starts - 4) // item - np.concatenate([[0], np.cumsum(per)[:-1]])
            elem[np.arange(n_items) + np.repeat(rel, per)] = values.reshape(-1)
        self.parts.append(out.tobytes())

    def tobytes(self) -> bytes:
        """All records written so far."""
        return b"".join(self.parts)
