"""Test-only helpers for the PySCF generator tests: a tiny Bloch sum and generalized eigensolver."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from interfaces.hsdata import HSData


def bloch(hs: HSData, values: np.ndarray, kpt) -> np.ndarray:
    """Dense X(k) = sum_R X(R) exp(+i 2 pi k.R), k fractional, (n_orb, n_orb) complex."""
    off = hs.orbital_offsets
    out = np.zeros((hs.n_orbitals, hs.n_orbitals), dtype=complex)
    phase = np.exp(2j * np.pi * hs.cell_shift @ np.asarray(kpt, dtype=float))
    for e in range(hs.n_edges):
        i, j = hs.edge_index[:, e]
        blk = values[hs.block_ptr[e]:hs.block_ptr[e + 1]].reshape(hs.norbs[i], hs.norbs[j])
        out[off[i]:off[i + 1], off[j]:off[j + 1]] += phase[e] * blk
    return out


def eigvals(hs: HSData, kpt) -> np.ndarray:
    """Band energies (eV) at fractional k from stored H(R), S(R)."""
    return scipy.linalg.eigh(bloch(hs, hs.h[0], kpt), bloch(hs, hs.s, kpt), eigvals_only=True)
