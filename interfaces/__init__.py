"""Torch-free readers and writers of DFT Hamiltonians into one code-neutral container.

Every format module ``interfaces.<code>`` exposes the same verbs, ``read(path) -> HSData``
and ``write(hs, path)``, and one self-describing registry (:data:`FORMATS` of
:class:`~interfaces.registry.Format`, see :mod:`interfaces.registry`) maps code names to
them, with how each is recognised and described, so adding a code means one module and
one :func:`register` call.

Examples
--------
>>> import interfaces
>>> hs = interfaces.read("Si_pdos.HSX")            # doctest: +SKIP
>>> interfaces.write(hs, "si_deeph", "deeph")       # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

from interfaces.errors import FormatError
from interfaces.h5io import iter_load, load, names, save, save_many
from interfaces.hsdata import HSData, irreps_string, parse_irreps
from interfaces.moved import install as _install_moved
from interfaces.registry import FORMATS, Format, detect, lookup, register

__all__ = [
    "HSData", "FormatError", "FORMATS", "Format", "register", "lookup", "read", "write",
    "detect", "load", "save", "save_many", "names", "iter_load", "irreps_string",
    "parse_irreps",
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
    "interfaces.neighbors": "interfaces.neighbours",
}
_install_moved(MOVED_MODULES)


def read(path: str | os.PathLike, code: str | None = None, **kwargs) -> HSData:
    """Read a DFT run (file or folder) into :class:`HSData`, detecting the code if needed.

    Parameters
    ----------
    path : path-like
        A file or a run folder.
    code : str, optional
        A name of :data:`FORMATS`; default :func:`detect`.
    **kwargs
        Passed to the format module's ``read`` (they win over those the name implies).

    Raises
    ------
    FormatError
        If the code cannot be detected or the run cannot be read.
    ConfigError
        If ``code`` is not a registered name (a ``ValueError`` too).
    """
    return lookup(code or detect(path)).read(path, **kwargs)


def write(hs: HSData, path: str | os.PathLike, code: str, **kwargs) -> Path:
    """Write :class:`HSData` in the format of ``code``; return the path actually written.

    Single-file writers add their code's extension when ``path`` lacks it (``.HSX`` for
    SIESTA, ``.scfout`` for OpenMX), so that :func:`read` (``detect``) reads every written
    file back; folder writers return ``path``.

    Raises
    ------
    ConfigError
        If ``code`` is unknown or has no writer (a ``ValueError`` too).
    """
    return lookup(code).write(hs, path, **kwargs)
