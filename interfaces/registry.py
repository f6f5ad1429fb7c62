"""The registry of file formats: one self-describing :class:`Format` per code name.

Each entry says which module reads (and maybe writes) the format, how a run of it is
recognised (file-name globs and/or a ``sniff`` function), which keyword arguments its name
implies, and a one-line description; the command line builds its ``--from`` / ``--to``
choices and help from it. :data:`FORMATS` is ordered: :func:`detect` tries the formats in
that order and returns the first that claims a path. Modules are imported only when a
format is read or written, so importing the registry stays cheap.

Adding a code means one module with ``read(path, **kw) -> HSData`` (and
``write(hs, path, **kw)``) plus one :func:`register` call.

Examples
--------
>>> from interfaces.registry import FORMATS, lookup
>>> lookup("deeph-legacy").kwargs["layout"]
'legacy'
>>> [f.name for f in FORMATS.values() if f.can_write][:2]
['siesta', 'abacus']
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from interfaces.errors import ConfigError, FormatError

__all__ = ["Format", "FORMATS", "register", "lookup", "codes", "detect", "visible_names"]


def visible_names(path: str | os.PathLike) -> list[str]:
    """Return the non-hidden names a detection looks at, sorted.

    Parameters
    ----------
    path : path-like
        A file (its own name) or a folder (the names of its entries).

    Returns
    -------
    list of str
        The names, without hidden ones (``.x.h5.123.tmp`` temporaries of atomic writes,
        ``._x`` AppleDouble files); empty if ``path`` does not exist.
    """
    path = Path(path)
    if path.is_file():
        found: Iterable[str] = [path.name]
    elif path.is_dir():
        found = (p.name for p in path.iterdir())
    else:
        found = []
    return sorted(n for n in found if not n.startswith("."))


@dataclass(frozen=True)
class Format:
    """One file format of a DFT code (or of ase-deeph itself).

    Parameters
    ----------
    name : str
        Code name used by :func:`interfaces.read`, :func:`interfaces.write` and the CLI.
    module : str
        Dotted path of the module with ``read(path, **kwargs)`` (and ``write(hs, path,
        **kwargs)`` when ``can_write``); imported lazily by :meth:`load`.
    description : str
        One line for help texts.
    patterns : tuple of str
        File-name globs; a path is claimed when one matches its name (a file) or the name
        of one of its entries (a folder). Hidden names never match.
    sniff : callable, optional
        ``sniff(path) -> bool``, for formats that names alone do not identify; it is
        given the path only where ``is_folder`` / ``in_folder`` allow it and must
        not raise for unreadable content. A path is claimed when a pattern matches *or*
        ``sniff`` says yes.
    can_write : bool
        Whether the module has a writer.
    kwargs : mapping
        Keyword arguments the name implies for ``read`` and ``write`` (e.g.
        ``deeph-legacy`` -> ``layout="legacy"``); the caller's own keywords win.
    is_folder : bool
        A run is a folder of files (DeepH, DeePTB): a lone file path is never claimed.
    in_folder : bool
        For single-file formats: a folder holding the file is a run too (SIESTA, OpenMX,
        ABACUS); ``False`` for formats claimed only as files (the HDF5 datasets).
    """

    name: str
    module: str
    description: str
    patterns: tuple[str, ...] = ()
    sniff: Callable[[Path], bool] | None = field(default=None, compare=False)
    can_write: bool = True
    kwargs: Mapping[str, Any] = field(default_factory=dict, hash=False)
    is_folder: bool = False
    in_folder: bool = True

    def __post_init__(self) -> None:
        if not self.name or not self.description.strip():
            raise ValueError("a Format needs a name and a one-line description")
        if not self.patterns and self.sniff is None:
            raise ValueError(f"format {self.name!r} needs patterns or a sniff function")
        object.__setattr__(self, "patterns", tuple(self.patterns))
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))

    def load(self) -> ModuleType:
        """Import and return the format's module."""
        return importlib.import_module(self.module)

    def claims(self, path: str | os.PathLike) -> bool:
        """Tell whether ``path`` (a file or a folder) looks like a run of this format.

        Only file names (and whatever ``sniff`` looks at) are used; hidden names never
        count.
        """
        path = Path(path)
        if path.is_file():
            if self.is_folder:
                return False
        elif not path.is_dir() or not (self.is_folder or self.in_folder):
            return False
        found = visible_names(path)
        if any(fnmatch.fnmatch(n, p) for n in found for p in self.patterns):
            return True
        return self.sniff is not None and bool(self.sniff(path))

    def read(self, path: str | os.PathLike, **kwargs: Any):
        """Read ``path`` with the module's ``read``, adding the keywords the name implies.

        Returns
        -------
        HSData
        """
        return self.load().read(path, **{**self.kwargs, **kwargs})

    def write(self, hs, path: str | os.PathLike, **kwargs: Any) -> Path:
        """Write ``hs`` with the module's ``write``; return the path actually written.

        Raises
        ------
        ConfigError
            If the format has no writer.
        """
        if not self.can_write:
            raise ConfigError(f"format {self.name!r} cannot be written; writable: "
                              f"{codes(writable=True)}")
        out = self.load().write(hs, path, **{**self.kwargs, **kwargs})
        return out if isinstance(out, Path) else Path(path)


#: code name -> :class:`Format`, in detection order
FORMATS: dict[str, Format] = {}


def register(fmt: Format, *, before: str | None = None, replace: bool = False) -> Format:
    """Add ``fmt`` to :data:`FORMATS` (at the end, or just before the format ``before``).

    Parameters
    ----------
    fmt : Format
        The format to add.
    before : str, optional
        Name of a registered format that ``fmt`` must be tried before in :func:`detect`.
    replace : bool
        Allow replacing a format of the same name (it keeps its place unless ``before``).

    Returns
    -------
    Format
        ``fmt``, so that ``register`` can be used in an assignment.

    Raises
    ------
    ValueError
        If the name is taken (without ``replace``) or ``before`` is unknown.
    """
    if fmt.name in FORMATS and not replace:
        raise ValueError(f"format {fmt.name!r} is already registered")
    if before is not None and before not in FORMATS:
        raise ValueError(f"unknown format {before!r} to register {fmt.name!r} before")
    if before is None:
        FORMATS[fmt.name] = fmt
        return fmt
    FORMATS.pop(fmt.name, None)
    items = list(FORMATS.items())
    k = [name for name, _ in items].index(before)
    FORMATS.clear()
    FORMATS.update(items[:k] + [(fmt.name, fmt)] + items[k:])
    return fmt


def lookup(name: str) -> Format:
    """Return the registered format ``name``.

    Raises
    ------
    ConfigError
        If no format has that name (a ``ValueError`` too); the message lists the known ones.
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown code {name!r}; known: {sorted(FORMATS)}") from None


def codes(writable: bool | None = None) -> list[str]:
    """Return the registered names in detection order (only the writable ones if asked)."""
    return [n for n, f in FORMATS.items() if writable is None or f.can_write == writable]


def detect(path: str | os.PathLike) -> str:
    """Guess the code of a file or of the run in a folder.

    The formats of :data:`FORMATS` are tried in order; the first that claims the path
    (:meth:`Format.claims`) wins. Hidden files (names starting with ``.``, such as the
    temporaries of an interrupted atomic write) are never recognised.

    Raises
    ------
    FormatError
        If nothing (or the path itself) is recognised.
    """
    path = Path(path)
    if not (path.is_file() or path.is_dir()):
        raise FormatError(path, "no such file or folder")
    for fmt in FORMATS.values():
        if fmt.claims(path):
            return fmt.name
    raise FormatError(path, "could not recognise the DFT code from the (non-hidden) file names")


# ------------------------------------------------------------------------ the formats
#: files of a new-layout (DeepH-dock) folder besides POSCAR and info.json, any of which
#: makes it DeepH (the H/S/DM file names of ``interfaces.deeph.NEW_FILES``)
DEEPH_NEW_MATRICES = ("hamiltonian.h5", "overlap.h5", "hamiltonian_pred.h5",
                      "density_matrix.h5")


def _sniff_deeph(path: Path) -> bool:
    """Tell a new-layout DeepH folder: ``POSCAR`` + ``info.json`` + a DeepH matrix file.

    ``POSCAR`` and ``info.json`` alone do not count (every VASP run has a POSCAR).
    """
    found = set(visible_names(path))
    if any(n.startswith("atom_pairs") for n in found):
        return True
    return {"POSCAR", "info.json"} <= found and any(m in found for m in DEEPH_NEW_MATRICES)


register(Format(
    "siesta", "interfaces.siesta.reader",
    "SIESTA .HSX / .TSHS file (optionally .gz), or a run folder holding one",
    patterns=("*.HSX", "*.TSHS", "*.HSX.gz", "*.TSHS.gz")))
register(Format(
    "abacus", "interfaces.abacus.reader",
    "ABACUS LCAO run folder (or OUT.* folder, or one of its H(R)/S(R) CSR files)",
    patterns=("data-HR-sparse_SPIN0.csr*", "hrs1_nao.csr*", "data-SR-sparse_SPIN0.csr*",
              "srs1_nao.csr*", "sr_nao.csr*", "SR.csr*", "STRU", "OUT.*")))
register(Format(
    "openmx", "interfaces.openmx",
    "OpenMX .scfout file, or a run folder holding one",
    patterns=("*.scfout",)))
register(Format(
    "deeptb", "interfaces.deeptb",
    "DeePTB DefaultDataset folder (atomic_numbers.dat, basis.dat, hamiltonians.h5)",
    patterns=("atomic_numbers.dat", "basis.dat"), is_folder=True))
register(Format(
    "deeph-legacy", "interfaces.deeph",
    "DeepH-pack / DeepH-E3 folder (element.dat, orbital_types.dat, hamiltonians.h5)",
    patterns=("orbital_types.dat",), kwargs={"layout": "legacy"}, is_folder=True))
register(Format(
    "deeph", "interfaces.deeph",
    "DeepH-dock folder (POSCAR, info.json, hamiltonian.h5); reads either DeepH layout",
    sniff=_sniff_deeph, is_folder=True))
register(Format(
    "hsdata", "interfaces.h5format",
    "ase-deeph HDF5 dataset (.h5 / .hdf5) of one or many structures",
    patterns=("*.h5", "*.hdf5"), in_folder=False))
