"""Torch-free readers and writers of DFT Hamiltonians into one code-neutral container.

Every format module ``interfaces.<code>`` exposes the same verbs, ``read(path) -> HSData``
and ``write(hs, path)``, and one registry (:data:`FORMATS`) maps code names to them, so
adding a code means one module and one registry line.

Examples
--------
>>> import interfaces
>>> hs = interfaces.read("Si_pdos.HSX")            # doctest: +SKIP
>>> interfaces.write(hs, "si_deeph", "deeph")       # doctest: +SKIP
"""

from __future__ import annotations

import fnmatch
import importlib
import os
from pathlib import Path

from interfaces.errors import FormatError
from interfaces.h5io import iter_load, load, names, save, save_many
from interfaces.hsdata import HSData, irreps_string, parse_irreps
from interfaces.moved import install as _install_moved

__all__ = [
    "HSData", "FormatError", "FORMATS", "read", "write", "detect", "load", "save",
    "save_many", "names", "iter_load", "irreps_string", "parse_irreps",
]

#: modules of the flat layout before issue 16 -> their new homes (deprecated aliases)
MOVED_MODULES = {
    "interfaces.siesta_records": "interfaces.siesta.records",
    "interfaces.siesta_text": "interfaces.siesta.text",
    "interfaces.siesta_write": "interfaces.siesta.writer",
    "interfaces.abacus_blocks": "interfaces.abacus.blocks",
    "interfaces.abacus_csr": "interfaces.abacus.csr",
    "interfaces.abacus_text": "interfaces.abacus.text",
    "interfaces.pyscf_basis": "interfaces.pyscf.basis",
    "interfaces.pyscf_fold": "interfaces.pyscf.fold",
    "interfaces.nao_overlap": "interfaces.nao.overlap",
    "interfaces.twocenter": "interfaces.nao.twocenter",
}
_install_moved(MOVED_MODULES)

#: code name -> (module, file-name patterns that identify a run of that code), in detection order
FORMATS: dict[str, tuple[str, tuple[str, ...]]] = {
    "siesta": ("interfaces.siesta.reader", ("*.HSX", "*.TSHS", "*.HSX.gz", "*.TSHS.gz")),
    "abacus": ("interfaces.abacus.reader", (
        "data-HR-sparse_SPIN0.csr*", "hrs1_nao.csr*", "data-SR-sparse_SPIN0.csr*",
        "srs1_nao.csr*", "sr_nao.csr*", "SR.csr*", "STRU", "OUT.*")),
    "openmx": ("interfaces.openmx", ("*.scfout",)),
    "deeptb": ("interfaces.deeptb", ("atomic_numbers.dat", "basis.dat")),
    "deeph-legacy": ("interfaces.deeph", ("orbital_types.dat",)),
    "deeph": ("interfaces.deeph", ("POSCAR", "atom_pairs*", "info.json")),
    "hsdata": ("interfaces.h5format", ("*.h5", "*.hdf5")),
}
#: extra keyword arguments a code name implies for its module's verbs
_CODE_KWARGS = {"deeph-legacy": {"layout": "legacy"}, "deeph": {"layout": "new"}}


def _module(code: str):
    if code not in FORMATS:
        raise ValueError(f"unknown code {code!r}; known: {sorted(FORMATS)}")
    return importlib.import_module(FORMATS[code][0])


def _visible(names) -> list[str]:
    """File names without hidden ones (``.x.h5.123.tmp`` temporaries of atomic writes)."""
    return sorted(n for n in names if not n.startswith("."))


def detect(path: str | os.PathLike) -> str:
    """Guess the code of a file or of the run in a folder from file names.

    Hidden files (names starting with ``.``, such as the temporaries of an interrupted
    atomic write) are never recognised.

    Raises
    ------
    FormatError
        If nothing (or the path itself) is recognised.
    """
    path = Path(path)
    if path.is_file():
        files = _visible([path.name])
    elif path.is_dir():
        files = _visible(p.name for p in path.iterdir())
    else:
        raise FormatError(path, "no such file or folder")
    for code, (_, patterns) in FORMATS.items():
        if code == "hsdata" and path.is_dir():
            continue
        if any(fnmatch.fnmatch(f, p) for f in files for p in patterns):
            return code
    raise FormatError(path, "could not recognise the DFT code from the (non-hidden) file names")


def read(path: str | os.PathLike, code: str | None = None, **kwargs) -> HSData:
    """Read a DFT run (file or folder) into :class:`HSData`, detecting the code if needed."""
    code = code or detect(path)
    if code == "deeph":
        return _module(code).read(path, **kwargs)  # the module detects legacy/new itself
    return _module(code).read(path, **{**_CODE_KWARGS.get(code, {}), **kwargs})


def write(hs: HSData, path: str | os.PathLike, code: str, **kwargs) -> Path:
    """Write :class:`HSData` in the format of ``code``; return the path actually written.

    Single-file writers add their code's extension when ``path`` lacks it (``.HSX`` for
    SIESTA, ``.scfout`` for OpenMX), so that :func:`read` (``detect``) reads every written
    file back; folder writers return ``path``.
    """
    out = _module(code).write(hs, path, **{**_CODE_KWARGS.get(code, {}), **kwargs})
    return out if isinstance(out, Path) else Path(path)
