"""Finite-difference real-space derivatives dH, dS and D = <d phi | phi> (docs/epc.md 3.2).

Recipe: a (2N+1)^3 supercell of the primitive cell; every primitive atom kappa of cell 0 is
displaced by +-delta along x, y, z; H and S of each displaced supercell come from any
provider ``f(atoms) -> HSData`` (toy model, PySCF, a trained model) with its own edge list.
Each supercell block (I, J, S) is mapped to the primitive-cell pair (a, R_m; b, R_n); of its
periodic images the one closest to the displaced atom (sum of both end distances) is kept,
equidistant images share the block with weight 1/multiplicity (both (a, b) and (b, a) pick
the same image, so the stored derivative stays Hermitian). Only blocks present in both
geometries are differenced (a block crossing a hard cutoff has no derivative). With
``symmetry=True`` only one atom per space-group orbit is displaced and the others follow by
rotating its blocks (:mod:`ase_deeph.epc.symmetry`).

D^{kappa alpha} holds the rows of dS on the displaced atom (off-site D) plus the on-site block
``<d phi_mu / d u | phi_nu>`` from a basis provider (``onsite_d(symbol) -> (3, n, n)``), the
bra-centre derivative of :class:`interfaces.overlap_gradient.OverlapGradient` (one sign
convention for every producer). Without one the result says ``onsite_d="missing"`` and
:func:`ase_deeph.epc.coupling.coupling` refuses the full form and uses the quasi-elastic one
unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms

from ase_deeph.epc.supercell import assemble, box_size, displacement_records, supercell_map
from ase_deeph.epc.symmetry import complete_records, displacement_symmetry
from ase_deeph.inference.base import HSProvider
from interfaces.hsdata import HSData
from interfaces.overlap_gradient import OverlapGradient
from interfaces.pyscf.basis import DEFAULT_BASIS

__all__ = ["EPCDerivatives", "derivatives", "supercell_map", "onsite_d_pyscf", "onsite_d_nao",
           "sum_rule_error", "block_decay"]

#: a provider (:class:`~ase_deeph.inference.base.HSProvider`) or a plain f(atoms) -> HSData
Provider = HSProvider | Callable[[Atoms], HSData]
OnsiteD = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class EPCDerivatives:
    """Real-space derivatives of H and S with respect to one displaced atom of cell 0.

    Attributes
    ----------
    atoms : ase.Atoms
        Primitive structure (Angstrom); atom order = derivative order kappa.
    hs0 : HSData
        H(R), S(R) of the undisplaced primitive structure from the same provider.
    cell_pairs : ndarray, shape (P, 2, 3), int64
        Cells (R_m, R_n) of each stored orbital block (rows in R_m, columns in R_n).
    dh : ndarray, shape (P, N_uc, 3, n_orb, n_orb)
        ``dH_{mu R_m, nu R_n} / du_{kappa alpha}(0)`` in eV/Angstrom (n_orb per primitive cell,
        orbitals in ``hs0`` order, image weights applied).
    ds : ndarray, same shape as ``dh``
        dS / du in 1/Angstrom.
    d : ndarray, same shape as ``dh``
        D = <d phi_mu / du | phi_nu> in 1/Angstrom: rows of the displaced atom only, on-site block
        included when ``onsite_d == "provided"`` (zero otherwise).
    onsite_d : {"provided", "missing"}
        Whether the on-site block of D is present.
    delta : float
        Displacement step, Angstrom.
    scheme : {"central", "forward"}
        Finite-difference scheme (central: error O(delta^2); forward: O(delta), documented only).
    n_box : tuple of int
        N per axis of the (2N+1)-cell box.
    ill_threshold : float
        S(k) eigenvalues below this are projected out when bands are solved (the
        provider's own ``ill_threshold``, 1e-6 by default).
    n_provider_calls : int
        Provider calls made (primitive cell included); fewer with ``symmetry=True``.
    """

    atoms: Atoms
    hs0: HSData
    cell_pairs: np.ndarray
    dh: np.ndarray
    ds: np.ndarray
    d: np.ndarray
    onsite_d: str
    delta: float
    scheme: str
    n_box: tuple[int, int, int]
    ill_threshold: float = 1e-6
    n_provider_calls: int = 0

    @property
    def n_orb(self) -> int:
        """Orbitals per primitive cell."""
        return int(self.dh.shape[-1])


def derivatives(provider: Provider, atoms: Atoms, n_box=1, delta: float = 0.01,
                scheme: str = "central", onsite_d: OnsiteD | None = None,
                prune: float = 1e-10, ill_threshold: float | None = None,
                symmetry: bool = True, symprec: float = 1e-5) -> EPCDerivatives:
    """Finite-difference dH, dS and D of every primitive atom (``docs/epc.md`` section 3.2).

    Parameters
    ----------
    provider : callable
        ``provider(atoms) -> HSData`` with H (spin "none") and S; called once on ``atoms`` and
        ``6 N_uc`` (central) or ``3 N_uc + 1`` (forward) times on the supercell (N_uc: the
        number of displaced atoms, one per symmetry orbit with ``symmetry=True``).
    atoms : ase.Atoms
        Primitive cell, periodic in 3-D.
    n_box : int or tuple of int
        Box of 2 n_box + 1 cells per axis (one int for all three, or three ints, e.g.
        ``(2, 2, 0)`` for a layer whose vacuum axis is already longer than twice the
        H range); it must contain the H range around the displaced atom.
    delta : float
        Displacement in Angstrom (0.005-0.01 recommended; float64 providers only).
    scheme : {"central", "forward"}
        Central differences (default, error O(delta^2)) or forward (O(delta)).
    onsite_d : callable, optional
        ``onsite_d(symbol) -> (3, n, n)`` on-site ``<d phi_mu / d u_alpha | phi_nu>`` in 1/Angstrom
        (e.g. :func:`onsite_d_pyscf`); None marks the result ``onsite_d="missing"``.
    prune : float
        Drop supercell blocks whose derivatives are all below this (eV/Angstrom, 1/Angstrom).
    ill_threshold : float, optional
        S projection threshold of the band solves; default: the provider's
        :class:`~ase_deeph.solvers.conditioning.OverlapPolicy` (a model: 1e-2 for
        ghost-prone structures, else 1e-6; a plain function: 1e-6).
    symmetry : bool
        Displace one atom per orbit of the space group (spglib, operations that keep the
        box lattice) and rotate its derivatives onto the others
        (:mod:`ase_deeph.epc.symmetry`); equal to the direct result up to O(delta^2)
        (central) or O(delta) (forward). The provider must be rotation covariant.
    symprec : float
        spglib symmetry tolerance in Angstrom.

    Returns
    -------
    EPCDerivatives
    """
    box = _checked_box(scheme, n_box, atoms)
    counted = _CountingProvider(provider)
    hs0 = _reference(counted, atoms)
    sym = displacement_symmetry(atoms, box, symprec) if symmetry else None
    displaced = sym.representatives.tolist() if sym is not None else range(len(atoms))
    records = displacement_records(counted, atoms, n_box, delta, scheme, displaced, prune)
    if sym is not None:
        records = complete_records(records, sym, atoms, hs0.basis, symprec)
    pairs, dh, ds, d = assemble(records, hs0, onsite_d)
    return EPCDerivatives(atoms=atoms.copy(), hs0=hs0, cell_pairs=pairs, dh=dh, ds=ds, d=d,
                          onsite_d="missing" if onsite_d is None else "provided",
                          delta=float(delta), scheme=scheme,
                          n_box=tuple(int(x) for x in box),
                          ill_threshold=float(ill_threshold if ill_threshold is not None
                                              else _provider_threshold(provider, hs0)),
                          n_provider_calls=counted.calls)


def _checked_box(scheme: str, n_box, atoms: Atoms) -> np.ndarray:
    """Validate the scheme and the cell; return N per axis."""
    if scheme not in ("central", "forward"):
        raise ValueError(f"scheme must be 'central' or 'forward', got {scheme!r}")
    box = box_size(n_box)
    if not np.any(box) or not np.all(atoms.pbc):
        raise ValueError("derivatives need a 3-D periodic cell and n_box >= 1 along some "
                         "axis (a box of 2 n_box + 1 cells per axis)")
    return box


def _reference(provider: Provider, atoms: Atoms) -> HSData:
    """H and S of the undisplaced primitive cell, checked to be spinless."""
    hs0 = provider(atoms)
    if hs0.spin != "none" or hs0.h is None or hs0.s is None:
        raise ValueError("the EPC provider must return spinless ('none') H and S")
    return hs0


class _CountingProvider:
    """Wrap a provider and count its calls."""

    def __init__(self, provider: Provider):
        self.provider, self.calls = provider, 0

    def __call__(self, structure: Atoms) -> HSData:
        self.calls += 1
        return self.provider(structure)


def _provider_threshold(provider, hs0: HSData) -> float:
    """Return the provider's dense projection threshold of ``hs0`` on a 4x4x4 mesh."""
    from ase_deeph.inference.base import as_provider
    from ase_deeph.solvers import mesh_points

    mesh = mesh_points((4, 4, 4), gamma_centred=True)
    return float(as_provider(provider).policy.dense_threshold(hs0, mesh))


def block_decay(derivs: EPCDerivatives) -> tuple[np.ndarray, np.ndarray]:
    """Return block distances and norms for checking the decay of dH across the box.

    Per (cell pair, kappa): the distance (Angstrom) of the farther cell origin from cell 0 and
    the largest |dH| (eV/Angstrom); both shape (P * N_uc,). Truncation at the box edge is
    justified when the values at the largest distances are small compared with the maximum
    (or compare with ``n_box + 1``).
    """
    cell = np.asarray(derivs.atoms.cell)
    far = np.linalg.norm(derivs.cell_pairs @ cell, axis=-1).max(axis=1)  # [P]
    mx = np.abs(derivs.dh).max(axis=(2, 3, 4))  # [P, N_uc]
    return np.repeat(far, mx.shape[1]), mx.reshape(-1)


def sum_rule_error(derivs: EPCDerivatives) -> tuple[float, float]:
    """Acoustic sum rule: max |sum_kappa sum_L dX(a R_m, b R_n)/du_kappa(L)| for X = H, S.

    Blocks are grouped by ``R_n - R_m`` (translation invariance), summed over kappa.
    """
    diff = derivs.cell_pairs[:, 1] - derivs.cell_pairs[:, 0]  # [P, 3]
    keys, inv = np.unique(diff, axis=0, return_inverse=True)
    out = []
    for x in (derivs.dh, derivs.ds):
        acc = np.zeros((len(keys),) + x.shape[2:])
        np.add.at(acc, inv.reshape(-1), x.sum(axis=1))
        out.append(float(np.abs(acc).max()))
    return out[0], out[1]


# ------------------------------------------------------------------------ on-site D
def _onsite_from(gradient: Callable[[Atoms], OverlapGradient]) -> OnsiteD:
    """On-site D provider: block (0, 0, 0) of ``gradient`` on a lone atom, cached per element.

    :class:`~interfaces.overlap_gradient.OverlapGradient` stores ``<d phi_mu / d tau | phi_nu>``
    with the bra centre moved, which is the D of this module as it is (no sign change).
    """
    cache: dict[str, np.ndarray] = {}

    def onsite(symbol: str) -> np.ndarray:
        if symbol not in cache:
            atom = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], pbc=False)
            cache[symbol] = gradient(atom).block(0, 0)  # [3, n, n]
        return cache[symbol]

    return onsite


def onsite_d_pyscf(basis: str = DEFAULT_BASIS) -> OnsiteD:
    """On-site D provider from PySCF ``int1e_ipovlp`` (same orbital order as ``pyscf.run``)."""
    from interfaces.pyscf.generator import overlap_gradient

    return _onsite_from(lambda atom: overlap_gradient(atom, basis))


def onsite_d_nao(basis) -> OnsiteD:
    """On-site D provider from numerical radial orbitals (:mod:`interfaces.nao.overlap`)."""
    from interfaces.nao.overlap import overlap_gradient

    return _onsite_from(lambda atom: overlap_gradient(atom, basis))
