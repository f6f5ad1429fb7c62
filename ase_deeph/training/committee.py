"""Committee training: K members in one model file, their spread is the uncertainty.

Member 0 trains exactly as a single model would (same split, same seed); members 1..K-1
train on bootstrap resamples of the same training split with their own initialisation
(``seed + 1000 k``), each in ``OUT/members/<k>/`` (resumable like any run). Validation
and test structures are shared. The members are then merged into ``OUT/model.safetensors``
(:func:`ase_deeph.model.checkpoint.save_committee`): predictions use member 0; the
calculator solves every member and reports the spread of their states (relative to
each member's own E_F, since a gauge-invariant loss leaves each member's energy zero free)
as ``results["band_uncertainty"]``. Cost: K times the training, and K predictions and
dense solves when the uncertainty is computed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ase_deeph.model.config import ModelConfig
from ase_deeph.training.config import TrainConfig
from interfaces.atomic import write_text

__all__ = ["train_committee", "member_dir"]


def member_dir(out: Path, k: int) -> Path:
    """Run folder of committee member ``k`` (member 0 is the run folder itself)."""
    return out if k == 0 else out / "members" / str(k)


def train_committee(model_cfg: ModelConfig, train_cfg: TrainConfig, dataset_path=None,
                    out_dir=None, resume: bool = False, force: bool = False) -> Path:
    """Train ``train_cfg.committee`` members and merge them into one model file.

    Parameters are those of :func:`ase_deeph.training.trainer.train`. A resumed run
    continues each member from its ``state.pt`` (finished members return at once).

    Returns
    -------
    Path
        ``OUT/model.safetensors`` holding all members (member 0 first).
    """
    from ase_deeph.model.checkpoint import load_model, save_committee
    from ase_deeph.training.trainer import train_model

    out = Path(out_dir or train_cfg.out_dir)
    members, metas = [], []
    for k in range(train_cfg.committee):
        cfg = dataclasses.replace(train_cfg, member=k, out_dir=str(member_dir(out, k)))
        # members > 0 take member 0's model config (its avg_neighbors from the full split):
        # one network shape and normalisation for every member of the file
        path, _ = train_model(model_cfg if k == 0 else members[0].config, cfg, dataset_path,
                              None, resume, force)
        model, meta = load_model(path)  # the member's best epoch (member 0 of a merged file)
        members.append(model)
        metas.append(meta)
    extra = {key: v for key, v in metas[0].items() if key not in ("committee",)}
    extra["committee"] = {"members": len(members),
                          "member_val": [m.get("val", {}).get("loss") for m in metas],
                          "bootstrap": True, "seeds": [train_cfg.seed + 1000 * k
                                                       for k in range(len(members))]}
    path = save_committee(members, out / "model.safetensors", extra)
    write_text(out / "committee.json", json.dumps(extra["committee"], indent=1))
    return path
