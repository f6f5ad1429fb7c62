"""Frozen configuration dataclasses of the model and of training; defaults live only here.

A TOML file has one table per stage::

    [model]
    r_cut = 6.0
    channels = 32

    [train]
    dataset = "data.h5"
    epochs = 200

:func:`from_toml` returns ``(ModelConfig, TrainConfig)``; unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ase_deeph.model.config import ModelConfig
from ase_deeph.settings import ConfigError, build, load_toml

__all__ = ["ModelConfig", "TrainConfig", "from_toml", "config_from_dict"]


@dataclass(frozen=True)
class TrainConfig:
    """Training settings of :func:`ase_deeph.training.trainer.train`.

    Parameters
    ----------
    dataset : str
        HDF5 dataset of HSData structures.
    out_dir : str
        Run folder (checkpoints, metrics.jsonl, model files).
    seed : int
        Seed of the split, initialisation and shuffling.
    split : tuple of float
        Train / validation / test fractions, by structure.
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Structures per optimisation step (per process under DDP).
    lr : float
        Peak learning rate (Adam).
    weight_decay : float
        AdamW weight decay.
    schedule : {"plateau", "cosine"}
        ReduceLROnPlateau on the validation loss, or cosine decay after a linear warmup.
    warmup_epochs : int
        Linear warmup length (cosine schedule).
    plateau_factor, plateau_patience : float, int
        ReduceLROnPlateau settings.
    min_lr : float
        Lower bound of the learning rate.
    early_stop_patience : int
        Stop when the validation loss has not improved for this many epochs.
    loss : {"mse", "gauge_mse"}
        Plain MSE on H blocks, or MSE after removing the optimal shift mu S per structure.
    overlap_weight : float
        Weight of the S loss when the model has an overlap head.
    band_weight : float
        Weight of the band-space loss (:mod:`ase_deeph.training.bandloss`; 0 switches it off):
        the H error projected on the reference states within ``band_window`` eV of E_F
        on a Gamma-centred ``band_kmesh`` per structure.
    band_kmesh : tuple of int
        k-mesh of the band loss.
    band_window : float
        Half width of its energy window around E_F, eV.
    device : str
        ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda[:n]"``.
    progress : bool
        Show a tqdm progress bar.
    max_structures : int or None
        Use only the first structures of the file.
    init_model : str
        Start from the weights (and model settings) of this model file instead of a
        random initialisation (fine-tuning); its basis must match the dataset's.
    holdout : tuple of str
        Structure names that form the test split (never trained on), e.g. to compare two
        runs on the same held-out structures; the rest is split by ``split`` and its
        test share is trained on.
    committee : int
        Members of the model file (1: a single model). Member 0 trains on the training
        split as a single model would; members 1.. on bootstrap resamples of it with
        their own initialisation; their spread is the uncertainty the calculator reports
        (:mod:`ase_deeph.training.committee`).
    member : int
        Which committee member this run trains (set by the committee trainer; 0 for a
        single model).
    """

    dataset: str = ""
    out_dir: str = "run"
    seed: int = 0
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    epochs: int = 200
    batch_size: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.0
    schedule: str = "plateau"
    warmup_epochs: int = 5
    plateau_factor: float = 0.5
    plateau_patience: int = 10
    min_lr: float = 1e-5
    early_stop_patience: int = 40
    loss: str = "mse"
    overlap_weight: float = 1.0
    band_weight: float = 0.0
    band_kmesh: tuple[int, int, int] = (3, 3, 1)
    band_window: float = 3.0
    device: str = "auto"
    progress: bool = True
    max_structures: int | None = None
    init_model: str = ""
    holdout: tuple[str, ...] = ()
    committee: int = 1
    member: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "split", tuple(float(x) for x in self.split))
        object.__setattr__(self, "holdout", tuple(str(x) for x in self.holdout))
        object.__setattr__(self, "band_kmesh", tuple(int(x) for x in self.band_kmesh))
        if len(self.band_kmesh) != 3 or min(self.band_kmesh) < 1 or self.band_weight < 0:
            raise ConfigError("band_kmesh must be three positive integers and band_weight >= 0")
        if len(self.split) != 3 or abs(sum(self.split) - 1) > 1e-6 or min(self.split) < 0:
            raise ConfigError(f"split must be three fractions summing to 1, got {self.split}")
        if self.schedule not in ("plateau", "cosine"):
            raise ConfigError(f"schedule must be 'plateau' or 'cosine', got {self.schedule!r}")
        if self.committee < 1 or not 0 <= self.member < max(self.committee, 1):
            raise ConfigError(f"committee must be >= 1 and 0 <= member < committee, got "
                              f"{self.committee}, {self.member}")
        if self.loss not in ("mse", "gauge_mse"):
            raise ConfigError(f"loss must be 'mse' or 'gauge_mse', got {self.loss!r}")



def config_from_dict(data: dict, where: str = "config") -> tuple[ModelConfig, TrainConfig]:
    """Build ``(ModelConfig, TrainConfig)`` from a dict with ``model`` and ``train`` tables."""
    unknown = set(data) - {"model", "train"}
    if unknown:
        raise ConfigError(f"{where}: unknown tables {sorted(unknown)}; allowed model, train")
    return (build(ModelConfig, data.get("model", {}), f"{where} [model]"),
            build(TrainConfig, data.get("train", {}), f"{where} [train]"))


def from_toml(path) -> tuple[ModelConfig, TrainConfig]:
    """Read a TOML config; relative ``dataset`` / ``out_dir`` are taken relative to its folder."""
    path = Path(path)
    model_cfg, train_cfg = config_from_dict(load_toml(path), str(path))
    fix = {}
    for key in ("dataset", "out_dir", "init_model"):
        value = getattr(train_cfg, key)
        if value and not Path(value).is_absolute():
            fix[key] = str((path.parent / value).resolve())
    return model_cfg, dataclasses.replace(train_cfg, **fix)
