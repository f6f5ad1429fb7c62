"""One rule for near-null directions of S(k), used by every solve path.

A localized basis can be nearly linearly dependent: an error dh of a *predicted* H along
an S(k) eigenvector with eigenvalue s moves a state by about dh / s ("ghost" states). The
remedy depends on where H comes from and on the basis, and it used to be re-derived in
the calculator, the CLI verbs, the demo and EPC with two different defaults. Here it is
decided once, by :class:`OverlapPolicy`:

========================  ====================================================================
H(R) from                 dense solves project out S(k) directions below
========================  ====================================================================
a DFT code (``exact``)    ``NUMERICAL`` (1e-6): numerically null directions only, reported
a DFT reference folded    ``REFERENCE`` (1e-4): the folded H(R) has spurious states along
from a k-mesh             near-null directions, physical states move < 1 meV
(``reference``)
a model (``predicted``)   ``GHOST_THRESHOLD`` (1e-2) when the structure is ghost-prone (an
                          S(k) eigenvalue below ``GHOST_PRONE`` = 1e-4), else ``NUMERICAL``:
                          in a well-conditioned basis (``gth-dzvp-molopt-sr-compact``, min
                          eig S(k) >= 2e-3 on carbon and Si) nothing is projected
========================  ====================================================================

Sparse solvers cannot project; for a ghost-prone prediction they (and dense solves with
``ghosts="penalty"``) get the local penalty of :func:`ase_deeph.solvers.ghosts.suppress_ghosts`
from :meth:`OverlapPolicy.prepare`. :func:`check_spectrum` warns whenever a state lies more
than 100 eV below or 1000 eV above E_F (``FAR_FROM_FERMI``), and says why when states lie
between E_F + 40 eV and that edge (``BASIS_TOP``: the top of a localized basis's own DFT
spectrum, 140-230 eV above E_F, not physical bands), so that no path returns a far state
without a reason. A model records the Gamma-point spectrum of its training references
(``spectrum_range_eV`` in its metadata, :attr:`OverlapPolicy.known_range`); predicted
states more than ``SPECTRUM_MARGIN`` outside it are no basis top but the model
extrapolating, and are reported as such (the default model on C60: a state at +569 eV
where PySCF's C60 stops at +230 eV and the model's training references at +233 eV).
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass

import numpy as np

from interfaces.errors import ConfigError
from interfaces.hsdata import HSData

__all__ = [
    "OverlapPolicy", "check_spectrum", "ghost_prone", "min_overlap_on", "NUMERICAL", "REFERENCE",
    "GHOST_PRONE", "GHOST_THRESHOLD", "FAR_FROM_FERMI", "BASIS_TOP", "SPECTRUM_MARGIN",
    "BasisTopWarning",
]

#: numerically null S(k) directions (any H)
NUMERICAL = 1e-6
#: DFT H(R) folded from a k-mesh SCF (bilayer structure 000015 on the SCF mesh: unprojected
#: VBM 0.1398 eV, SCF 0.1607 eV, projected at 1e-3 0.1611 eV; twisted bilayer Gamma valence
#: top moves 0.008 meV at 1e-4)
REFERENCE = 1e-4
#: a structure is ghost-prone for a predicted H when some S(k) eigenvalue is below this
GHOST_PRONE = 1e-4
#: projection of a ghost-prone prediction (the default model's test bilayers in the old
#: compact basis: unprojected 1.9 eV mean band errors on two of seven cells)
GHOST_THRESHOLD = 1e-2
#: the window (eV relative to E_F) outside which a state is reported as a ghost. Below:
#: valence-only GTH pseudopotentials put no state 100 eV under E_F (PySCF's graphene
#: bottom: -21.3 eV). Above: the top of a localized basis's own spectrum is high and
#: physical (PySCF's graphene, 6x6x1 mesh: +230 eV in gth-dzvp-molopt-sr-compact, +142 eV
#: in gth-dzvp-compact), while ghosts of a near-null S(k) reach thousands of eV (+8,315
#: and +115,642 eV measured with the old default model).
FAR_FROM_FERMI = (-100.0, 1000.0)
#: states more than this far above E_F (eV), up to FAR_FROM_FERMI, are the basis's own top:
#: reported with the reason (:class:`BasisTopWarning`), not as ghosts
BASIS_TOP = 40.0
#: how far (eV) a predicted state may leave the spectrum of the model's training references
#: before it is reported as extrapolation (the evaluations' sanity rule: 10 eV)
SPECTRUM_MARGIN = 10.0

_KINDS = ("exact", "reference", "predicted")
_GHOSTS = ("project", "penalty")


@dataclass(frozen=True)
class OverlapPolicy:
    """How solves treat near-null S(k) directions of one source of H(R).

    Parameters
    ----------
    kind : {"exact", "reference", "predicted"}
        Where H comes from (see the module table).
    threshold : float, optional
        Explicit projection threshold; overrides the rule for dense solves.
    ghosts : {"project", "penalty"}
        For a ghost-prone prediction: project at ``ghost_threshold`` (robust) or add the
        local penalty and project nothing (closer to DFT in the training domain).
    ghost_threshold : float
        Projection threshold of ghost-prone predictions.
    known_range : (float, float), optional
        Lowest and highest state of the model's training references relative to E_F (eV,
        model metadata ``spectrum_range_eV``); :func:`check_spectrum` reports predicted
        states beyond it.
    """

    kind: str = "exact"
    threshold: float | None = None
    ghosts: str = "project"
    ghost_threshold: float = GHOST_THRESHOLD
    known_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"overlap policy kind must be one of {_KINDS}, got {self.kind!r}")
        if self.ghosts not in _GHOSTS:
            raise ConfigError(f"ghosts must be one of {_GHOSTS}, got {self.ghosts!r}")
        if self.threshold is not None and not self.threshold >= 0:
            raise ConfigError(f"ill_threshold must be >= 0, got {self.threshold!r}")

    def with_options(self, threshold: float | None = None,
                     ghosts: str | None = None) -> "OverlapPolicy":
        """Return a copy with a user's explicit threshold and ghost mode (None keeps)."""
        return dataclasses.replace(self, threshold=self.threshold if threshold is None
                                   else float(threshold), ghosts=ghosts or self.ghosts)

    def penalised(self, sparse: bool) -> bool:
        """Whether :meth:`prepare` adds the ghost penalty (before any overlap test)."""
        return self.kind == "predicted" and (sparse or self.ghosts == "penalty")

    def prepare(self, hs: HSData, sparse: bool = False) -> HSData:
        """Return ``hs`` as the solver should see it.

        A ghost-prone prediction (:func:`ghost_prone`) solved
        sparsely, or densely with ``ghosts="penalty"``, gets the local penalty; anything
        else is returned unchanged (the raw prediction stays the caller's).
        """
        if not self.penalised(sparse) or hs.s is None or hs.spin not in ("none", "collinear"):
            return hs
        from ase_deeph.solvers.ghosts import suppress_ghosts

        if not ghost_prone(hs):
            return hs
        return suppress_ghosts(hs, threshold=self.ghost_threshold)

    def dense_threshold(self, hs: HSData, kpts) -> float:
        """Projection threshold for dense solves of ``hs`` (as :meth:`prepare` returned it)."""
        if self.threshold is not None:
            return float(self.threshold)
        if self.kind == "reference":
            return REFERENCE
        if self.kind == "exact" or self.ghosts == "penalty" or hs.s is None:
            return NUMERICAL
        return self.ghost_threshold if min_overlap_on(hs, kpts) < GHOST_PRONE else NUMERICAL


def ghost_prone(hs: HSData, small: int = 2000) -> bool:
    """Whether S(k) has an eigenvalue below ``GHOST_PRONE``.

    Cells up to ``small`` orbitals are checked on a Gamma-centred 3x3x3 mesh (it holds K
    of hexagonal lattices, where graphene's near-null directions sit); larger cells, whose
    Gamma point folds many k-points in, at Gamma by one sparse inertia count.
    """
    from ase_deeph.solvers.ghosts import overlap_below
    from ase_deeph.solvers.kpoints import kmesh

    if hs.n_orbitals > small:
        return overlap_below(hs, GHOST_PRONE)
    mesh = kmesh(hs.atoms, (3, 3, 3), gamma_centred=True, symmetry=False)
    return min_overlap_on(hs, mesh.kpts) < GHOST_PRONE


def min_overlap_on(hs: HSData, kpts) -> float:
    """Smallest eigenvalue of S(k) over ``kpts`` (dense, chunked to ~256 MB)."""
    from ase_deeph.solvers.bloch import bloch_matrices

    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    step = max(1, 2**28 // (16 * hs.n_orbitals**2))
    return min(float(np.linalg.eigvalsh(bloch_matrices(hs, kpts[i:i + step],
                                                       which=("s",)).s)[:, 0].min())
               for i in range(0, len(kpts), step))


class BasisTopWarning(UserWarning):
    """States far above E_F that belong to the localized basis itself (not ghosts)."""


def check_spectrum(eigenvalues, fermi_level: float, where: str = "",
                   window: tuple[float, float] = FAR_FROM_FERMI,
                   known: tuple[float, float] | None = None) -> int:
    """Warn when finite eigenvalues lie outside ``E_F + window`` (eV); explain the basis top.

    Parameters
    ----------
    eigenvalues : array_like
        States, eV (any shape; NaN entries of projected directions are ignored).
    fermi_level : float
        E_F, eV; nothing is checked when it is not finite.
    where : str
        Name of the structure or path, put in front of the messages.
    window : (float, float)
        Allowed range relative to E_F (:data:`FAR_FROM_FERMI`).
    known : (float, float), optional
        Spectrum of the model's training references relative to E_F
        (:attr:`OverlapPolicy.known_range`); it narrows ``window`` to ``known`` widened by
        :data:`SPECTRUM_MARGIN`, and states beyond are reported as the model extrapolating.

    Returns
    -------
    int
        Number of states outside the (narrowed) window: ghosts of near-null S(k)
        directions, or a structure far from what the model knows. States between
        ``E_F + BASIS_TOP`` and the upper edge get a :class:`BasisTopWarning` saying why
        they are there (the same states are in DFT in the same basis).
    """
    e = np.asarray(eigenvalues, dtype=float)
    if not np.isfinite(fermi_level):
        return 0
    rel = (max(window[0], known[0] - SPECTRUM_MARGIN), min(window[1], known[1] + SPECTRUM_MARGIN)
           ) if known is not None else tuple(window)
    lo, hi = fermi_level + rel[0], fermi_level + rel[1]
    head = f"{where}: " if where else ""
    top = np.isfinite(e) & (e > fermi_level + BASIS_TOP) & (e <= hi)
    if top.any():
        warnings.warn(f"{head}{int(top.sum())} state(s) lie more than "
                      f"{BASIS_TOP:g} eV above E_F (up to {float(e[top].max() - fermi_level):+.0f}"
                      " eV): the top of the localized basis's own spectrum, present in DFT in "
                      "the same basis too (PySCF's graphene in gth-dzvp-molopt-sr-compact "
                      "reaches +230 eV); they are no physical bands: read bands and DOS within "
                      "a few eV of E_F", BasisTopWarning, stacklevel=3)
    far = np.isfinite(e) & ((e < lo) | (e > hi))
    n = int(far.sum())
    if n:
        worst = float(e[far][np.argmax(np.abs(e[far] - fermi_level))])
        why = ("ghost states of a nearly singular overlap, or a structure far from the "
               "model's training data") if known is None else (
            f"beyond the spectrum of the model's training references (E_F {known[0]:+.1f} / "
            f"{known[1]:+.1f} eV at Gamma), so no basis top: the model extrapolates, the "
            "structure is far from its training data")
        warnings.warn(f"{head}{n} state(s) lie outside E_F {rel[0]:+g} / {rel[1]:+g} eV "
                      f"(E_F = {fermi_level:.3f} eV, farthest {worst:.1f} eV): {why}",
                      RuntimeWarning, stacklevel=3)
    return n
