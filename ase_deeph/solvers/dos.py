"""Density of states with Gaussian broadening, Mulliken-projected DOS and populations.

Units and normalisation: DOS in states / eV / cell, spin degeneracy included
(``deg`` = 2 for spinless data, 1 per channel for collinear data and for spinors),
k weights normalised to 1, so ``integral DOS dE = deg * n_bands`` per channel.

Mulliken weight of orbital mu in state (n, k)::

    m_mu,nk = Re[ conj(C_mu,n) (S(k) C)_mu,n ],     sum_mu m_mu,nk = 1

(``C^dagger S C = 1``), so ``PDOS_mu(E) = deg * sum_nk w_k m_mu,nk g(E - e_nk)``
sums to the total DOS. Spinor weights of the up and down halves are added per
spatial orbital.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ase_deeph.solvers.bloch import bloch_matrices
from ase_deeph.solvers.eigen import Solution
from ase_deeph.solvers.occupations import FermiResult, state_weights
from interfaces.hsdata import HSData

__all__ = [
    "DOS",
    "Mulliken",
    "OrbitalTable",
    "ProjectedDOS",
    "dos",
    "mulliken_populations",
    "mulliken_weights",
    "orbital_table",
    "projected_dos",
]


@dataclass(frozen=True)
class DOS:
    """Total density of states.

    Attributes
    ----------
    energies : ndarray, shape (ne,)
        Energy grid, eV (absolute, not shifted by E_F).
    dos : ndarray, shape (nspins, ne)
        DOS per spin channel, states / eV / cell, spin degeneracy included.
    width : float
        Gaussian standard deviation, eV.
    fermi_level : float
        E_F in eV (NaN if unknown), for plotting.
    """

    energies: np.ndarray
    dos: np.ndarray
    width: float
    fermi_level: float = math.nan

    @property
    def total(self) -> np.ndarray:
        """DOS summed over spin channels, shape (ne,)."""
        return self.dos.sum(axis=0)


@dataclass(frozen=True)
class OrbitalTable:
    """Per spinless orbital: its atom, element symbol, shell and angular momentum.

    Attributes
    ----------
    atom, shell, l, m : ndarray, shape (n_orbitals,), int
        Atom index, shell index within the atom, angular momentum, m in -l..l.
    symbol : ndarray, shape (n_orbitals,), str
        Element symbol.
    """

    atom: np.ndarray
    shell: np.ndarray
    l: np.ndarray  # noqa: E741
    m: np.ndarray
    symbol: np.ndarray


@dataclass(frozen=True)
class ProjectedDOS:
    """Mulliken-projected DOS (states / eV / cell, spin degeneracy included).

    Attributes
    ----------
    energies : ndarray, shape (ne,)
        Energy grid, eV.
    orbital : ndarray, shape (nspins, n_orbitals, ne)
        Per spinless orbital (spinor: both spin halves).
    atom : ndarray, shape (nspins, n_atoms, ne)
        Summed per atom.
    element : dict of str to ndarray, shape (nspins, ne)
        Summed per element.
    angular : ndarray, shape (nspins, l_max + 1, ne)
        Summed per angular momentum l.
    width : float
        Gaussian standard deviation, eV.
    fermi_level : float
        E_F in eV (NaN if unknown).
    """

    energies: np.ndarray
    orbital: np.ndarray
    atom: np.ndarray
    element: dict
    angular: np.ndarray
    width: float
    fermi_level: float = math.nan

    @property
    def total(self) -> np.ndarray:
        """Sum over orbitals, shape (nspins, ne) (equals the total DOS)."""
        return self.orbital.sum(axis=1)


@dataclass(frozen=True)
class Mulliken:
    """Mulliken populations (electrons).

    Attributes
    ----------
    orbital : ndarray, shape (nspins, n_orbitals)
        Electrons per spinless orbital and channel (spin degeneracy included).
    atom : ndarray, shape (nspins, n_atoms)
        Electrons per atom and channel.
    total : float
        All electrons (equals the electron count used for E_F).
    """

    orbital: np.ndarray
    atom: np.ndarray
    total: float


def orbital_table(hs: HSData) -> OrbitalTable:
    """Atom, shell, l, m and element of every spinless orbital in matrix order."""
    tmpl = {}
    for el, shells in hs.basis.items():
        ls = np.repeat(shells, [2 * x + 1 for x in shells]).astype(np.int64)
        sh = np.repeat(np.arange(len(shells)), [2 * x + 1 for x in shells])
        ms = np.concatenate([np.arange(-x, x + 1) for x in shells]) if shells else np.zeros(0)
        tmpl[el] = (ls, sh, ms.astype(np.int64))
    symbols = hs.atoms.get_chemical_symbols()
    cat = [np.concatenate([tmpl[s][q] for s in symbols]) for q in range(3)]
    atom = np.repeat(np.arange(hs.n_atoms), hs.norbs)
    return OrbitalTable(atom, cat[1], cat[0], cat[2], np.array(symbols)[atom])


def _grid(e: np.ndarray, energies, width: float, npts: int) -> np.ndarray:
    if energies is not None:
        return np.asarray(energies, dtype=np.float64)
    lo, hi = np.nanmin(e) - 6 * width, np.nanmax(e) + 6 * width
    return np.linspace(lo, hi, npts)


def _gauss(e: np.ndarray, grid: np.ndarray, width: float) -> np.ndarray:
    """Normalised Gaussians, shape e.shape + (ne,); NaN energies give 0."""
    x = (grid - np.nan_to_num(e, nan=np.inf)[..., None]) / width
    return np.exp(-0.5 * x * x) / (math.sqrt(2 * math.pi) * width)


def dos(eigenvalues: np.ndarray, weights=None, energies=None, width: float = 0.1,
        spin_degeneracy: int = 2, npts: int = 2001, fermi_level: float = math.nan) -> DOS:
    """Total DOS with Gaussian broadening.

    Parameters
    ----------
    eigenvalues : ndarray, shape (nspins, nk, nbands)
        Band energies, eV.
    weights : array_like, shape (nk,), optional
        k weights (normalised here; default uniform).
    energies : array_like, shape (ne,), optional
        Energy grid in eV (default: spectrum +- 6 widths, ``npts`` points).
    width : float
        Gaussian standard deviation, eV.
    spin_degeneracy : int
        2 for spinless data, else 1.
    npts : int
        Grid size when ``energies`` is not given.
    fermi_level : float
        Stored for plotting.

    Returns
    -------
    DOS
        ``dos`` of shape (nspins, ne) in states / eV / cell.
    """
    e = np.asarray(eigenvalues, dtype=np.float64)
    w = state_weights(e, weights)  # [nspins, nk, nbands]
    grid = _grid(e, energies, width, npts)
    out = np.zeros((e.shape[0], len(grid)))
    for q in range(e.shape[1]):
        out += np.einsum("sn,sne->se", w[:, q], _gauss(e[:, q], grid, width))
    return DOS(grid, spin_degeneracy * out, float(width), float(fermi_level))


def mulliken_weights(hs: HSData, solution: Solution) -> np.ndarray:
    """Mulliken weights Re[conj(C) (S C)] per spinless orbital, shape (nspins, nk, n_orb, nbands).

    Needs ``solution.eigenvectors``. Each (spin, k, band) column sums to 1 (0 for NaN bands).
    """
    if solution.eigenvectors is None:
        raise ValueError("the Solution holds no eigenvectors: solve(..., return_vectors=True)")
    c = solution.eigenvectors  # [nspins, nk, n, nbands]
    n_orb = hs.n_orbitals
    out = np.empty(c.shape[:2] + (n_orb, c.shape[3]))
    for q, k in enumerate(solution.kpts):
        s = bloch_matrices(hs, k[None], which=("s",)).s[0]  # [n, n]
        m = np.real(np.conj(c[:, q]) * (s[None] @ c[:, q]))  # [nspins, n, nbands]
        out[:, q] = m[:, :n_orb] + m[:, n_orb:] if m.shape[1] == 2 * n_orb else m
    return out


def _sum_by(x: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Sum axis 1 of x (nspins, n_orb, ...) into ``n`` groups given integer labels."""
    out = np.zeros((x.shape[0], n) + x.shape[2:])
    np.add.at(out, (slice(None), labels), x)
    return out


def projected_dos(hs: HSData, solution: Solution, weights=None, energies=None,
                  width: float = 0.1, npts: int = 2001,
                  fermi_level: float = math.nan) -> ProjectedDOS:
    """Mulliken-projected DOS per orbital, atom, element and l (see module docstring).

    Parameters
    ----------
    hs : HSData
        The data that was solved (for S(k) and the orbital table).
    solution : Solution
        From ``solve(hs, kpts, return_vectors=True)``.
    weights, energies, width, npts, fermi_level
        As in :func:`dos`.

    Returns
    -------
    ProjectedDOS
        Projections in states / eV / cell.
    """
    e = solution.eigenvalues
    w = state_weights(e, weights)
    mw = mulliken_weights(hs, solution)  # [nspins, nk, n_orb, nbands]
    grid = _grid(e, energies, width, npts)
    orb = np.zeros((e.shape[0], hs.n_orbitals, len(grid)))
    for q in range(e.shape[1]):
        g = _gauss(e[:, q], grid, width) * w[:, q, :, None]  # [nspins, nbands, ne]
        orb += mw[:, q] @ g
    orb *= solution.spin_degeneracy
    table = orbital_table(hs)
    elements = {el: orb[:, table.symbol == el].sum(axis=1) for el in hs.basis}
    lmax = int(table.l.max(initial=0))
    return ProjectedDOS(grid, orb, _sum_by(orb, table.atom, hs.n_atoms), elements,
                        _sum_by(orb, table.l, lmax + 1), float(width), float(fermi_level))


def mulliken_populations(hs: HSData, solution: Solution, fermi: FermiResult,
                         weights=None) -> Mulliken:
    """Mulliken populations ``q_mu = deg * sum_nk w_k f_nk m_mu,nk`` (electrons).

    ``fermi`` must come from the same eigenvalues (its occupations are used).
    """
    w = state_weights(solution.eigenvalues, weights) * fermi.occupations
    mw = mulliken_weights(hs, solution)
    orb = solution.spin_degeneracy * np.einsum("skmn,skn->sm", mw, w)
    atom = _sum_by(orb, orbital_table(hs).atom, hs.n_atoms)
    return Mulliken(orb, atom, float(orb.sum()))
