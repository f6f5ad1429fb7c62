"""Band structure along a path (ASE ``BandStructure``) and PNG plots of bands and DOS.

Plots use matplotlib's object API with the Agg canvas (``Figure`` +
``FigureCanvasAgg``); pyplot and the global backend are never touched.
"""

from __future__ import annotations

import math
import os

import numpy as np
from ase.dft.kpoints import BandPath
from ase.spectrum.band_structure import BandStructure

from ase_deeph.solvers.dos import DOS, ProjectedDOS
from ase_deeph.solvers.eigen import ILL_THRESHOLD, solve
from ase_deeph.solvers.kpoints import bandpath
from interfaces.atomic import atomic_path
from interfaces.hsdata import HSData

__all__ = ["band_structure", "plot_bands", "plot_dos"]


def band_structure(hs: HSData, path: str | BandPath | None = None, npoints: int = 100,
                   fermi_level: float | None = None,
                   ill_threshold: float = ILL_THRESHOLD) -> BandStructure:
    """Bands along a path as an :class:`ase.spectrum.band_structure.BandStructure`.

    Parameters
    ----------
    hs : HSData
        Data with H and S.
    path : str, BandPath or None
        Special-point string (e.g. ``"GMKG"``), a ready ``BandPath``, or None for
        ASE's default path of the lattice (``atoms.cell.bandpath``, honouring pbc).
    npoints : int
        Number of k-points when a path string is given.
    fermi_level : float, optional
        Reference energy in eV; default ``hs.fermi_level`` if known, else 0.

    Returns
    -------
    BandStructure
        ``energies`` of shape (nspins, nk, nbands) in eV (absolute), ``reference`` = E_F.
    """
    bp = bandpath(hs.atoms, path, npoints)
    sol = solve(hs, bp.kpts, ill_threshold=ill_threshold)
    ref = fermi_level if fermi_level is not None else hs.fermi_level
    ref = float(ref) if ref is not None and math.isfinite(ref) else 0.0
    return BandStructure(path=bp, energies=sol.eigenvalues, reference=ref)


def new_figure(figsize=(6.0, 4.5)):
    """Return a matplotlib Figure on the Agg canvas (no pyplot state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path) -> str:
    """Write the PNG atomically (temp file in the same folder, then rename)."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    return os.fspath(path)


#: y-axis label of band plots whose Fermi level is unknown (absolute energies)
UNKNOWN_EF_LABEL = "E (eV, absolute: Fermi level unknown)"


def plot_bands(bs: BandStructure, path, emin: float = -10.0, emax: float = 5.0,
               title: str | None = None, ax=None, fermi_known: bool = True) -> str:
    """Plot a band structure (energies relative to ``bs.reference``) to a PNG file.

    ``ax`` (optional) receives the curves instead of a new figure. With ``fermi_known``
    False the energies are plotted as they are, over their full range, and the axis says
    that E_F is unknown. Returns the path.
    """
    fig = new_figure() if ax is None else ax.figure
    ax = fig.add_subplot(1, 1, 1) if ax is None else ax
    if fermi_known:  # ASE plots absolute energies: shift them so that E_F is at zero
        bs.subtract_reference().plot(ax=ax, emin=emin, emax=emax,
                                     ylabel=r"$E - E_\mathrm{F}$ (eV)")
    else:
        e = bs.energies
        bs.plot(ax=ax, emin=float(e.min()) - 1.0, emax=float(e.max()) + 1.0,
                ylabel=UNKNOWN_EF_LABEL)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_dos(result: DOS | ProjectedDOS, path, by: str = "element",
             emin: float | None = None, emax: float | None = None,
             title: str | None = None) -> str:
    """Plot a total DOS, or a projected DOS (``by`` = "element", "l" or "atom"), to PNG.

    Energies are shifted by the stored Fermi level when it is known. Spin
    channels are summed. Returns the written path.
    """
    known = math.isfinite(result.fermi_level)
    ef = result.fermi_level if known else 0.0
    x = result.energies - ef
    fig = new_figure()
    ax = fig.add_subplot(1, 1, 1)
    if isinstance(result, DOS):
        ax.plot(x, result.total, color="k", lw=1.2, label="total")
    else:
        ax.plot(x, result.total.sum(axis=0), color="k", lw=1.2, label="total")
        curves = _projections(result, by)
        for label, y in curves.items():
            ax.plot(x, y, lw=1.0, label=label)
    if known:
        ax.axvline(0.0, color="gray", ls="--", lw=0.8)
    ax.set_xlim(emin if emin is not None else x[0], emax if emax is not None else x[-1])
    ax.set_ylim(bottom=0.0)
    ax.set_xlabel(r"$E - E_\mathrm{F}$ (eV)" if known else "E (eV, absolute: Fermi level unknown)")
    ax.set_ylabel("DOS (states/eV/cell)")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _projections(result: ProjectedDOS, by: str) -> dict[str, np.ndarray]:
    if by == "element":
        return {el: y.sum(axis=0) for el, y in result.element.items()}
    if by == "l":
        return {f"l={q}": result.angular[:, q].sum(axis=0) for q in range(result.angular.shape[1])}
    if by == "atom":
        return {f"atom {q}": result.atom[:, q].sum(axis=0) for q in range(result.atom.shape[1])}
    raise ValueError(f"by must be 'element', 'l' or 'atom', got {by!r}")
