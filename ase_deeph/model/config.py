"""Hyperparameters of the network (the ``[model]`` table of a training TOML)."""

from __future__ import annotations

from dataclasses import dataclass

from interfaces.errors import ConfigError

__all__ = ["ModelConfig"]


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of :class:`ase_deeph.model.network.HamiltonianNet`.

    Parameters
    ----------
    r_cut : float
        Graph cutoff in Angstrom: every pair closer than this is an edge (and a block).
    l_max : int or None
        Highest l of the hidden features; None takes 2 * (largest l of the basis).
    channels : int
        Natural-parity channels per l (parity (-1)^l).
    pseudo_channels : int
        Opposite-parity channels per l (needed for e.g. the 1e part of p-p blocks).
    n_layers : int
        Message-passing layers.
    n_radial : int
        Gaussian radial basis functions on [0, r_cut].
    radial_hidden : int
        Hidden width of the radial / species MLPs.
    n_species_embed : int
        Width of the species embedding.
    avg_neighbors : float
        Normalisation of the summed messages (set from the data by ``train``).
    predict_overlap : bool
        Add a second head that learns S the same way.
    two_centre : bool
        Give the off-site heads a direct path from the radial / species MLP to the
        bond-frame invariants (a learned Slater-Koster-like two-centre term).
    norm : {"global", "per_l"}
        Feature normalisation of each layer (:class:`ase_deeph.model.norms.RMSNorm`): "global"
        (smooth; default) or "per_l" (model files written before this option; steep
        near high-symmetry geometries).
    dtype : {"float32", "float64"}
        Floating-point precision.
    """

    r_cut: float = 6.0
    l_max: int | None = None
    channels: int = 32
    pseudo_channels: int = 8
    n_layers: int = 3
    n_radial: int = 16
    radial_hidden: int = 64
    n_species_embed: int = 16
    avg_neighbors: float = 16.0
    predict_overlap: bool = False
    two_centre: bool = True
    norm: str = "global"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.r_cut <= 0 or self.channels < 1 or self.pseudo_channels < 0:
            raise ConfigError("r_cut and channels must be positive")
        if self.dtype not in ("float32", "float64"):
            raise ConfigError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.norm not in ("global", "per_l"):
            raise ConfigError(f"norm must be 'global' or 'per_l', got {self.norm!r}")
