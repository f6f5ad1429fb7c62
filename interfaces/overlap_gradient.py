"""Orbital-gradient blocks of an overlap S(R): the one container of every producer.

Producers: :func:`interfaces.pyscf.overlap_gradient` (Gaussian bases, PySCF
``int1e_ipovlp``) and :func:`interfaces.nao.overlap.overlap_gradient` (numerical radial
bases). Consumer: the on-site D of electron-phonon coupling
(:func:`ase_deeph.epc.onsite_d_pyscf`, :func:`ase_deeph.epc.onsite_d_nao`).

Sign convention (one for all producers; ``docs/epc.md`` section 2.4)
---------------------------------------------------------------
For block e = (i, j, R) and Cartesian component a (x, y, z)::

    D^a_{mu nu} = < d phi_{i mu} / d tau_i^a , 0 | phi_{j nu} , R >

the derivative with respect to the centre tau_i of the **bra** orbital, all other centres
fixed, in 1/Angstrom. Since phi(r - tau) depends on tau only through r - tau, this is
``-<d phi_{i mu}/d r^a | phi_{j nu}, R>`` (minus PySCF's ``int1e_ipovlp``). Consequences:

* off-site (i != j or R != 0): ``D_e = dS_ij(R)/dtau_i = -dS_ij(R)/dd`` with the bond
  vector ``d = tau_j + R @ cell - tau_i``; moving atom j instead changes S_ij(R) by
  ``-u . D_e`` (and ``dS_e/dtau_j = D_{rev(e)}^T``, rev(e) = (j, i, -R));
* on-site (i, i, 0): only the bra centre moves, so D is the antisymmetric block between
  shells l and l +- 1 (the total derivative of S_ii(0) is zero), exactly the on-site
  ``<d phi_mu / du | phi_nu>`` that the full EPC form needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interfaces.hsdata import HSData

__all__ = ["OverlapGradient"]


@dataclass(frozen=True, eq=False)
class OverlapGradient:
    """Orbital-gradient blocks D aligned with the block layout of an overlap HSData.

    Parameters
    ----------
    overlap : HSData
        S(R) of the structure (internal orbital convention, ``h`` None); its
        ``edge_index``, ``cell_shift`` and ``block_ptr`` define the layout of ``values``.
    values : ndarray, shape (3, n_values)
        ``D^a`` (a = x, y, z) in 1/Angstrom, with the sign convention of the module
        docstring: block e = (i, j, R) of component a is
        ``values[a, block_ptr[e]:block_ptr[e + 1]]`` reshaped C-order to (n_i, n_j) and
        equals ``<d phi_{i mu} / d tau_i^a, 0 | phi_{j nu}, R>``. On-site blocks included.
    """

    overlap: HSData
    values: np.ndarray  # [3, n_values]

    def __post_init__(self) -> None:
        if np.shape(self.values) != (3, self.overlap.n_values):
            raise ValueError(f"values must have shape (3, {self.overlap.n_values}), "
                             f"got {np.shape(self.values)}")

    def block(self, i: int, j: int, shift=(0, 0, 0)) -> np.ndarray:
        """Return D of block (i, j, R).

        Parameters
        ----------
        i, j : int
            Atoms of the bra and the ket orbitals.
        shift : sequence of 3 int
            Lattice translation R of atom j.

        Returns
        -------
        ndarray, shape (3, n_i, n_j)
            ``D^a`` of the block, 1/Angstrom.

        Raises
        ------
        KeyError
            When the block (i, j, R) is not stored.
        """
        hs = self.overlap
        e = int(hs.find_edges([i], [j], np.asarray(shift).reshape(1, 3))[0])
        if e < 0:
            raise KeyError(f"no block (i={i}, j={j}, R={tuple(shift)})")
        return self.values[:, hs.block_index([e])[0]]  # [3, n_i, n_j]
