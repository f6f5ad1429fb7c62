"""Accuracy of a trained model against PySCF data it never saw (held-out and transfer cells).

For every structure: predict H(R) with the model and S(R) from the basis, then compare
with the DFT H(R), S(R):

* :func:`gauge_mae_meV`: block MAE of H after removing the optimal shift mu S (the
  energy gauge that the ``gauge_mse`` loss leaves free);
* :func:`band_errors`: band energies within ``window`` eV of E_F on a Gamma-centred mesh,
  Fermi levels aligned (electron counting on the same mesh for both); the prediction is
  solved as the calculator does (:func:`predicted_levels`), the DFT H(R) with its
  near-null S(k) directions projected out (:func:`reference_levels`). For metals the
  Fermi level error is reported after removing the rigid offset of the bands (the
  median of ``e_pred - e_ref`` over the window), since the gauge makes absolute energies
  arbitrary.

``benchmarks/evaluate_model.py`` and ``benchmarks/si_transfer.py`` use the same functions.
"""

from __future__ import annotations

import numpy as np

import interfaces
from ase_deeph import solvers
from ase_deeph.inference.provider import REFERENCE_THRESHOLD

__all__ = ["gauge_mae_meV", "predicted_levels", "reference_levels", "band_errors",
           "compare_structure", "evaluate_heldout", "mesh_of", "smearing_of"]


def gauge_mae_meV(pred: interfaces.HSData, ref: interfaces.HSData) -> float:
    """Mean |H_pred + mu S - H_ref| (meV) over the reference blocks, mu optimal."""
    found = pred.find_edges(ref.edge_index[0], ref.edge_index[1], ref.cell_shift)
    hp = np.zeros(ref.n_values)
    for g in ref.shape_groups():
        have = g[found[g] >= 0]
        hp[ref.block_index(have)] = pred.h[0][pred.block_index(found[have])]
    diff = ref.h[0] - hp
    mu = float(diff @ ref.s / (ref.s @ ref.s))
    return 1e3 * float(np.mean(np.abs(diff - mu * ref.s)))


def predicted_levels(provider, pred, mesh, ghosts: str = "project", **fermi):
    """Band energies (nspins, nk, nb) and E_F of a prediction, solved as the calculator does."""
    if ghosts == "penalty":
        e = solvers.eigenvalues(provider.solvable(pred), mesh.kpts)
    else:
        e = solvers.eigenvalues(pred, mesh.kpts,
                                ill_threshold=provider.dense_threshold(pred, mesh.kpts))
    return e, solvers.fermi_level(e, pred.n_electrons, mesh.weights, **fermi).fermi_level


def reference_levels(ref, mesh, threshold: float = REFERENCE_THRESHOLD, **fermi):
    """Band energies and E_F of DFT data with S directions below ``threshold`` projected."""
    e = solvers.eigenvalues(ref, mesh.kpts, ill_threshold=threshold)
    return e, solvers.fermi_level(e, ref.n_electrons, mesh.weights, **fermi).fermi_level


def band_errors(ours: np.ndarray, ref: np.ndarray, ef_ours: float, ef_ref: float,
                window: float = 2.0) -> dict:
    """Band and Fermi-level errors within ``window`` eV of E_F, energies aligned at E_F.

    Parameters
    ----------
    ours, ref : ndarray, shape (nk, nbands)
        Band energies (eV) at the same k-points; the lowest common bands are compared.
    ef_ours, ef_ref : float
        Fermi levels, eV.
    window : float
        Half width (eV) of the window around the reference E_F, counted from the band
        edges when the spectrum is gapped (:func:`ase_deeph.solvers.fermi_window`).

    Returns
    -------
    dict
        ``mae_meV``, ``max_meV``, ``n_states`` (None, None, 0 for an empty window),
        ``fermi_error_meV``: ``(ef_ours - ef_ref) - median(ours - ref)`` over the window
        (the E_F error relative to the bands), ``rigid_shift_eV``: ``ef_ours - ef_ref``.
    """
    nb = min(ours.shape[-1], ref.shape[-1])
    a, b = ours[..., :nb], ref[..., :nb]
    # from the band edges when gapped; projected-out states are NaN
    sel = solvers.fermi_window(b, ef_ref, window) & np.isfinite(a)
    out = {"window_eV": window, "rigid_shift_eV": float(ef_ours - ef_ref),
           "n_states": int(sel.sum()), "mae_meV": None, "max_meV": None,
           "fermi_error_meV": None}
    if out["n_states"]:
        err = np.abs((a - ef_ours) - (b - ef_ref))[sel]
        offset = float(np.median((a - b)[sel]))
        out |= {"mae_meV": float(1e3 * err.mean()), "max_meV": float(1e3 * err.max()),
                "fermi_error_meV": float(1e3 * ((ef_ours - ef_ref) - offset))}
    return out


def smearing_of(ref: interfaces.HSData) -> float:
    """Fermi-Dirac width (eV) of the reference's own SCF (``metadata["smearing_eV"]``), or 0."""
    return float(ref.metadata.get("smearing_eV") or 0.0)


def mesh_of(ref: interfaces.HSData, kmesh=None):
    """Gamma-centred mesh of a structure: ``kmesh``, else its SCF mesh, else Gamma."""
    size = kmesh or ref.metadata.get("kmesh") or (1, 1, 1)
    return solvers.kmesh(ref.atoms, tuple(int(k) for k in size), gamma_centred=True)


def compare_structure(provider, ref: interfaces.HSData, smearing: float | None = None,
                      kmesh=None, window: float = 2.0) -> dict:
    """H MAE and band errors of one structure (reference PySCF data vs the model).

    Parameters
    ----------
    provider : ModelProvider
        The model.
    ref : HSData
        PySCF H(R), S(R) of the structure.
    smearing : float, optional
        Fermi-Dirac width (eV) of the E_F used to align the bands; None: zero temperature.
    kmesh : sequence of 3 int, optional
        Gamma-centred mesh; default the structure's SCF mesh (``metadata["kmesh"]``).
    window : float
        Band window around E_F, eV.

    Returns
    -------
    dict
        ``h_mae_meV``, ``n_atoms`` and ``bands`` (:func:`band_errors`).
    """
    pred = provider(ref.atoms)
    mesh = mesh_of(ref, kmesh)
    fd = {"smearing": "fermi-dirac", "width": float(smearing or 0.0)}
    e_pred, ef_pred = predicted_levels(provider, pred, mesh, **fd)
    e_ref, ef_ref = reference_levels(ref, mesh, **fd)
    return {"n_atoms": len(ref.atoms), "h_mae_meV": gauge_mae_meV(pred, ref),
            "bands": band_errors(e_pred[0], e_ref[0], ef_pred, ef_ref, window)}


def evaluate_heldout(model_file, dataset, names, smearing: float | None = None) -> dict:
    """Band errors of the held-out structures ``names`` of ``dataset`` (pooled over them).

    Returns
    -------
    dict
        ``structures`` (one :func:`compare_structure` row each, with ``name``) and
        ``bands``: ``mae_meV`` pooled over every state in the windows, ``max_meV``,
        ``n_states`` (None, None, 0 when no window holds a state).
    """
    from ase_deeph.inference.provider import ModelProvider

    provider = ModelProvider.from_any(str(model_file), device="cpu")
    rows = [{"name": n, **compare_structure(provider, interfaces.load(dataset, n), smearing)}
            for n in names]
    counts = [r["bands"]["n_states"] for r in rows]
    total = int(sum(counts))
    pooled = {"n_states": total, "mae_meV": None, "max_meV": None}
    if total:
        pooled["mae_meV"] = float(sum(r["bands"]["mae_meV"] * c
                                      for r, c in zip(rows, counts, strict=True) if c) / total)
        pooled["max_meV"] = float(max(r["bands"]["max_meV"] for r in rows
                                      if r["bands"]["n_states"]))
    return {"structures": rows, "bands": pooled}
