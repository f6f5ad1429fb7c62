"""Phonopy glue: explicit primitive cell, ``run_qpoints``, units (``docs/epc.md`` sections 1, 5, 8).

Contract: phonopy's primitive cell must be exactly the H(R) structure (same atom order,
positions and masses); :func:`check_primitive` asserts it. Eigenvectors are phonopy's
(columns are modes, rows (atom, xyz) in primitive order, not mass scaled); the
displacement of atom kappa in cell R is ``e_kappa exp(2 pi i q.(R + tau_kappa)) / sqrt(M)``.
Units from :mod:`ase.units`: THz -> meV by h; ``hbar^2 / (2 amu)`` for the zero-point length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms, units

__all__ = ["PhononModes", "THZ_TO_MEV", "HBAR2_2AMU", "IMAGINARY_TOL", "phonopy_from_atoms",
           "phonopy_forces", "check_primitive", "phonon_modes", "zero_point_lengths",
           "unstable_branches", "describe_unstable", "tersoff_si", "tersoff_carbon"]

#: 1 THz in meV (h * 1e12 Hz / e).
THZ_TO_MEV = units._hplanck / units._e * 1e12 * 1e3
#: hbar^2 / (2 amu) in meV * Angstrom^2 (2.09008).
HBAR2_2AMU = 0.5 * (units._hbar * units.J * units.s) ** 2 * 1e3
#: Default tolerance (meV) below -0 at which a phonopy frequency counts as imaginary.
IMAGINARY_TOL = 1.0


@dataclass(frozen=True)
class PhononModes:
    """Phonon frequencies and eigenvectors at a list of q.

    Attributes
    ----------
    qpoints : ndarray, shape (nq, 3)
        Reduced q (reciprocal lattice of the primitive cell).
    frequencies_thz : ndarray, shape (nq, n_modes)
        Phonopy frequencies in THz (negative = imaginary).
    eigenvectors : ndarray, shape (nq, 3 N_uc, n_modes), complex128
        Phonopy eigenvectors; column nu is mode nu, rows (atom, xyz).
    masses : ndarray, shape (N_uc,)
        Atomic masses, amu.
    scaled_positions : ndarray, shape (N_uc, 3)
        Reduced atomic positions tau_kappa of the primitive cell.
    soft_cutoff : float
        Modes below this energy (meV) are "soft": skipped in BZ integrals, |omega| used.
    imag_tol : float
        Tolerance (meV) of :attr:`unstable`: a frequency below ``-imag_tol`` is imaginary.
    """

    qpoints: np.ndarray
    frequencies_thz: np.ndarray
    eigenvectors: np.ndarray
    masses: np.ndarray
    scaled_positions: np.ndarray
    soft_cutoff: float = 2.0
    imag_tol: float = IMAGINARY_TOL

    @property
    def n_modes(self) -> int:
        """Number of branches, 3 N_uc."""
        return int(self.frequencies_thz.shape[1])

    @property
    def energies_mev(self) -> np.ndarray:
        """|hbar omega| in meV, shape (nq, n_modes) (imaginary modes by modulus)."""
        return np.abs(self.frequencies_thz) * THZ_TO_MEV

    @property
    def soft(self) -> np.ndarray:
        """Mask of soft or imaginary modes, shape (nq, n_modes) (g = 0 for them)."""
        return (self.frequencies_thz * THZ_TO_MEV) < self.soft_cutoff

    @property
    def unstable(self) -> np.ndarray:
        """Mask of unstable modes, shape (nq, n_modes).

        A mode is unstable when its frequency is imaginary (below ``-imag_tol`` meV, i.e.
        omega^2 < 0 beyond the tolerance), or, at q = Gamma (a reciprocal lattice vector),
        when it is one of the modes above the three acoustic ones with
        ``|omega| < soft_cutoff`` (a zero-frequency optical mode: a floppy structure or
        broken force constants). The three acoustic modes at Gamma (``|omega| <
        soft_cutoff``, of either sign) are soft, not unstable.
        Unstable modes are no couplings: :func:`ase_deeph.epc.coupling` masks them (NaN)
        and :func:`ase_deeph.epc.eliashberg` excludes them, both with a warning.
        """
        w = self.frequencies_thz * THZ_TO_MEV
        q = self.qpoints
        gamma = np.all(np.abs(q - np.rint(q)) < 1e-8, axis=1)[:, None]  # [nq, 1]
        acoustic = (np.arange(self.n_modes) < 3)[None, :]
        zero = np.abs(w) < self.soft_cutoff
        imaginary = (w < -self.imag_tol) & ~(gamma & acoustic & zero)
        return imaginary | (gamma & ~acoustic & zero)


def unstable_branches(modes: PhononModes) -> np.ndarray:
    """Mask (nq, n_modes) of whole branches (sorted mode index) unstable at some q.

    Phonopy sorts the modes by frequency at each q, so a branch index is a branch only
    while branches do not cross; this is exact for a flexural (ZA) branch that stays the
    lowest one, whose small positive frequencies next to its imaginary region give
    spurious ``1/sqrt(omega)`` peaks in ``|g|`` (examples/06).
    """
    bad = modes.unstable
    return np.broadcast_to(bad.any(axis=0), bad.shape).copy()


def describe_unstable(modes: PhononModes, mask: np.ndarray, n_show: int = 6) -> str:
    """Text for the warnings: how many modes of ``mask`` (nq, n_modes), at which q-points."""
    rows = np.flatnonzero(np.asarray(mask).any(axis=1))
    w = modes.frequencies_thz * THZ_TO_MEV
    shown = ", ".join(f"#{i} {np.round(modes.qpoints[i], 4).tolist()} "
                      f"(min {w[i].min():.2f} meV)" for i in rows[:n_show])
    more = f" and {len(rows) - n_show} more" if len(rows) > n_show else ""
    return (f"{int(np.sum(mask))} imaginary/unstable phonon modes at {len(rows)} of "
            f"{len(w)} q-points: q = {shown}{more}")


def zero_point_lengths(masses: np.ndarray, energies_mev: np.ndarray) -> np.ndarray:
    """``sqrt(hbar / (2 M omega))`` in Angstrom, shape (N_uc, n_modes); 0 for omega <= 0."""
    e = np.asarray(energies_mev, dtype=np.float64)
    safe = np.where(e > 0, e, 1.0)
    ell = np.sqrt(HBAR2_2AMU / (np.asarray(masses)[:, None] * safe[None, :]))
    return np.where(e[None, :] > 0, ell, 0.0)


def phonopy_from_atoms(atoms: Atoms, supercell_matrix, distance: float = 0.01):
    """``Phonopy`` with ``primitive_matrix="P"`` (the given cell is the primitive cell)."""
    from phonopy import Phonopy
    from phonopy.structure.atoms import PhonopyAtoms

    unit = PhonopyAtoms(symbols=atoms.get_chemical_symbols(), cell=np.asarray(atoms.cell),
                        scaled_positions=atoms.get_scaled_positions(wrap=False),
                        masses=atoms.get_masses())
    ph = Phonopy(unit, supercell_matrix=np.asarray(supercell_matrix), primitive_matrix="P")
    ph.generate_displacements(distance=distance)
    return ph


def phonopy_forces(ph, calculator_factory: Callable[[], object]):
    """Compute forces of phonopy's displaced supercells with an ASE calculator; set FC."""
    forces = []
    for sc in ph.supercells_with_displacements:
        a = Atoms(sc.symbols, cell=sc.cell, scaled_positions=sc.scaled_positions, pbc=True)
        a.calc = calculator_factory()
        forces.append(a.get_forces())
    ph.forces = np.array(forces)
    ph.produce_force_constants()
    return ph


def check_primitive(ph, atoms: Atoms, tol: float = 1e-5) -> None:
    """Assert phonopy's primitive cell equals ``atoms`` (cell, order, positions, masses)."""
    prim = ph.primitive
    if not np.allclose(prim.cell, np.asarray(atoms.cell), atol=tol):
        raise ValueError("phonopy primitive cell differs from the H(R) cell; pass "
                         "primitive_matrix explicitly")
    d = prim.scaled_positions - atoms.get_scaled_positions(wrap=False)
    if len(d) != len(atoms) or not np.allclose(d - np.round(d), 0.0, atol=tol):
        raise ValueError("phonopy primitive atoms differ from the H(R) atoms (order/positions)")
    if list(prim.symbols) != atoms.get_chemical_symbols():
        raise ValueError("phonopy primitive species order differs from the H(R) structure")
    if not np.allclose(prim.masses, atoms.get_masses(), atol=1e-3):
        raise ValueError("phonopy masses differ from the structure's masses")


def phonon_modes(ph, qpoints, atoms: Atoms | None = None, soft_cutoff: float = 2.0,
                 imag_tol: float = IMAGINARY_TOL) -> PhononModes:
    """Frequencies and eigenvectors at ``qpoints`` via ``run_qpoints``.

    ``atoms``, if given, is checked against phonopy's primitive cell; its reduced positions
    are used for the exp(i q.tau) factor (so a non-wrapped position convention is kept).
    ``soft_cutoff`` and ``imag_tol`` (meV) set :attr:`PhononModes.soft` and
    :attr:`PhononModes.unstable`.
    """
    q = np.atleast_2d(np.asarray(qpoints, dtype=np.float64))
    if atoms is not None:
        check_primitive(ph, atoms)
        tau = atoms.get_scaled_positions(wrap=False)
    else:
        tau = ph.primitive.scaled_positions
    ph.run_qpoints(q, with_eigenvectors=True)
    res = ph.qpoints
    return PhononModes(qpoints=q, frequencies_thz=np.asarray(res.frequencies),
                       eigenvectors=np.asarray(res.eigenvectors), masses=ph.primitive.masses,
                       scaled_positions=np.asarray(tau), soft_cutoff=soft_cutoff,
                       imag_tol=imag_tol)


def tersoff_si():
    """ASE Tersoff calculator with Tersoff's Si(C) parameters (PRB 38, 9902 (1988))."""
    from ase.calculators.tersoff import Tersoff, TersoffParameters

    p = TersoffParameters(m=3.0, gamma=1.0, lambda3=0.0, c=1.0039e5, d=16.217, h=-0.59825,
                          n=0.78734, beta=1.1e-6, lambda2=1.7322, B=471.18, R=2.85, D=0.15,
                          lambda1=2.4799, A=1830.8)
    return Tersoff({("Si", "Si", "Si"): p})


def tersoff_carbon():
    """ASE Tersoff calculator with Tersoff's carbon parameters (PRB 39, 5566 (1989)).

    In graphene at a = 2.46 A its flexural (ZA) branch is imaginary near Gamma (down to
    -10 meV along Gamma-M, 6x6x1 supercell): see :attr:`PhononModes.unstable`.
    """
    from ase.calculators.tersoff import Tersoff, TersoffParameters

    p = TersoffParameters(m=3.0, gamma=1.0, lambda3=0.0, c=38049.0, d=4.3484, h=-0.57058,
                          n=0.72751, beta=1.5724e-7, lambda2=2.2119, B=346.74, R=1.95, D=0.15,
                          lambda1=3.4879, A=1393.6)
    return Tersoff({("C", "C", "C"): p})
