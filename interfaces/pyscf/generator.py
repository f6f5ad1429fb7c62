"""Embedded DFT engine: Kohn-Sham H(R), S(R) from PySCF in a compact GTH basis.

Recipe (issue 4): PBE with GTH pseudopotentials, multigrid ``KRKS`` on a Gamma-centred
k-mesh with an explicit density cutoff; after the SCF the KS matrix is built
non-self-consistently on a denser Gamma-centred mesh whose supercell translations are all
at least ``2 r_cut`` long, inverse-transformed, folded onto Wigner-Seitz
images (:mod:`interfaces.pyscf.fold`) and truncated at ``r_cut``. S(R) of the same blocks
is computed exactly in real space (as :func:`overlap` does); the folded S(k) only serves
as an aliasing diagnostic (``metadata["s_alias_max"]``). Isolated molecules
(``pbc`` all False) use molecular ``RKS`` with the same basis and pseudopotential; their H
is the Fock matrix, stored as R = 0 blocks between all atom pairs.

:func:`overlap` computes S(R) for any structure without an SCF, in real space and linear
in the number of atoms (:func:`interfaces.pyscf.basis.pair_integrals`).

Examples
--------
>>> from ase.build import bulk
>>> from interfaces import pyscf as ps
>>> hs = ps.run(bulk("Si"), kmesh=(3, 3, 3))        # doctest: +SKIP
>>> s = ps.overlap(bulk("Si", cubic=True) * 20)      # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.units import Ha

from interfaces.hsdata import HSData
from interfaces.kspacing import KSPACING_SCF, default_kmesh
from interfaces.memory import available_mb
from interfaces.overlap_gradient import OverlapGradient
from interfaces.pyscf.basis import (
    DEFAULT_BASIS,
    MIN_EXPONENT,
    GeometryError,
    PySCFError,
    SCFConvergenceError,
    UnknownElementError,
    check_pseudo,
    default_ke_cutoff,
    pseudo_name,
)
from interfaces.pyscf.blocks import MIN_DISTANCE, Setup, basis_metadata, prepare, to_hsdata
from interfaces.pyscf.fold import dense_mesh, fold, shortest_translation
from interfaces.pyscf.overlap import overlap, overlap_gradient, overlap_on, pair_values

__all__ = [
    "run", "SCFOptions", "overlap", "overlap_on", "overlap_gradient", "OverlapGradient",
    "PySCFError",
    "UnknownElementError", "GeometryError", "SCFConvergenceError", "MIN_DISTANCE",
    "KSPACING", "MIN_EXPONENT", "default_kmesh",
]

#: Default SCF k-point spacing, 1/Angstrom (2 pi included): n_i = ceil(|b_i| / KSPACING)
#: (:func:`interfaces.kspacing.default_kmesh`, the package's one k-mesh rule).
KSPACING = KSPACING_SCF
_PRECISION = 1e-8  # PySCF lattice-sum precision of the SCF (1e-10 costs 30 % more per cycle)


# ------------------------------------------------------------------------------- run
@dataclass(frozen=True, eq=False)
class SCFOptions:
    """How the SCF itself runs: the keyword arguments of :func:`run` beyond the cell.

    Attributes
    ----------
    smearing : float or None
        Fermi-Dirac smearing width in eV (use for metals and semimetals).
    conv_tol : float
        SCF energy convergence threshold, Hartree.
    max_cycle : int
        Maximum SCF iterations.
    dm0 : ndarray or None
        Initial density matrix (PySCF AO order, e.g. ``mf.make_rdm1()`` of a similar
        structure with the same atoms and k-mesh); ignored when its shape does not fit.
    grid_level : int
        Molecules only: PySCF's XC integration grid level.
    density_fit : bool or str
        Molecules only: density fitting of the Coulomb matrix; ``True`` takes PySCF's
        automatic auxiliary basis, a string names one (``"weigend"``, def2-universal-jfit:
        2,940 functions on C60 against 9,000 automatic ones). On benzene level 3 with
        fitting moves the states within 3 eV of the gap by 0.08 meV (automatic) or 0.41 meV
        (weigend) against level 5 without (``docs/generator.md``). The SCF may use up to
        70 % of the machine's available memory, so that the 3-index integrals stay in memory.
    """

    smearing: float | None = None
    conv_tol: float = 1e-9
    max_cycle: int = 80
    dm0: np.ndarray | None = None
    grid_level: int = 5
    density_fit: bool | str = False

    def metadata(self) -> dict:
        """Return the settings as recorded in a generated file's metadata."""
        return {"conv_tol": self.conv_tol, "max_cycle": self.max_cycle,
                "smearing_eV": self.smearing,
                "initial_guess": "minao" if self.dm0 is None else "dm0"}


def run(atoms: Atoms, basis: str = DEFAULT_BASIS, xc: str = "pbe", kmesh=None,
        dense_kmesh=None, ke_cutoff: float | None = None, r_cut: float = 8.0,
        return_scf: bool = False, **options):
    """Self-consistent Kohn-Sham H(R) and S(R) of a periodic or molecular structure.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure in Angstrom. ``pbc`` all False: isolated molecule. Otherwise a 3-D
        cell; non-periodic directions get one k-point and need vacuum (the dense-mesh
        supercell must be at least ``2 r_cut`` Angstrom long in every direction).
    basis : str
        PySCF GTH basis name; default :data:`DEFAULT_BASIS` (``gth-dzvp-molopt-sr-compact``:
        CP2K's condensed-phase basis, exponents raised to >= 0.15 bohr^-2).
    xc : str
        Functional (``"pbe"``, ``"lda"``); selects the GTH pseudopotential family.
    kmesh, dense_kmesh : sequence of 3 int, optional
        SCF Gamma-centred mesh (default from :data:`KSPACING`) and the non-self-consistent
        mesh of the inverse transform (default the smallest valid).
    ke_cutoff : float, optional
        Density cutoff in Hartree; default the largest per-element value of
        :data:`interfaces.pyscf.basis.KE_CUTOFF`.
    r_cut : float
        Keep periodic blocks with bond length < r_cut Angstrom (molecules keep all).
    return_scf : bool
        Also return the converged PySCF SCF object (for validation, e.g. ``get_bands``).
    **options
        The fields of :class:`SCFOptions` (``smearing``, ``conv_tol``, ``max_cycle``,
        ``dm0``, ``grid_level``, ``density_fit``).

    Returns
    -------
    HSData, or (HSData, pyscf SCF object) with ``return_scf``
        H in eV (spin "none"), S, Fermi level (mid-gap for gapped systems, the chemical
        potential with smearing), valence electron count; ``metadata`` records the basis
        definition, pseudopotential, xc, cutoffs, meshes, SCF energy and PySCF version.

    Raises
    ------
    UnknownElementError
        An element lacks the basis or pseudopotential.
    GeometryError
        Atoms closer than :data:`MIN_DISTANCE`, missing cell, too little vacuum.
    SCFConvergenceError
        The SCF did not converge in ``max_cycle`` iterations.
    """
    opts = SCFOptions(**options)
    setup = prepare(atoms, basis)
    pseudo = pseudo_name(xc)
    pseudo_def = check_pseudo(pseudo, setup.atoms.get_chemical_symbols())
    meta = basis_metadata(setup, basis, r_cut) | opts.metadata() | {
        "pseudo": pseudo, "pseudo_definition": pseudo_def, "xc": xc, "units": "eV, Angstrom"}
    if not np.any(setup.atoms.pbc):
        hs, mf = _run_molecule(setup, pseudo, xc, opts, meta)
    else:
        hs, mf = _run_periodic(setup, pseudo, xc, kmesh, dense_kmesh, ke_cutoff, r_cut, opts,
                               meta)
    return (hs, mf) if return_scf else hs


def _scf(mf, what: str, opts: SCFOptions):
    """Configure and run an SCF object; raise if it does not converge."""
    smearing, dm0 = opts.smearing, opts.dm0
    mf.conv_tol = opts.conv_tol
    mf.max_cycle = opts.max_cycle
    mf.verbose = 0
    # PySCF's extra post-convergence cycle diagonalises without DIIS; with smearing on a mesh
    # through K (graphene) it sloshes (|g| 3e-5 -> 1e-3) and flags converged SCFs as failed.
    mf.conv_check = False
    if smearing:
        mf = mf.smearing(sigma=smearing / Ha, method="fermi")
    guess = None
    if dm0 is not None:
        default = mf.get_init_guess()
        guess = np.asarray(dm0) if np.shape(dm0) == np.shape(default) else default
    mf.kernel(dm0=guess)
    if not mf.converged:
        raise SCFConvergenceError(
            f"SCF of {what} did not converge in {opts.max_cycle} cycles (conv_tol "
            f"{opts.conv_tol} Ha); "
            "try smearing or more cycles")
    return mf


def _fermi(mf, smearing) -> dict:
    """Band edges and Fermi level from the SCF eigenvalues, eV."""
    e = np.concatenate([np.ravel(x) for x in np.atleast_1d(mf.mo_energy)]) * Ha
    occ = np.concatenate([np.ravel(x) for x in np.atleast_1d(mf.mo_occ)])
    vbm = float(e[occ > 1.0].max()) if np.any(occ > 1.0) else math.nan
    cbm = float(e[occ <= 1.0].min()) if np.any(occ <= 1.0) else math.nan
    if smearing and getattr(mf, "mu", None) is not None:
        fermi = float(np.ravel(mf.mu)[0]) * Ha
    else:
        fermi = 0.5 * (vbm + cbm) if cbm > vbm else vbm
    return {"fermi_level": fermi, "vbm": vbm, "cbm": cbm}


def _build_cell(setup: Setup, pseudo: str, ke_cutoff: float):
    from pyscf.pbc import gto as pgto

    atoms = setup.atoms
    cell = pgto.Cell()
    cell.atom = [[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions,
                                                strict=True)]
    cell.a = np.asarray(atoms.cell)
    cell.unit = "A"
    cell.basis = setup.basis_def
    cell.pseudo = pseudo
    cell.ke_cutoff = ke_cutoff
    cell.precision = _PRECISION
    cell.verbose = 0
    cell.build()
    return cell


def _run_periodic(setup, pseudo, xc, kmesh, dense_kmesh, ke_cutoff, r_cut, opts,
                  meta) -> tuple[HSData, object]:
    from pyscf.pbc import dft

    atoms = setup.atoms
    lattice = np.asarray(atoms.cell)
    kmesh = tuple(int(k) for k in kmesh) if kmesh is not None else default_kmesh(atoms)
    need = 2.0 * r_cut
    try:
        dmesh = (tuple(int(k) for k in dense_kmesh) if dense_kmesh is not None
                 else dense_mesh(lattice, atoms.pbc, r_cut))
    except ValueError:
        raise GeometryError(f"vacuum too thin: the cell must be >= {need} A along "
                            "non-periodic directions") from None
    if shortest_translation(lattice, dmesh) < need - 1e-9:
        raise GeometryError(f"dense k-mesh {dmesh} (or the vacuum) is too small: supercell "
                            f"translations must be >= {need} A")
    ke_cutoff = float(ke_cutoff or default_ke_cutoff(atoms.get_chemical_symbols()))
    cell = _build_cell(setup, pseudo, ke_cutoff)
    kpts = cell.make_kpts(kmesh)
    mf = _scf(dft.KRKS(cell, kpts, xc=xc).multigrid_numint(), atoms.get_chemical_formula(),
              opts)
    kpts_dense = cell.make_kpts(dmesh)
    dm = mf.make_rdm1()
    hk = np.asarray(mf.get_hcore(cell, kpts_dense)) + np.asarray(
        mf.get_veff(cell, dm, kpts=kpts, kpts_band=kpts_dense))  # [n_kd, n_ao, n_ao], Ha
    sk = np.asarray(mf.get_ovlp(cell, kpts_dense))  # [n_kd, n_ao, n_ao]
    ao_offsets = np.append(cell.aoslice_by_atom()[:, 2], cell.nao_nr())
    edge_index, cell_shift, (h, s_fold), max_imag = fold(
        [hk, sk], dmesh, lattice, atoms.positions, ao_offsets, r_cut)
    s = pair_values(setup, edge_index, cell_shift, "int1e_ovlp", 1, internal=False)[0]
    bands = _fermi(mf, opts.smearing)
    meta = meta | {
        "ke_cutoff_Ha": ke_cutoff, "kmesh": list(kmesh), "dense_kmesh": list(dmesh),
        "energy_eV": float(mf.e_tot) * Ha, "vbm_eV": bands["vbm"], "cbm_eV": bands["cbm"],
        "max_imag_dropped": max_imag, "kind": "periodic",
        "s_alias_max": float(np.abs(s_fold - s).max(initial=0.0)),
    }
    return to_hsdata(setup, edge_index, cell_shift, h[None] * Ha, s,
                     fermi_level=bands["fermi_level"], n_electrons=float(cell.nelectron),
                     source_version=meta["pyscf_version"], metadata=meta), mf


def _fitted(mf, density_fit: bool | str):
    """Density-fitted copy of a molecular SCF, its 3-index integrals stored when they fit.

    Without stored integrals PySCF recomputes them in every cycle of a pure-DFT SCF (its
    direct J): benzene at level 3 with the automatic auxiliary basis, one thread, took
    20.0 s recomputing and 7.9 s stored (``docs/generator.md``).
    """
    from pyscf.df.addons import make_auxmol

    aux = density_fit if isinstance(density_fit, str) else None
    mf = mf.density_fit(auxbasis=aux)
    mol = mf.mol
    n_pair = mol.nao_nr() * (mol.nao_nr() + 1) // 2
    n_aux = make_auxmol(mol, mf.with_df.auxbasis).nao_nr()
    if n_pair * n_aux * 8e-6 < 0.6 * mol.max_memory:  # MB
        mf.with_df.build()
    return mf


def _run_molecule(setup, pseudo, xc, opts: SCFOptions, meta) -> tuple[HSData, object]:
    from pyscf import dft, gto

    atoms = setup.atoms
    mol = gto.Mole()
    mol.atom = [[s, tuple(p)] for s, p in zip(atoms.get_chemical_symbols(), atoms.positions,
                                               strict=True)]
    mol.unit = "A"
    mol.basis = setup.basis_def
    mol.pseudo = pseudo
    mol.verbose = 0
    mol.max_memory = max(4000, int(0.7 * available_mb()))
    mol.build()
    if mol.nelectron % 2:
        raise GeometryError(f"{atoms.get_chemical_formula()} has an odd electron count; "
                            "only closed shells are supported")
    mf = dft.RKS(mol, xc=xc)
    mf.grids.level = opts.grid_level
    if opts.density_fit:
        mf = _fitted(mf, opts.density_fit)
    mf = _scf(mf, atoms.get_chemical_formula(), opts)
    fock = np.asarray(mf.get_fock()) * Ha  # [n_ao, n_ao], eV
    ovlp = np.asarray(mf.get_ovlp())
    off = np.append(mol.aoslice_by_atom()[:, 2], mol.nao_nr())
    n = len(atoms)
    ii, jj = (a.ravel() for a in np.meshgrid(np.arange(n), np.arange(n), indexing="ij"))
    h = np.concatenate([fock[off[a]:off[a + 1], off[b]:off[b + 1]].ravel()
                        for a, b in zip(ii, jj, strict=True)])
    s = np.concatenate([ovlp[off[a]:off[a + 1], off[b]:off[b + 1]].ravel()
                        for a, b in zip(ii, jj, strict=True)])
    bands = _fermi(mf, opts.smearing)
    meta = meta | {"grid_level": opts.grid_level, "density_fit": opts.density_fit,
                   "energy_eV": float(mf.e_tot) * Ha,
                   "homo_eV": bands["vbm"], "lumo_eV": bands["cbm"], "kind": "molecule"}
    return to_hsdata(setup, np.stack([ii, jj]), np.zeros((n * n, 3), dtype=np.int64),
                     h[None], s, fermi_level=bands["fermi_level"],
                     n_electrons=float(mol.nelectron), source_version=meta["pyscf_version"],
                     metadata=meta), mf
