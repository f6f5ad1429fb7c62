"""The provider contract: what the calculator, EPC and the CLI ask of a source of H(R), S(R).

A provider maps a structure to its :class:`~interfaces.HSData` and says how its H is to be
solved. :class:`HSProvider` writes the contract down; :class:`ProviderBase` gives the
default hooks; :func:`as_provider` wraps a plain ``f(atoms) -> HSData`` (PySCF, the toy
model, a user's function), which is treated as exact DFT-like data.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

from ase import Atoms

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
    """

    policy: OverlapPolicy

    def __call__(self, atoms: Atoms) -> HSData:
        """Return H(R) and S(R) (and the valence electron count) of ``atoms``."""

    def check_structure(self, atoms: Atoms) -> None:
        """Raise for structures it cannot treat; warn for ones it may treat badly."""


class ProviderBase:
    """Default hooks of :class:`HSProvider`: exact H, no structure checks."""

    policy: OverlapPolicy = OverlapPolicy(kind="exact")

    def __call__(self, atoms: Atoms) -> HSData:  # pragma: no cover - abstract
        """Return H(R) and S(R) of ``atoms`` (subclasses implement it)."""
        raise NotImplementedError

    def check_structure(self, atoms: Atoms) -> None:
        """Accept every structure (subclasses check elements and distances)."""


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
