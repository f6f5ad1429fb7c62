"""Numerical atomic orbitals from the codes' basis files.

Radial orbitals and bases (:mod:`.radial`), basis-file readers (:mod:`.basis_files`),
two-centre integrals (:mod:`.twocenter`), overlaps S(R) and their gradients (:mod:`.overlap`).
"""

from __future__ import annotations

from interfaces.nao.basis_files import (
    RadialBasis,
    RadialOrbital,
    read_abacus_orb,
    read_basis,
    read_basis_text,
    read_ion,
    read_ion_xml,
    read_openmx_pao,
)

__all__ = [
    "RadialOrbital", "RadialBasis", "read_basis", "read_basis_text", "read_ion_xml",
    "read_ion", "read_abacus_orb", "read_openmx_pao",
]
