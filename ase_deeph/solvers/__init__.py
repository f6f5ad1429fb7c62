"""Electronic-structure solvers on :class:`interfaces.hsdata.HSData` (numpy/scipy only).

* :mod:`.bloch` -- dense and sparse Bloch sums H(k), S(k);
* :mod:`.eigen` -- dense generalised eigenproblem with ill-conditioned-S projection;
* :mod:`.ghosts` -- local penalty on near-null S directions (ghost-free predicted H, sparse-safe);
* :mod:`.sparse` -- shift-invert eigenpairs and sparse Fermi level for large cells;
* :mod:`.sparse_path` -- states near E_F along a k-path, resumable per k-point;
* :mod:`.factor` -- sparse factorisation backends with inertia (SuperLU, MKL PARDISO);
* :mod:`.conditioning` -- the one rule for near-null S(k) directions;
* :mod:`.kpoints` -- Monkhorst-Pack / Gamma meshes, spglib reduction, band paths;
* :mod:`.occupations` -- Fermi level from the electron count, smearing, mid-gap rule;
* :mod:`.dos` -- total and Mulliken-projected DOS, Mulliken populations;
* :mod:`.bands` -- ASE ``BandStructure`` along a path, PNG plots.
"""

from __future__ import annotations

from ase_deeph.solvers.bands import band_structure, plot_bands, plot_dos
from ase_deeph.solvers.bloch import (
    BlochMatrices,
    SparseBloch,
    bloch_matrices,
    bloch_sparse,
    matrix_dimension,
)
from ase_deeph.solvers.dos import (
    DOS,
    Mulliken,
    OrbitalTable,
    ProjectedDOS,
    dos,
    mulliken_populations,
    mulliken_weights,
    orbital_table,
    projected_dos,
)
from ase_deeph.solvers.eigen import Solution, eigenvalues, solve, spin_degeneracy
from ase_deeph.solvers.ghosts import suppress_ghosts
from ase_deeph.solvers.kpoints import KMesh, bandpath, kmesh, mesh_points
from ase_deeph.solvers.occupations import (
    SMEARINGS,
    FermiResult,
    fermi_level,
    fermi_window,
    occupation_function,
    occupations,
)
from ase_deeph.solvers.sparse import (
    SparseFermi,
    SparseSolution,
    count_states_below,
    fermi_level_sparse,
    solve_sparse,
)
from ase_deeph.solvers.sparse_path import SparseBands, sparse_bands

__all__ = [
    "DOS",
    "SMEARINGS",
    "BlochMatrices",
    "FermiResult",
    "KMesh",
    "Mulliken",
    "OrbitalTable",
    "ProjectedDOS",
    "Solution",
    "SparseBloch",
    "SparseFermi",
    "SparseBands",
    "SparseSolution",
    "band_structure",
    "bandpath",
    "bloch_matrices",
    "bloch_sparse",
    "count_states_below",
    "dos",
    "eigenvalues",
    "fermi_level",
    "fermi_level_sparse",
    "kmesh",
    "matrix_dimension",
    "mesh_points",
    "mulliken_populations",
    "mulliken_weights",
    "occupation_function",
    "occupations",
    "fermi_window",
    "orbital_table",
    "plot_bands",
    "plot_dos",
    "projected_dos",
    "solve",
    "solve_sparse",
    "sparse_bands",
    "spin_degeneracy",
    "suppress_ghosts",
]
