"""Gaussian bases as radial tables: fast overlaps of large cells.

A contracted spherical Gaussian ``R(r) = N sum_i c_i n_i r^l exp(-a_i r^2)`` is a
numerical radial orbital like any other, so the two-centre machinery of
:mod:`interfaces.nao.twocenter` (Bessel transforms, ``I_L(d)`` tabulated once per pair of
radial functions, Gaunt coefficients, real harmonics in the internal order) gives its
overlap blocks for any bond vector without an integral call per pair.

Measured against PySCF's ``int1e_ovlp`` in ``gth-dzvp-molopt-sr-compact``, one thread on
a quiet machine (``python benchmarks/overlap_tables.py``, three runs): the 1,084-atom
twisted bilayer plus 3 H (155,213 blocks within 8 A) agrees to 2.2e-9; PySCF takes
2.0-2.6 s, the tables 1.0-1.1 s once built and 2.7-3.5 s including building the four C/H
element-pair tables. Hence the threshold :data:`TABLE_EDGES` (about twice this cell)
above which :func:`interfaces.pyscf.overlap` uses the tables.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
from ase.units import Bohr

from interfaces.nao.radial import RadialBasis, RadialOrbital
from interfaces.nao.twocenter import TwoCenterTables

__all__ = ["TABLE_EDGES", "gaussian_radial_basis", "overlap_tables"]

#: structures with at least this many blocks get their overlap from the tables (below, PySCF
#: integral calls are cheaper than building the tables, 1.2 s per element pair)
TABLE_EDGES = 300_000
_TAIL = 1e-12  # radial cutoff: every primitive below this fraction of its peak scale
_DR = 0.005  # radial grid step, Angstrom


def _norm_factor(l_val: int, exps: np.ndarray) -> np.ndarray:
    """``n_i`` with ``int r^2 (n_i r^l exp(-a_i r^2))^2 dr = 1`` (bohr units)."""
    from pyscf import gto

    return gto.gto_norm(l_val, exps)


def gaussian_radial_basis(symbol: str, shells: list) -> RadialBasis:
    """Radial orbitals (Angstrom) of one element's PySCF basis, in PySCF's shell order.

    Parameters
    ----------
    symbol : str
        Element.
    shells : list
        PySCF shells ``[l, [exp, c1, ..., cn], ...]`` (exponents in bohr^-2); each
        contraction column is one normalised orbital.
    """
    from pyscf import gto

    orbitals: list[RadialOrbital] = []
    for shell in shells:
        l_val, prim = int(shell[0]), np.asarray(shell[1:], dtype=float)
        exps, coefs = prim[:, 0], prim[:, 1:]
        r_cut = np.sqrt(np.log(1.0 / _TAIL) / exps.min())  # bohr
        r = np.arange(0.0, r_cut + _DR / Bohr, _DR / Bohr)  # bohr
        for col in coefs.T:
            c = col * _norm_factor(l_val, exps)
            # <R|R> = sum_ij c_i c_j int r^(2l+2) exp(-(a_i + a_j) r^2) dr
            overlap = gto.gaussian_int(2 * l_val + 2, exps[:, None] + exps[None, :])
            c = c / np.sqrt(c @ overlap @ c)
            values = (c[None, :] * r[:, None] ** l_val
                      * np.exp(-exps[None, :] * r[:, None] ** 2)).sum(1)
            zeta = 1 + sum(o.l == l_val for o in orbitals)
            orbitals.append(RadialOrbital(l=l_val, n=0, zeta=zeta, cutoff=float(r[-1] * Bohr),
                                          r=r * Bohr, values=values * Bohr**-1.5))
    return RadialBasis(symbol=symbol, orbitals=tuple(orbitals), source="pyscf")


@lru_cache(maxsize=8)
def _tables(key: str) -> TwoCenterTables:
    basis_def = json.loads(key)
    return TwoCenterTables({el: gaussian_radial_basis(el, sh) for el, sh in basis_def.items()})


def overlap_tables(basis_def: dict) -> TwoCenterTables:
    """Two-centre tables of a PySCF basis definition (cached per definition and process)."""
    return _tables(json.dumps(basis_def, sort_keys=True))
