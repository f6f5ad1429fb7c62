"""Bands near E_F of huge cells: one factorisation per k-point, resumable, with an ETA.

For each k-point of a path, :func:`~ase_deeph.solvers.sparse.solve_sparse` factorises
``H(k) - sigma S(k)`` once (real symmetric at time-reversal-invariant k, complex Hermitian
elsewhere) and returns the ``n_bands`` states nearest ``sigma``. After every k-point the
results so far are written atomically to ``checkpoint`` (``.npz``); a rerun with the same
data, path, sigma and band count continues where the last one stopped. As with any
Lanczos window, an exactly degenerate level cut by the window's edge may come back with
fewer copies than its multiplicity (ask for a few more bands than needed).
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ase_deeph.solvers.sparse import solve_sparse
from interfaces.atomic import atomic_path
from interfaces.hsdata import HSData

__all__ = ["SparseBands", "fingerprint", "sparse_bands"]


@dataclass(frozen=True)
class SparseBands:
    """States nearest ``sigma`` along a list of k-points.

    Attributes
    ----------
    kpts : ndarray, shape (nk, 3)
        Fractional k-points.
    energies : ndarray, shape (nspins, nk, n_bands)
        Eigenvalues (eV), ascending per k-point.
    sigma : float
        Shift (eV) the states are nearest to.
    seconds : ndarray, shape (nk,)
        Wall time of each k-point's factorisation and eigen-solve (NaN if resumed from a
        checkpoint written by an older run).
    """

    kpts: np.ndarray
    energies: np.ndarray
    sigma: float
    seconds: np.ndarray


def fingerprint(hs: HSData, *arrays: np.ndarray, text: str = "") -> str:
    """Return the SHA-256 of H, S, the edges, ``arrays`` and ``text``.

    The key of a checkpoint: a checkpoint of another problem is never reused.
    """
    h = hashlib.sha256()
    for arr in (hs.h, hs.s, hs.edge_index, hs.cell_shift, *arrays):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(text.encode())
    return h.hexdigest()


def _key(hs: HSData, kpts: np.ndarray, sigma: float, n_bands: int) -> str:
    return fingerprint(hs, kpts, text=f"{sigma:.12g}/{n_bands}")


def sparse_bands(hs: HSData, kpts, sigma: float, n_bands: int = 16,
                 checkpoint: str | os.PathLike | None = None,
                 progress: bool = False) -> SparseBands:
    """States nearest ``sigma`` at every k-point, one factorisation each, resumable.

    Parameters
    ----------
    hs : HSData
        Data with H and S (near-null S directions already treated, see
        :class:`~ase_deeph.solvers.conditioning.OverlapPolicy`).
    kpts : array_like, shape (nk, 3)
        Fractional k-points (e.g. ``solvers.bandpath(...).kpts``).
    sigma : float
        Shift in eV, typically E_F.
    n_bands : int
        States per k-point and spin channel.
    checkpoint : path, optional
        ``.npz`` file keeping the finished k-points; reused when it belongs to the same
        problem (data, k-points, sigma, n_bands), replaced otherwise.
    progress : bool
        Show a progress bar with the ETA (tqdm).
    """
    kpts = np.atleast_2d(np.asarray(kpts, dtype=float))
    key = _key(hs, kpts, sigma, n_bands)
    energies = np.full((hs.n_spin_channels, len(kpts), n_bands), np.nan)
    seconds = np.full(len(kpts), np.nan)
    done = np.zeros(len(kpts), dtype=bool)
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.is_file():
        with np.load(path) as old:
            if str(old["key"]) == key:
                energies, seconds, done = old["energies"], old["seconds"], old["done"]
    todo = np.flatnonzero(~done)
    steps = todo
    if progress:
        from tqdm import tqdm

        steps = tqdm(todo, desc="k-points", unit="k", initial=int(done.sum()),
                     total=len(kpts))
    for i in steps:
        t0 = time.perf_counter()
        sol = solve_sparse(hs, kpts[i], sigma=sigma, n_bands=n_bands)
        energies[:, i] = sol.eigenvalues
        seconds[i] = time.perf_counter() - t0
        done[i] = True
        if path is not None:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.savez(f, key=key, energies=energies, seconds=seconds, done=done,
                             kpts=kpts, sigma=sigma)
    return SparseBands(kpts=kpts, energies=energies, sigma=float(sigma), seconds=seconds)
