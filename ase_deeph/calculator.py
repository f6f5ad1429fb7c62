"""The drop-in ASE calculator: ``atoms.calc = DeepHCalculator(...)``.

It predicts H(R) (and takes S(R) from the basis or the model), solves on a k-mesh and
reports band energies, occupations and the Fermi level through ASE's standard getters.
It reports no energy and no forces: the model predicts neither, and asking for them
raises ASE's ``PropertyNotImplementedError``.
"""

from __future__ import annotations

import math
import sys
import warnings
import weakref

import numpy as np
from ase import Atoms
from ase.calculators.abc import GetOutputsMixin
from ase.calculators.calculator import Calculator, all_changes

from ase_deeph import solvers
from ase_deeph.inference.base import HSProvider
from ase_deeph.inference.provider import resolve_provider
from ase_deeph.solvers.conditioning import NUMERICAL, OverlapPolicy, check_spectrum
from interfaces import HSData
from interfaces.errors import ConfigError

__all__ = ["DeepHCalculator", "HSProvider"]

_CHOICES = {"solver": ("auto", "dense", "sparse"), "eigensolver": ("auto", "numpy", "torch"),
            "ghosts": ("project", "penalty"), "uncertainty": ("auto", True, False)}


class DeepHCalculator(GetOutputsMixin, Calculator):
    """ASE calculator for band energies from a predicted (or any) H(R), S(R).

    Parameters
    ----------
    model : str, path, loaded model, or callable
        A shipped model name (``"default"``: bilayer graphene / carbon; ``"si"``: bulk
        silicon; cards in ``ase_deeph/pretrained/``); a path loads a model file; a callable
        ``f(atoms) -> HSData`` (e.g. ``ase_deeph.inference.toy.toy_hs`` or
        ``interfaces.pyscf.run``) is used as is.
    kpts : int, sequence of 3 int, or array (nk, 3)
        Mesh divisions (Monkhorst-Pack, reduced with spglib symmetry), or explicit
        fractional k-points (weights uniform). Non-periodic directions get 1.
    gamma : bool
        Gamma-centred mesh instead of Monkhorst-Pack.
    smearing : (str, float)
        Occupation function (``"fermi-dirac"``, ``"gaussian"``, ``"methfessel-paxton"``)
        and width in eV; width 0 gives zero-temperature filling and the mid-gap
        Fermi level of insulators.
    n_electrons : float, optional
        Valence electrons per cell; default from the Hamiltonian provider.
    solver : {"auto", "dense", "sparse"}
        ``"auto"`` uses dense per-k solves up to ``sparse_above`` orbitals and sparse
        shift-invert around E_F (Gamma point, ``n_bands`` states) above.
    sparse_above : int
        Size switch of ``"auto"`` in orbitals (default 4000).
    n_bands : int
        States around E_F returned by the sparse solver.
    ill_threshold : float, optional
        Project out S(k) directions with eigenvalues below this (dense solves, reported
        in a warning). Default: the provider's :class:`~ase_deeph.solvers.conditioning.
        OverlapPolicy` (for model predictions 1e-2 when the structure is ghost-prone, an
        S(k) eigenvalue below 1e-4, else 1e-6); the sparse solver cannot project and
        applies the local penalty of :func:`ase_deeph.solvers.ghosts.suppress_ghosts`
        instead. ``results["hamiltonian"]`` is always the raw prediction. Any state more
        than 100 eV below or 1000 eV above E_F is reported in a warning (ghost states).
    ghosts : {"project", "penalty"}
        How dense solves of a ghost-prone prediction avoid ghost states: the 1e-2
        projection (default; robust, also far from the training data, but it moves some
        states: up to 0.2 eV within 2 eV of E_F on the default model's test bilayers), or
        the local penalty of ``suppress_ghosts`` with no projection (closer to DFT in the
        training domain: 6.2 meV mean, 49 meV max there; it misses ghosts of structures far
        from it, e.g. monolayer graphene). The sparse solver always uses the penalty.
    eigensolver : {"auto", "numpy", "torch"}
        Dense solves with numpy/LAPACK, or batched over k with torch on ``device``;
        ``"auto"`` uses torch on the GPU when the model runs on one, numpy otherwise.
    device : str
        ``"auto"`` picks CUDA when present.
    uncertainty : {"auto", True, False}
        With a committee model (several members in the model file), solve every member
        and report the spread of the states: ``results["band_uncertainty"]`` (eV, shape
        [nspins, nk, nbands], like the eigenvalues), ``results["uncertainty_near_fermi"]``
        (eV, RMS within 2 eV of E_F) and ``results["atom_uncertainty"]`` (eV, [n_atoms]).
        Costs one prediction and one dense solve per member; ``"auto"`` skips it above
        ``sparse_above`` orbitals and for single models.
    uncertainty_threshold : float, optional
        Warn when ``uncertainty_near_fermi`` exceeds this (eV); default: the model
        card's value (``meta["committee"]["threshold_eV"]``), else 0.015.
    overlap : {"auto", "basis", "model"} or dict of str to path
        Source of S for a model: ``"auto"`` uses the training basis when it can be
        evaluated (PySCF, toy, embedded SIESTA/ABACUS basis files), else the model's
        overlap head; a dict gives the basis files per element (``{"Si": "Si.ion.xml"}``).
    """

    implemented_properties = (
        "eigenvalues", "fermi_level", "ibz_kpoints", "kpoint_weights", "occupations",
    )
    default_parameters = {
        "kpts": (4, 4, 4), "gamma": False, "smearing": ("fermi-dirac", 0.0),
        "n_electrons": None, "solver": "auto", "n_bands": 32, "sparse_above": 4000,
        "symmetry": True, "ill_threshold": None, "eigensolver": "auto", "ghosts": "project",
        "uncertainty": "auto", "uncertainty_threshold": None,
    }

    def __init__(self, model="default", device: str = "auto", overlap="auto", **kwargs):
        super().__init__(**kwargs)
        self.provider: HSProvider = resolve_provider(model, device=device, overlap=overlap)
        self.device = device
        self._attached = None

    def set(self, **kwargs) -> dict:
        """Set parameters; unknown names and invalid values raise ``ConfigError`` at once."""
        unknown = sorted(set(kwargs) - set(self.default_parameters))
        if unknown:
            raise ConfigError(f"unknown DeepHCalculator parameter(s) {unknown}; known: "
                              f"{sorted(self.default_parameters)}")
        for name, allowed in _CHOICES.items():
            if name in kwargs and kwargs[name] not in allowed:
                raise ConfigError(f"{name} must be one of {allowed}, got {kwargs[name]!r}")
        if "smearing" in kwargs:
            kind, width = kwargs["smearing"]
            if kind not in solvers.SMEARINGS or not float(width) >= 0:
                raise ConfigError(f"smearing must be (kind, width >= 0) with kind in "
                                  f"{sorted(solvers.SMEARINGS)}, got {kwargs['smearing']!r}")
        if kwargs.get("ill_threshold") is not None and not kwargs["ill_threshold"] >= 0:
            raise ConfigError(f"ill_threshold must be >= 0, got {kwargs['ill_threshold']!r}")
        return super().set(**kwargs)

    @property
    def policy(self) -> OverlapPolicy:
        """The near-null S rule of the provider with this calculator's overrides."""
        return self.provider.policy.with_options(self.parameters["ill_threshold"],
                                                 self.parameters["ghosts"])

    def _outputmixin_get_results(self):
        """Results of the attached structure, computed on first use (``GetOutputsMixin``)."""
        self._prop("eigenvalues")
        return self.results

    def set_atoms(self, atoms: Atoms) -> None:
        """Remember the Atoms this calculator is attached to (``atoms.calc = calc`` calls it).

        The getters then compare *that* object with the last calculated state, so moving
        its atoms makes the next ``get_eigenvalues()`` recompute.
        """
        self._attached = weakref.ref(atoms)

    def _prop(self, name: str):
        atoms = self._attached() if self._attached is not None else None
        if atoms is None and self.atoms is None:
            raise RuntimeError("no structure: attach the calculator (atoms.calc = calc) first")
        return self.get_property(name, atoms)

    @classmethod
    def load(cls, path, **kwargs) -> "DeepHCalculator":
        """Build a calculator from a model file (``model="default"`` for the shipped one)."""
        return cls(model=str(path), **kwargs)

    # ------------------------------------------------------------------ core
    def calculate(self, atoms=None, properties=("eigenvalues",), system_changes=all_changes):
        """Predict H and S of ``atoms``, solve, and fill ``self.results``."""
        Calculator.calculate(self, atoms, properties, system_changes)
        self.provider.check_structure(self.atoms)
        hs = self.provider(self.atoms.copy())
        p = self.parameters
        n_e = float(p["n_electrons"] if p["n_electrons"] is not None else hs.n_electrons)
        if not math.isfinite(n_e):
            raise ConfigError("the electron count is unknown: pass n_electrons=")
        sparse = self._use_sparse(hs)
        self._raw_hs = hs
        hs_solve = self.policy.prepare(hs, sparse)
        if sparse:
            self._calculate_sparse(hs_solve, n_e)
        else:
            self._calculate_dense(hs_solve, n_e)
        check_spectrum(self.results["eigenvalues"], self.results["fermi_level"],
                       self.atoms.get_chemical_formula(), known=self.policy.known_range)
        self.results["hamiltonian"] = hs
        self.results["overlap"] = hs.replace(h=None)
        self._hs_solve = hs_solve  # what the band solves used (sparse: with the penalty)

    def _use_sparse(self, hs: HSData) -> bool:
        mode = self.parameters["solver"]
        return mode == "sparse" or (mode == "auto" and
                                    hs.n_orbitals > self.parameters["sparse_above"])

    def _kpoints(self) -> tuple[np.ndarray, np.ndarray]:
        kpts = self.parameters["kpts"]
        arr = np.asarray(kpts, dtype=float)
        if arr.ndim == 2:
            return arr, np.full(len(arr), 1.0 / len(arr))
        mesh = solvers.kmesh(self.atoms, kpts, gamma_centred=self.parameters["gamma"],
                             symmetry=self.parameters["symmetry"])
        return mesh.kpts, mesh.weights

    def _calculate_dense(self, hs: HSData, n_e: float) -> None:
        kpts, weights = self._kpoints()
        self._threshold = self.policy.dense_threshold(hs, kpts)
        sol = self._dense_solver()(hs, kpts, ill_threshold=self._threshold)
        # projected-out S directions leave NaN bands at the top: keep the bands every k has
        n_keep = int(np.isfinite(sol.eigenvalues).sum(axis=-1).min())
        evals = sol.eigenvalues[..., :n_keep]
        kind, width = self.parameters["smearing"]
        deg = solvers.spin_degeneracy(hs.spin)
        fermi = solvers.fermi_level(evals, n_e, weights, deg, kind, width)
        self.results.update(
            eigenvalues=evals,  # [nspins, nk, nbands] eV
            fermi_level=fermi.fermi_level,
            ibz_kpoints=kpts,  # [nk, 3] fractional
            kpoint_weights=weights,  # [nk]
            occupations=deg * fermi.occupations,  # [nspins, nk, nbands] electrons per state
        )
        self._fermi = fermi
        self._uncertainty(hs, n_e, kpts, weights)

    def _uncertainty(self, hs: HSData, n_e: float, kpts, weights) -> None:
        """Committee spread of the states (``uncertainty`` parameter); warn above threshold."""
        mode = self.parameters["uncertainty"]
        if mode is False or self.provider.n_members == 1 or (
                mode == "auto" and hs.n_orbitals > self.parameters["sparse_above"]):
            return
        from ase_deeph.inference.uncertainty import committee_spread

        members = [self.policy.prepare(m) for m in
                   self.provider.predict_members(self.atoms, self._raw_hs)]
        unc = committee_spread(members, kpts, weights, n_e, self._threshold,
                               self.parameters["smearing"])
        band = np.full(self.results["eigenvalues"].shape, np.nan)
        n = min(band.shape[-1], unc.band.shape[-1])
        band[..., :n] = unc.band[..., :n]
        self.results.update(band_uncertainty=band,  # [nspins, nk, nbands] eV
                            uncertainty_near_fermi=unc.near_fermi,  # eV
                            atom_uncertainty=unc.atoms)  # [n_atoms] eV
        limit = self.parameters["uncertainty_threshold"]
        if limit is None:
            limit = self.provider.uncertainty_threshold
        if unc.near_fermi > limit:
            top = np.argsort(unc.atoms)[::-1][:3]
            sym = self.atoms.get_chemical_symbols()
            warnings.warn(f"{self.atoms.get_chemical_formula()}: uncertain prediction, the "
                          f"model's committee disagrees by {1e3 * unc.near_fermi:.1f} meV "
                          "(RMS) on the states "
                          f"within 2 eV of E_F (threshold {1e3 * limit:.1f} meV), most around "
                          f"atoms {[f'{sym[a]}{a}' for a in top]}: the structure is probably "
                          "outside the training data; check with DFT", RuntimeWarning,
                          stacklevel=4)

    def _ill_threshold(self) -> float:
        """Return the projection threshold of the last dense solve (sparse: the requested one)."""
        return float(getattr(self, "_threshold", self.policy.threshold or NUMERICAL))

    def _dense_solver(self):
        choice = self.parameters["eigensolver"]
        gpu = "torch" in sys.modules and sys.modules["torch"].cuda.is_available() and \
            self.device != "cpu"
        if choice == "numpy" or (choice == "auto" and not gpu):
            return solvers.solve
        from functools import partial

        from ase_deeph.inference.accel import solve_torch

        return partial(solve_torch, device="cuda" if gpu else "cpu")

    def _calculate_sparse(self, hs: HSData, n_e: float) -> None:
        requested = self.parameters["ill_threshold"]
        if requested is not None and requested > NUMERICAL:
            warnings.warn("the sparse solver cannot project out near-null S directions "
                          f"(ill_threshold={requested:g} requested); use "
                          "ase_deeph.solvers.suppress_ghosts on the data instead",
                          RuntimeWarning, stacklevel=3)
        ef = solvers.fermi_level_sparse(hs, n_e)
        sol = solvers.solve_sparse(hs, np.zeros(3), sigma=ef.fermi_level,
                                   n_bands=self.parameters["n_bands"])
        evals = np.asarray(sol.eigenvalues, dtype=float).reshape(1, 1, -1)
        deg = solvers.spin_degeneracy(hs.spin)
        self.results.update(
            eigenvalues=evals,  # [1, 1, n_bands] eV: a window around E_F at Gamma
            fermi_level=ef.fermi_level,
            ibz_kpoints=np.zeros((1, 3)),
            kpoint_weights=np.ones(1),
            occupations=deg * (evals < ef.fermi_level).astype(float),
        )
        self._fermi = ef

    # --------------------------------------------------------------- getters
    # getters: get_eigenvalues, get_occupation_numbers, get_fermi_level, get_ibz_k_points,
    # get_k_point_weights, get_number_of_spins / _bands, get_spin_polarized from
    # GetOutputsMixin (ASE's names over self.results, computed on first use)
    def get_hamiltonian(self) -> HSData:
        """Return the predicted H(R), with S(R), of the current structure."""
        self._prop("eigenvalues")
        return self.results["hamiltonian"]

    # ---------------------------------------------------------------- extras
    def band_structure(self, path=None, npoints: int = 100):
        """Bands along a path (default: ASE's path for the lattice) as a ``BandStructure``.

        Energies are absolute (eV) with ``reference`` = the Fermi level of the mesh
        calculation; ``.plot()`` shows them relative to it.
        """
        self._prop("eigenvalues")
        hs = self._hs_solve  # H with near-null S directions suppressed (see ill_threshold)
        return solvers.band_structure(hs, path, npoints, fermi_level=self.get_fermi_level(),
                                      ill_threshold=self._ill_threshold())

    def get_pdos(self, energies=None, width: float = 0.1):
        """Mulliken-projected DOS on the k-mesh (see :func:`ase_deeph.solvers.projected_dos`)."""
        self._prop("eigenvalues")
        hs = self._hs_solve  # H with near-null S directions suppressed (see ill_threshold)
        kpts, weights = self.get_ibz_k_points(), self.get_k_point_weights()
        sol = solvers.solve(hs, kpts, return_vectors=True, ill_threshold=self._ill_threshold())
        return solvers.projected_dos(hs, sol, weights, energies=energies, width=width,
                                     fermi_level=self.get_fermi_level())

    def get_mulliken(self):
        """Mulliken populations per orbital and atom (see ``solvers.mulliken_populations``)."""
        self._prop("eigenvalues")
        hs = self._hs_solve  # H with near-null S directions suppressed (see ill_threshold)
        sol = solvers.solve(hs, self.get_ibz_k_points(), return_vectors=True,
                            ill_threshold=self._ill_threshold())
        return solvers.mulliken_populations(hs, sol, self._fermi, self.get_k_point_weights())
