"""Turn a trained model into an H/S provider ``f(atoms) -> HSData`` for the calculator.

The provider predicts H(R) with the network and takes S(R) from where the training data
came from: recomputed exactly from the basis (PySCF or the toy model), or the model's
learned overlap head when the basis cannot be evaluated in-house.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
from ase import Atoms

from ase_deeph.inference.base import HSProvider, ProviderBase, as_provider
from ase_deeph.solvers.conditioning import GHOST_THRESHOLD, REFERENCE, OverlapPolicy
from interfaces import HSData
from interfaces.errors import ModelError

__all__ = ["ModelProvider", "resolve_provider", "default_model_path", "model_path",
           "shipped_models"]

OVERLAP_CHOICES = ("auto", "basis", "model")

#: Thresholds of near-null S(k) directions: one rule, in :mod:`ase_deeph.solvers.conditioning`
#: (re-exported here for the scripts that import them from the provider).
REFERENCE_THRESHOLD = REFERENCE
#: Backwards-compatible name of the projection threshold of ghost-prone predictions.
ILL_THRESHOLD = GHOST_THRESHOLD


def _models_dir() -> Path:
    return Path(str(resources.files("ase_deeph") / "pretrained"))


def shipped_models() -> list[str]:
    """Names of the models shipped in ``ase_deeph/models`` (``"default"``, ...)."""
    return sorted(p.stem for p in _models_dir().glob("*.safetensors"))


def model_path(name: str) -> Path:
    """Path of the shipped model ``name`` (its card is ``models/<name>.md``)."""
    path = _models_dir() / f"{name}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no shipped model {name!r} ({path} is missing); shipped: "
                                f"{shipped_models()}")
    return path


def default_model_path() -> Path:
    """Path of the shipped default model (``ase_deeph/pretrained/default.safetensors``)."""
    return model_path("default")


class ModelProvider(ProviderBase):
    """Predict H(R) and attach S(R) for any structure.

    Parameters
    ----------
    model : HamiltonianNet
        Trained network.
    meta : dict
        Model-file metadata (``valence_electrons``, ``overlap_source``,
        ``distance_range_A``...).
    device : str
        ``"auto"`` uses CUDA when present.
    overlap : {"auto", "basis", "model"} or dict
        ``"basis"``: exact S from the training basis; ``"model"``: the overlap head;
        ``"auto"``: the basis when it can be evaluated, else the head. A dict
        ``{element: basis file}`` (``.ion.xml``, ``.ion``, ``.orb``; or RadialBasis)
        computes S from these files with :func:`interfaces.nao.overlap.overlap`; their
        sha256 must match the files recorded in the model, if any.

    Notes
    -----
    Training data read from SIESTA/ABACUS runs that ship their basis files carry them in
    ``metadata["overlap"]`` (kind ``"nao"``, embedded content + sha256); the model file
    keeps them in ``meta["overlap_source"]``, so ``"auto"``/``"basis"`` rebuild the radial
    bases (hash-checked) and compute S of any new structure exactly. The bases' shells must
    equal the model's basis (same internal convention as the SIESTA/ABACUS readers).
    """

    def __init__(self, model, meta: dict, device: str = "auto", overlap="auto"):
        if not isinstance(overlap, Mapping) and overlap not in OVERLAP_CHOICES:
            raise ModelError(f"overlap must be one of {OVERLAP_CHOICES} or a dict of basis "
                             f"files per element, got {overlap!r}")
        self.model, self.meta, self.device, self.overlap = model, meta, device, overlap
        known = meta.get("spectrum_range_eV")
        self.policy = OverlapPolicy(kind="predicted", ghost_threshold=GHOST_THRESHOLD,
                                    known_range=tuple(known) if known else None)
        self.path: Path | None = None  # the model file (committee members load from it)
        self._members = None
        self._nao = None  # cached S maker of the NAO branch (tables are built once)

    @classmethod
    def from_any(cls, model, device: str = "auto", overlap="auto") -> "ModelProvider":
        """Build from a shipped model name, a model-file path, or a loaded model.

        Shipped names are those of :func:`shipped_models` (``"default"``, ...); a loaded
        model is a ``HamiltonianNet``.
        """
        from ase_deeph.model.checkpoint import load_model

        if isinstance(model, ModelProvider):
            if overlap == "auto" or overlap == model.overlap:
                return model
            return cls(model.model, model.meta, device, overlap)
        if isinstance(model, (str, Path)):
            shipped = str(model) in shipped_models() and not Path(model).exists()
            path = model_path(str(model)) if shipped else Path(model)
            if not path.exists():
                raise FileNotFoundError(f"model file {path} does not exist")
            net, meta = load_model(path)
            provider = cls(net, meta, device, overlap)
            provider.path = path
            return provider
        return cls(model, {}, device, overlap)

    # ------------------------------------------------------------------ S source
    def _overlap(self):
        """Return the S maker: None (the overlap head) or ``f(skeleton HSData) -> values``."""
        make, on_blocks = self._overlap_source()
        if make is None or on_blocks:
            return make
        from ase_deeph.inference.predict import copy_overlap

        return lambda skel: copy_overlap(make(skel.atoms), skel)

    def _overlap_source(self):
        """(maker, on_blocks): a function of the skeleton (True) or of the atoms (False)."""
        source = self.meta.get("overlap_source", {"kind": "none"})
        kind = source.get("kind", "none")
        if isinstance(self.overlap, Mapping) or (kind == "nao" and self.overlap != "model"):
            if self._nao is None:
                self._nao = self._nao_overlap(source)
            return self._nao, False
        if self.overlap == "model" or (self.overlap == "auto" and kind == "none"):
            if not self.model.config.predict_overlap:
                raise ModelError("this model has no overlap head and its training basis is "
                                 "unknown: pass S explicitly (predict(..., overlap=HSData))")
            return None, False
        r_cut = float(source.get("r_cut") or self.model.config.r_cut)
        if kind == "pyscf":
            from interfaces import pyscf

            # S straight onto the prediction's blocks (half the integrals, no copy)
            return (lambda skel: pyscf.overlap_on(skel, basis=source["basis"], r_cut=r_cut),
                    True)
        if kind == "toy":
            from ase_deeph.inference.toy import toy_hs

            return (lambda atoms: toy_hs(atoms, seed=source.get("seed", 0))), False
        raise ModelError(f"cannot evaluate the training basis of kind {kind!r}; "
                         "use overlap='model' or pass S explicitly")

    def _nao_overlap(self, source: dict):
        """S maker from explicit basis files or the model's embedded ones (kind ``"nao"``)."""
        from interfaces.nao.overlap import bases_from_metadata, load_bases, overlap
        from interfaces.nao.twocenter import TwoCenterTables

        recorded = source.get("files") or source.get("basis_files") or {}
        if isinstance(self.overlap, Mapping):
            bases = load_bases(dict(self.overlap))
            for el, b in bases.items():
                want = (recorded.get(el) or {}).get("sha256")
                if want and want != b.sha256:
                    name = recorded[el].get("name") or recorded[el].get("file")
                    raise ModelError(f"the basis file {b.filename!r} given for {el} differs "
                                     f"from the training one {name!r} (sha256 mismatch)")
        elif source.get("files"):
            bases = bases_from_metadata(source)
        else:
            raise ModelError("the model records its NAO basis without the file contents: "
                             "pass overlap={element: basis file path}")
        for el, shells in self.model.basis.items():
            if el not in bases:
                raise ModelError(f"no basis file for element {el}")
            if tuple(bases[el].shells) != tuple(shells):
                raise ModelError(f"basis file {bases[el].filename!r} of {el} has shells "
                                 f"{bases[el].shells}, the model {tuple(shells)}")
        tables = TwoCenterTables(bases)
        reach = 2 * max(bases[el].cutoff for el in self.model.basis)
        if self.model.config.r_cut < reach:
            warnings.warn(f"the model's graph cutoff {self.model.config.r_cut} A is shorter "
                          f"than the overlap range {reach:.3f} A: S blocks beyond it are "
                          "dropped", RuntimeWarning, stacklevel=3)
        return lambda atoms: overlap(atoms, tables)

    def __call__(self, atoms: Atoms) -> HSData:
        """Predict H(R) of ``atoms`` and attach S(R) and the valence electron count."""
        from ase_deeph.inference.predict import predict

        self.check_elements(atoms)
        hs = predict(self.model, atoms, overlap=self._overlap(), device=self.device)
        valence = self.meta.get("valence_electrons") or {}
        symbols = atoms.get_chemical_symbols()
        n_e = sum(valence[el] for el in symbols) if all(el in valence for el in symbols) \
            else math.nan
        return hs.replace(n_electrons=n_e)

    @property
    def n_members(self) -> int:
        """Committee members in the model file (1 for a single model or a loaded network)."""
        from ase_deeph.model.checkpoint import committee_size

        return committee_size(self.meta) if self.path is not None else 1

    @property
    def uncertainty_threshold(self) -> float:
        """Warning level of the committee spread near E_F (eV): the card's, else default."""
        from ase_deeph.inference.uncertainty import THRESHOLD

        return float((self.meta.get("committee") or {}).get("threshold_eV", THRESHOLD))

    def predict_members(self, atoms: Atoms, hs0: HSData) -> list[HSData]:
        """Every member's H(R) of ``atoms``: ``hs0`` (member 0, from ``self(atoms)``) first.

        The other members reuse ``hs0``'s overlap and electron count; they are loaded from
        the model file on first use. Cost: one prediction per member.
        """
        if self.n_members == 1:
            return [hs0]
        from ase_deeph.inference.predict import predict
        from ase_deeph.model.checkpoint import load_committee

        if self._members is None:
            device = str(next(self.model.parameters()).device)
            self._members = load_committee(self.path, device=device)[0][1:]
        return [hs0] + [predict(net, atoms, overlap=hs0, device=self.device)
                        .replace(n_electrons=hs0.n_electrons) for net in self._members]

    def check_elements(self, atoms: Atoms) -> None:
        """Raise ValueError naming the elements of ``atoms`` that the model does not know."""
        known = list(self.model.basis)
        missing = sorted(set(atoms.get_chemical_symbols()) - set(known))
        if missing:
            name = self.meta.get("name") or self.meta.get("source_path") or "the model"
            raise ModelError(f"elements {missing} are not in the model ({name} knows "
                             f"{sorted(known)}); use a model trained on them, or make one "
                             "with `ase-deeph generate` + `ase-deeph train`")

    def dense_threshold(self, hs: HSData, kpts) -> float:
        """Projection threshold of dense solves of ``hs`` at ``kpts`` (``self.policy``)."""
        return self.policy.dense_threshold(hs, kpts)

    def solvable(self, hs: HSData) -> HSData:
        """Return ``hs`` ready for sparse solvers (``self.policy.prepare(hs, sparse=True)``).

        The predicted H itself (``self(atoms)``) is left untouched; a ghost-prone
        structure (an S(Gamma) eigenvalue below ``GHOST_PRONE``) gets the local penalty of
        :func:`ase_deeph.solvers.ghosts.suppress_ghosts`.
        """
        return self.policy.prepare(hs, sparse=True)

    def check_structure(self, atoms: Atoms) -> None:
        """Raise for elements the model lacks; warn for distances outside its training range."""
        self.check_elements(atoms)
        ranges = self.meta.get("distance_range_A") or {}
        if not ranges or len(atoms) < 2:
            return
        from ase.neighborlist import neighbor_list

        lows = {k: v[0] for k, v in ranges.items()}
        i, j, d = neighbor_list("ijd", atoms, max(lows.values()))
        sym = np.array(atoms.get_chemical_symbols())
        keys = np.char.add(np.char.add(sym[i], "-"), sym[j])  # [n_pairs]
        low = np.array([lows.get(k, 0.0) for k in keys])
        bad = np.flatnonzero(d < low - 0.05)
        if len(bad):
            ex = [(int(i[b]), int(j[b]), round(float(d[b]), 3), str(keys[b]), low[b])
                  for b in bad[:3]]
            warnings.warn(f"{len(bad) // 2} atom pairs are closer than any pair of the same "
                          f"elements in the training data, e.g. {ex} (i, j, d, pair, min "
                          "training distance in Angstrom); predictions may be unreliable",
                          RuntimeWarning, stacklevel=2)


def resolve_provider(model, device: str = "auto", overlap="auto") -> HSProvider:
    """Return the provider of a shipped model name, a model file, a loaded model or a callable.

    Torch is imported only when a model is loaded (:meth:`ModelProvider.from_any`).
    """
    if callable(model) and not isinstance(model, (str, bytes)) and not hasattr(model, "state_dict"):
        return as_provider(model)
    return ModelProvider.from_any(model, device=device, overlap=overlap)
