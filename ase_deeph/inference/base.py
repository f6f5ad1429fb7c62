"""The provider contract: what the calculator, EPC and the CLI ask of a source of H(R), S(R).

A provider maps a structure to its :class:`~interfaces.HSData` and says how its H is to be
solved. :class:`HSProvider` writes the contract down; :class:`ProviderBase` gives the
default hooks; :func:`as_provider` wraps a plain ``f(atoms) -> HSData`` (PySCF, the toy
model, a user's function), which is treated as exact DFT-like data.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from ase import Atoms

from ase_deeph.inference.uncertainty import THRESHOLD
from ase_deeph.solvers.conditioning import OverlapPolicy
from interfaces.hsdata import HSData

__all__ = ["HSProvider", "ProviderBase", "FunctionProvider", "as_provider"]


@runtime_checkable
class HSProvider(Protocol):
    """A source of H(R), S(R) for structures.

    Attributes
    ----------
    policy : OverlapPolicy
        How solves of its H treat near-null S(k) directions.
    n_members : int
        Committee size (1: no uncertainty estimate).
    uncertainty_threshold : float
        Committee spread near E_F (eV) above which the calculator warns.
    """

    policy: OverlapPolicy
    n_members: int
    uncertainty_threshold: float

    def __call__(self, atoms: Atoms) -> HSData:
        """Return H(R) and S(R) (and the valence electron count) of ``atoms``."""

    def check_structure(self, atoms: Atoms) -> None:
        """Raise for structures it cannot treat; warn for ones it may treat badly."""

    def predict_members(self, atoms: Atoms, hs0: HSData) -> list[HSData]:
        """Every committee member's H(R) of ``atoms`` (member 0 is ``hs0``, S shared)."""


class ProviderBase:
    """Default hooks of :class:`HSProvider`: exact H, no structure checks, one member."""

    policy: OverlapPolicy = OverlapPolicy(kind="exact")
    n_members: int = 1
    uncertainty_threshold: float = THRESHOLD

    def __call__(self, atoms: Atoms) -> HSData:  # pragma: no cover - abstract
        """Return H(R) and S(R) of ``atoms`` (subclasses implement it)."""
        raise NotImplementedError

    def check_structure(self, atoms: Atoms) -> None:
        """Accept every structure (subclasses check elements and distances)."""

    def predict_members(self, atoms: Atoms, hs0: HSData) -> list[HSData]:
        """Return ``[hs0]``: a single source has no committee."""
        return [hs0]


class FunctionProvider(ProviderBase):
    """A plain function ``f(atoms) -> HSData`` as a provider (exact data by default)."""

    def __init__(self, function: Callable[[Atoms], HSData],
                 policy: OverlapPolicy | None = None) -> None:
        self.function = function
        if policy is not None:
            self.policy = policy

    def __call__(self, atoms: Atoms) -> HSData:
        """Return ``function(atoms)``."""
        return self.function(atoms)

    def __repr__(self) -> str:
        return f"FunctionProvider({getattr(self.function, '__name__', self.function)!r})"


def as_provider(obj) -> HSProvider:
    """Return ``obj`` if it fulfils :class:`HSProvider`, else wrap the callable ``obj``."""
    if isinstance(obj, HSProvider):
        return obj
    if callable(obj):
        return FunctionProvider(obj)
    raise TypeError(f"expected a provider or a callable f(atoms) -> HSData, got {obj!r}")

