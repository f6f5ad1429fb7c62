"""Uncertainty of a prediction from the spread of a committee's members.

Every member's H(R) is solved on the same k-points with the same overlap and projection
threshold; each member's states are taken relative to its own Fermi level (a
gauge-invariant training loss leaves every member's energy zero free), and the standard
deviation over members, state by state, is the band uncertainty. Per atom, the spread of
the members' H blocks (each member shifted by its best ``mu S`` first) says *where* the
committee disagrees. Torch-free: it works on :class:`~interfaces.HSData` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_deeph import solvers
from interfaces.hsdata import HSData

__all__ = ["BandUncertainty", "committee_spread", "atom_spread", "WINDOW", "THRESHOLD"]

#: half width (eV) of the window around E_F where the uncertainty is summarised
WINDOW = 2.0
#: default warning level of the committee spread near E_F (eV): the band-error target of
#: the shipped models (15 meV mean within 2 eV of E_F); a model card may set its own
THRESHOLD = 0.015


@dataclass(frozen=True)
class BandUncertainty:
    """Committee spread of one structure's states.

    Attributes
    ----------
    band : ndarray, shape (nspins, nk, nbands)
        Standard deviation over members of each state's energy relative to the member's
        own E_F, eV (NaN where a member lacks the band).
    near_fermi : float
        Root mean square of ``band`` over the states within ``WINDOW`` eV of E_F (of the
        band edges for a gapped spectrum), eV.
    atoms : ndarray, shape (n_atoms,)
        Root mean square member spread of the H blocks that touch each atom, eV.
    members : int
        Committee size.
    """

    band: np.ndarray
    near_fermi: float
    atoms: np.ndarray
    members: int


def committee_spread(members: list[HSData], kpts, weights, n_electrons: float,
                     threshold: float, smearing=("fermi-dirac", 0.0),
                     window: float = WINDOW) -> BandUncertainty:
    """Solve every member at ``kpts`` and return the spread of their states.

    Parameters
    ----------
    members : list of HSData
        Member predictions of one structure (same blocks and S), member 0 first.
    kpts, weights : array
        Fractional k-points [nk, 3] and their weights [nk].
    n_electrons : float
        Valence electrons per cell (for each member's E_F).
    threshold : float
        S projection threshold of the dense solves (the one the calculator used).
    smearing : (str, float)
        Occupation function and width, eV.
    window : float
        Half width of the summary window around member 0's E_F, eV (counted from the band
        edges when gapped: :func:`ase_deeph.solvers.fermi_window`).
    """
    rel, n_keep = [], None
    for hs in members:
        e = solvers.solve(hs, kpts, ill_threshold=threshold).eigenvalues  # [ns, nk, nb]
        keep = int(np.isfinite(e).sum(axis=-1).min())
        n_keep = keep if n_keep is None else min(n_keep, keep)
        ef = solvers.fermi_level(e[..., :keep], n_electrons, weights,
                                 solvers.spin_degeneracy(hs.spin), *smearing).fermi_level
        rel.append(e - ef)
    stack = np.stack([r[..., :n_keep] for r in rel])  # [members, ns, nk, nb]
    band = stack.std(axis=0)
    near = solvers.fermi_window(stack[0], 0.0, window)  # from the band edges if gapped
    near_fermi = float(np.sqrt(np.mean(band[near] ** 2))) if near.any() else 0.0
    return BandUncertainty(band=band, near_fermi=near_fermi, atoms=atom_spread(members),
                           members=len(members))


def atom_spread(members: list[HSData]) -> np.ndarray:
    """RMS member spread of the H blocks touching each atom (gauge-aligned), eV."""
    h0, s = members[0].h, members[0].s
    aligned = []
    for hs in members:
        d = hs.h - h0  # [nspin, n_values]
        mu = (d @ s) / max(float(s @ s), 1e-30) if s is not None else np.zeros(len(d))
        aligned.append(hs.h - mu[:, None] * (s if s is not None else 0.0))
    var = np.stack(aligned).var(axis=0).sum(axis=0)  # [n_values]
    hs = members[0]
    per_block = np.add.reduceat(var, hs.block_ptr[:-1]) if hs.n_edges else np.zeros(0)
    size = np.diff(hs.block_ptr)  # [n_edges]
    total = np.zeros(hs.n_atoms)
    count = np.zeros(hs.n_atoms)
    for end in hs.edge_index:  # both atoms of each block
        np.add.at(total, end, per_block)
        np.add.at(count, end, size)
    return np.sqrt(total / np.maximum(count, 1))
