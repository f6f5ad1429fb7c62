"""Electron-phonon coupling by finite differences of H(R), S(R), coupled to phonopy.

numpy/scipy/phonopy only (no torch). See ``docs/epc.md``:

* :mod:`.derivatives` -- dH, dS, D = <d phi | phi> in real space from any HSData provider;
* :mod:`.symmetry` -- space-group reduction of the displacements (rotated blocks);
* :mod:`.phonons` -- phonopy glue (explicit primitive cell, ``run_qpoints``, units);
* :mod:`.coupling` -- g_mn,nu(k, q) by eq. (3) + (5), degeneracy averaging;
* :mod:`.eliashberg` -- lambda_q,nu, alpha^2F, lambda, omega_log, T_c, linewidths;
* :mod:`.workflow` -- :func:`run_epc` (derivatives + coupling + Eliashberg in one call);
* :mod:`.config` -- :class:`EPCConfig` (TOML) used by ``ase_deeph.cli.epc``.
"""

from __future__ import annotations

from ase_deeph.epc.coupling import (
    FORMS,
    MASKS,
    CouplingResult,
    cartesian_elements,
    coupling,
    degeneracy_average,
    matrix_element,
    realspace_dv,
    unstable_mask,
)
from ase_deeph.epc.derivatives import (
    EPCDerivatives,
    block_decay,
    derivatives,
    onsite_d_nao,
    onsite_d_pyscf,
    sum_rule_error,
    supercell_map,
)
from ase_deeph.epc.eliashberg import EliashbergResult, allen_dynes_tc, eliashberg, mcmillan_tc
from ase_deeph.epc.eliashberg import gaussian as eliashberg_gaussian
from ase_deeph.epc.phonons import (
    HBAR2_2AMU,
    IMAGINARY_TOL,
    THZ_TO_MEV,
    PhononModes,
    check_primitive,
    describe_unstable,
    phonon_modes,
    phonopy_forces,
    phonopy_from_atoms,
    tersoff_carbon,
    tersoff_si,
    unstable_branches,
    zero_point_lengths,
)
from ase_deeph.epc.symmetry import DisplacementSymmetry, displacement_symmetry
from ase_deeph.epc.workflow import EPCResult, run_epc

__all__ = [
    "FORMS",
    "HBAR2_2AMU",
    "IMAGINARY_TOL",
    "MASKS",
    "THZ_TO_MEV",
    "CouplingResult",
    "DisplacementSymmetry",
    "EPCDerivatives",
    "EPCResult",
    "EliashbergResult",
    "PhononModes",
    "allen_dynes_tc",
    "block_decay",
    "cartesian_elements",
    "check_primitive",
    "coupling",
    "degeneracy_average",
    "derivatives",
    "describe_unstable",
    "displacement_symmetry",
    "eliashberg",
    "eliashberg_gaussian",
    "matrix_element",
    "mcmillan_tc",
    "onsite_d_nao",
    "onsite_d_pyscf",
    "phonon_modes",
    "phonopy_forces",
    "phonopy_from_atoms",
    "realspace_dv",
    "run_epc",
    "sum_rule_error",
    "supercell_map",
    "tersoff_carbon",
    "tersoff_si",
    "unstable_branches",
    "unstable_mask",
    "zero_point_lengths",
]
