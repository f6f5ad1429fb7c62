"""Operations that rewrite the block values of :class:`~interfaces.hsdata.HSData`.

Hermiticity (``X_ji(-R) = X_ij(R)^dagger``: its error and its exact enforcement), signed
orbital permutations, and the spin kinds (conversions, the spin-major spinor layout
``[[uu, ud], [du, dd]]``). The :class:`~interfaces.hsdata.HSData` methods of the same
names call these; every loop runs over element-pair shape groups.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from interfaces.hsdata import HSData

__all__ = ["hermiticity_error", "symmetrize", "permute_orbitals", "with_spin",
           "spinor_from_parts", "spinor_parts"]


# -------------------------------------------------------------- hermiticity
def hermiticity_error(hs: HSData) -> float:
    """Max |X_ij(R) - X_ji(-R)^dagger| over H channels and S (inf if a partner is missing).

    Parameters
    ----------
    hs : HSData
        The data.

    Returns
    -------
    float
    """
    rev = hs.reverse_edges
    if np.any(rev < 0):
        return math.inf
    err = 0.0
    for values, spinor in _all_values(hs):
        for g in hs.shape_groups():
            a = values[hs.block_index(g, spinor)]
            b = values[hs.block_index(rev[g], spinor)]
            err = max(err, float(np.max(np.abs(a - np.conj(b.transpose(0, 2, 1))), initial=0)))
    return err


def symmetrize(hs: HSData) -> HSData:
    """Return a copy with ``X <- (X_ij(R) + X_ji(-R)^dagger) / 2`` enforced exactly.

    Parameters
    ----------
    hs : HSData
        The data; every block needs its (j, i, -R) partner.

    Returns
    -------
    HSData

    Raises
    ------
    ValueError
        If a partner block is missing.
    """
    rev = hs.reverse_edges
    if np.any(rev < 0):
        raise ValueError("cannot symmetrize: some (j, i, -R) partner blocks are missing")

    def sym(values: np.ndarray, spinor: bool) -> np.ndarray:
        out = values.copy()
        for g in hs.shape_groups():
            idx = hs.block_index(g, spinor)
            ridx = hs.block_index(rev[g], spinor)
            out[idx] = 0.5 * (values[idx] + np.conj(values[ridx].transpose(0, 2, 1)))
        return out

    h = None if hs.h is None else np.stack([sym(c, hs.spin == "spinor") for c in hs.h])
    s = None if hs.s is None else sym(hs.s, False)
    return hs.replace(h=h, s=s)


def _all_values(hs: HSData) -> Iterator[tuple[np.ndarray, bool]]:
    if hs.h is not None:
        for channel in hs.h:
            yield channel, hs.spin == "spinor"
    if hs.s is not None:
        yield hs.s, False


# -------------------------------------------------------------- permutations
def permute_orbitals(hs: HSData, maps: dict[str, tuple[np.ndarray, np.ndarray]]) -> HSData:
    """Apply per-element signed orbital permutations to every block.

    ``maps[el] = (perm, sign)`` means ``phi_new[r] = sign[r] * phi_old[perm[r]]``, so
    ``X_new[r, c] = sign_i[r] sign_j[c] X_old[perm_i[r], perm_j[c]]`` (spinor blocks
    use the same map in both spin halves).

    Parameters
    ----------
    hs : HSData
        The data.
    maps : dict
        ``{element: (perm, sign)}`` for every element of ``hs``.

    Returns
    -------
    HSData
    """
    symbols = np.array(hs.atoms.get_chemical_symbols())

    def apply(values: np.ndarray, spinor: bool) -> np.ndarray:
        out = np.empty_like(values)
        for g in hs.shape_groups():
            pi, si = _spin_map(maps[symbols[hs.edge_index[0, g[0]]]], spinor)
            pj, sj = _spin_map(maps[symbols[hs.edge_index[1, g[0]]]], spinor)
            idx = hs.block_index(g, spinor)
            out[idx] = values[idx[:, pi][:, :, pj]] * (si[:, None] * sj[None, :])
        return out

    h = None if hs.h is None else np.stack([apply(c, hs.spin == "spinor") for c in hs.h])
    s = None if hs.s is None else apply(hs.s, False)
    return hs.replace(h=h, s=s)


def _spin_map(ps: tuple[np.ndarray, np.ndarray], spinor: bool) -> tuple[np.ndarray, np.ndarray]:
    perm, sign = (np.asarray(x) for x in ps)
    if not spinor:
        return perm, sign
    n = len(perm)
    return np.concatenate([perm, perm + n]), np.concatenate([sign, sign])


# ------------------------------------------------------------------- spin
def with_spin(hs: HSData, kind: str) -> HSData:
    """Convert H to another spin kind where the conversion is exact.

    ``none -> collinear`` duplicates H; ``none/collinear -> spinor`` builds
    block-diagonal spinors; ``collinear -> none`` and ``spinor -> collinear``
    need equal channels / vanishing spin-flip blocks (ValueError otherwise).

    Parameters
    ----------
    hs : HSData
        The data.
    kind : {"none", "collinear", "spinor"}
        Target spin kind.

    Returns
    -------
    HSData
    """
    if kind == hs.spin or hs.h is None:
        return hs.replace(spin=kind) if hs.h is None else hs
    if (hs.spin, kind) == ("none", "collinear"):
        return hs.replace(h=np.repeat(hs.h, 2, axis=0), spin=kind)
    if kind == "spinor":
        up, dn = hs.h[0], hs.h[-1]
        return hs.replace(h=spinor_from_parts(hs, (up, None, None, dn))[None], spin=kind)
    if (hs.spin, kind) == ("collinear", "none"):
        if not np.allclose(hs.h[0], hs.h[1], atol=1e-12):
            raise ValueError("collinear H with different channels cannot become spinless")
        return hs.replace(h=hs.h[:1], spin=kind)
    if hs.spin == "spinor":
        up, ud, du, dn = tuple(spinor_parts(hs, hs.h[0]))
        if max(np.abs(ud).max(initial=0), np.abs(du).max(initial=0)) > 1e-12 or (
            np.abs(up.imag).max(initial=0) > 1e-12 or np.abs(dn.imag).max(initial=0) > 1e-12
        ):
            raise ValueError("spinor H has spin-flip or complex blocks; it is not collinear")
        h = np.stack([up.real, dn.real])
        out = hs.replace(h=h, spin="collinear")
        return out if kind == "collinear" else with_spin(out, "none")
    raise ValueError(f"cannot convert spin {hs.spin!r} to {kind!r}")


def spinor_from_parts(hs: HSData, parts) -> np.ndarray:
    """Assemble a flat spinor array (4 n_values,) from spinless (uu, ud, du, dd) arrays.

    Each part has shape (n_values,) or is None (zero blocks).

    Parameters
    ----------
    hs : HSData
        The data whose blocks lay out the arrays.
    parts : sequence of 4 ndarray or None
        ``(uu, ud, du, dd)``.

    Returns
    -------
    ndarray, shape (4 n_values,), complex128
    """
    out = np.zeros(4 * hs.n_values, dtype=np.complex128)
    for g in hs.shape_groups():
        idx = hs.block_index(g)
        sidx = hs.block_index(g, spinor=True)
        ni, nj = idx.shape[1:]
        for q, part in enumerate(parts):
            if part is not None:
                a, b = divmod(q, 2)
                out[sidx[:, a * ni:(a + 1) * ni, b * nj:(b + 1) * nj]] = part[idx]
    return out


def spinor_parts(hs: HSData, values: np.ndarray) -> np.ndarray:
    """Split a flat spinor array (4 n_values,) into spinless parts, shape (4, n_values).

    Rows are (uu, ud, du, dd) of the spin-major blocks ``[[uu, ud], [du, dd]]``.

    Parameters
    ----------
    hs : HSData
        The data whose blocks lay out the arrays.
    values : ndarray, shape (4 n_values,)
        A spinor array.

    Returns
    -------
    ndarray, shape (4, n_values), complex128
    """
    parts = np.zeros((4, hs.n_values), dtype=np.complex128)
    for g in hs.shape_groups():
        idx = hs.block_index(g)
        sidx = hs.block_index(g, spinor=True)
        ni, nj = idx.shape[1:]
        for q in range(4):
            a, b = divmod(q, 2)
            parts[q][idx] = values[sidx[:, a * ni:(a + 1) * ni, b * nj:(b + 1) * nj]]
    return parts
