"""One-call EPC workflow: derivatives, g on k/q lists, Eliashberg quantities on meshes."""

from __future__ import annotations

from dataclasses import dataclass

from ase import Atoms

from ase_deeph.epc.coupling import CouplingResult, coupling
from ase_deeph.epc.derivatives import EPCDerivatives, OnsiteD, Provider, derivatives
from ase_deeph.epc.eliashberg import EliashbergResult, eliashberg
from ase_deeph.epc.phonons import phonon_modes

__all__ = ["EPCResult", "run_epc"]


@dataclass(frozen=True)
class EPCResult:
    """Everything :func:`run_epc` computed.

    Attributes
    ----------
    derivatives : EPCDerivatives
        Real-space dH, dS, D (eV/Angstrom, 1/Angstrom).
    coupling : CouplingResult or None
        g_mn,nu(k, q) in meV on the user k and q lists (None if no q list was given).
    eliashberg : EliashbergResult or None
        Mesh quantities (None if ``k_mesh`` was None).
    """

    derivatives: EPCDerivatives
    coupling: CouplingResult | None
    eliashberg: EliashbergResult | None


def run_epc(provider: Provider, atoms: Atoms, ph, kpoints=None, qpoints=None, bands=None,
            k_mesh=None, q_mesh=None, onsite_d: OnsiteD | None = None, n_box=1,
            delta: float = 0.01, symmetry: bool = True, form: str | None = None,
            sigma_el: float = 0.1, sigma_ph: float = 0.5, fermi_level: float | None = None,
            soft_cutoff: float = 2.0, mask_unstable: str = "mode") -> EPCResult:
    """Finite-difference EPC of ``atoms`` with H/S from ``provider`` and phonons from ``ph``.

    Parameters
    ----------
    provider : callable
        ``provider(atoms) -> HSData`` (spinless H and S).
    atoms : ase.Atoms
        Primitive cell; must be phonopy's primitive cell (checked).
    ph : phonopy.Phonopy
        With force constants.
    kpoints, qpoints : array_like, optional
        Fractional k and q lists for g (all k x all q).
    bands : sequence of int, optional
        Bands kept in g (default all).
    k_mesh, q_mesh : tuple of int, optional
        Gamma-centred meshes for the Eliashberg quantities (q_mesh defaults to k_mesh).
    onsite_d, n_box, delta, symmetry
        See :func:`ase_deeph.epc.derivatives`.
    form : str, optional
        See :func:`ase_deeph.epc.coupling`.
    sigma_el, sigma_ph, fermi_level, soft_cutoff
        See :func:`ase_deeph.epc.eliashberg`.
    mask_unstable : {"mode", "branch", "none"}
        Imaginary/unstable modes set to NaN in g (see :func:`ase_deeph.epc.coupling`).

    Returns
    -------
    EPCResult
    """
    derivs = derivatives(provider, atoms, n_box=n_box, delta=delta, onsite_d=onsite_d,
                         symmetry=symmetry)
    result = None
    if qpoints is not None:
        modes = phonon_modes(ph, qpoints, atoms, soft_cutoff)
        k = [[0.0, 0.0, 0.0]] if kpoints is None else kpoints
        result = coupling(derivs, modes, k, bands=bands, form=form,
                          mask_unstable=mask_unstable)
    eli = None
    if k_mesh is not None:
        eli = eliashberg(derivs, ph, k_mesh=k_mesh, q_mesh=q_mesh or k_mesh, sigma_el=sigma_el,
                         sigma_ph=sigma_ph, fermi_level=fermi_level, form=form,
                         soft_cutoff=soft_cutoff)
    return EPCResult(derivatives=derivs, coupling=result, eliashberg=eli)
