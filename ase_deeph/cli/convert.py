"""Convert one DFT run, or a whole tree of runs, between formats (``ase-deeph convert``).

A run that fails (a damaged ``.gz``, a truncated file, NaN coordinates...) is reported in
:class:`ConvertReport` with the reason, which names the offending file, and the others are
converted. Hidden files and folders (names starting with ``.``, e.g. the temporaries of
an interrupted atomic write) are never taken for runs.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

import interfaces
from interfaces import FormatError, HSData

__all__ = ["ConvertReport", "find_runs", "convert"]


@dataclass(frozen=True)
class ConvertReport:
    """Outcome of :func:`convert`.

    Attributes
    ----------
    converted : tuple of (str, str)
        ``(source run, written name or path)`` of each success.
    failed : tuple of (str, str)
        ``(source run, reason)`` of each failure; nothing is skipped silently.
    """

    converted: tuple[tuple[str, str], ...]
    failed: tuple[tuple[str, str], ...]


def find_runs(root: str | os.PathLike, code: str | None = None) -> list[Path]:
    """Return the runs under ``root``.

    That is ``root`` itself if it is a file or one run, else every folder (or file)
    below it that the registry recognises (as ``code`` when given). Hidden files and
    folders (``.name``) and the generator's shard folders (``*.parts``) are skipped.
    """
    root = Path(root)
    if root.is_file():
        return [root]
    try:
        found = interfaces.detect(root)
        if code is None or found == code or code.startswith(found) or found.startswith(code):
            return [root]
    except FormatError:
        pass
    runs: list[Path] = []
    for folder, subdirs, _files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith(".")
                            and not d.endswith(".parts"))
        here = Path(folder)
        if here == root:
            continue
        try:
            found = interfaces.detect(here)
        except FormatError:
            continue
        if code is None or found == code:
            runs.append(here)
            subdirs.clear()
    if code in ("siesta", "openmx", "hsdata") or (code is None and not runs):
        inside = tuple(runs)  # files of run folders already found are not runs of their own
        runs += sorted(p for p in root.rglob("*") if p.is_file() and not _hidden(p, root)
                       and _single_file_run(p, code) and not any(r in p.parents for r in inside))
    return runs


def _hidden(path: Path, root: Path) -> bool:
    """Tell whether ``path`` is hidden (``.name``) or inside a generator's shard folder.

    ``ase-deeph generate -o X.h5`` keeps its per-structure shards in ``X.h5.parts/``;
    they repeat the structures of ``X.h5`` and are never runs of their own.
    """
    parts = path.relative_to(root).parts
    return any(p.startswith(".") for p in parts) or any(p.endswith(".parts") for p in parts[:-1])


def _single_file_run(path: Path, code: str | None) -> bool:
    patterns = {"siesta": ("*.HSX",), "openmx": ("*.scfout",), "hsdata": ("*.h5", "*.hdf5")}
    codes = [code] if code else list(patterns)
    return any(fnmatch.fnmatch(path.name, p) for c in codes for p in patterns.get(c, ()))


def _is_dataset(run: Path, code: str | None) -> bool:
    if code not in (None, "hsdata") or not run.is_file():
        return False
    try:
        return interfaces.detect(run) == "hsdata"
    except FormatError:
        return False


def _structures(run: Path, label: str, code: str | None):
    """``(name, source, HSData)`` of a run: one, or every structure of an HSData dataset."""
    if _is_dataset(run, code):
        return [(f"{label}__{name}", f"{run}:{name}", hs) for name, hs in interfaces.iter_load(run)]
    return [(label, str(run), interfaces.read(run, code))]


def _label(run: Path, root: Path) -> str:
    rel = run.relative_to(root) if run != root else Path(run.name)
    return str(rel).replace(os.sep, "__") or run.name


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    from_code: str | None = None,
    to_code: str = "hsdata",
    progress: bool = True,
) -> ConvertReport:
    """Convert every run under ``src`` into ``dst``.

    Parameters
    ----------
    src : path-like
        A run (file or folder) or a tree of runs. ase-deeph HDF5 datasets count as runs
        of every structure they hold, so ``convert(folder_of_datasets, "all.h5")``
        merges datasets (structure names become ``<file>__<name>``).
    dst : path-like
        With ``to_code="hsdata"`` one HDF5 dataset holding every structure (written
        atomically once at the end); otherwise a folder (one run) or, for several runs,
        a folder with one sub-folder per run.
    from_code, to_code : str
        Codes of :data:`interfaces.FORMATS`; ``from_code=None`` detects each run.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    ConvertReport
        Successes (with the path actually written: single-file writers add their
        extension, e.g. ``.HSX``) and failures with reasons naming the offending file; a
        failing run never stops the others.
    """
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    runs = find_runs(src, from_code)
    if not runs:
        raise FormatError(src, "no DFT run found")
    done: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    items: list[tuple[str, HSData]] = []
    sources: list[str] = []
    for run in tqdm(runs, desc="convert", unit="run", disable=not progress):
        label = _label(run, src)
        try:
            if to_code == "hsdata":
                for name, source, hs in _structures(run, label, from_code):
                    items.append((name, hs))
                    sources.append(source)
                continue
            target = dst if len(runs) == 1 else dst / label
            written = interfaces.write(interfaces.read(run, from_code), target, to_code)
            done.append((str(run), str(written)))
        except Exception as exc:  # any failure of one run is reported, never raised
            failed.append((str(run), f"{type(exc).__name__}: {exc}"))
    if items:
        names = interfaces.save_many(items, dst, append=dst.exists())
        done += list(zip(sources, names, strict=True))
    return ConvertReport(tuple(done), tuple(failed))
