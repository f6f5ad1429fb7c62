"""Orbital order and sign conventions of every code, as signed-permutation tables.

The internal order inside a shell is m = -l..l of the Wikipedia real spherical
harmonics without Condon-Shortley phase (= e3nn with vectors in (y, z, x) order):
p = (y, z, x), d = (xy, yz, 3z^2 - r^2, xz, x^2 - y^2).

For each code and l, ``M = matrix(code, l)`` maps code functions to internal ones,
``phi_internal = M @ phi_code``, so a block transforms as
``H_internal = M_li @ H_code @ M_lj.T`` (``docs/conventions.md`` section 4).
Every M is a signed permutation stored as ``(perm, sign)``:
``phi_internal[r] = sign[r] * phi_code[perm[r]]``.
"""

from __future__ import annotations

import numpy as np

from interfaces.hsdata import HSData

__all__ = ["CODES", "signed_permutation", "matrix", "atom_map", "to_internal", "from_internal"]


def _abacus(l_val: int) -> tuple[list[int], list[int]]:
    # ABACUS order m = 0, +1, -1, +2, -2, ...; functions are Wikipedia x (-1)^m.
    perm = [2 * m - 1 if m > 0 else -2 * m for m in range(-l_val, l_val + 1)]
    sign = [(-1) ** abs(m) for m in range(-l_val, l_val + 1)]
    return perm, sign


def _siesta(l_val: int) -> tuple[list[int], list[int]]:
    # SIESTA order is m = -l..l; functions are Wikipedia x (-1)^m.
    return list(range(2 * l_val + 1)), [(-1) ** abs(m) for m in range(-l_val, l_val + 1)]


# OpenMX (= legacy DeepH): p x, y, z; d z2, x2-y2, xy, xz, yz; f m = 0, +1, -1, +2, -2, +3, -3.
_OPENMX = {0: [0], 1: [1, 2, 0], 2: [2, 4, 0, 3, 1], 3: [6, 4, 2, 0, 1, 3, 5]}
# PySCF: p shells are (px, py, pz); d and higher already m = -l..l, no sign change.
_PYSCF = {1: [1, 2, 0]}


def _table(code: str, l_val: int) -> tuple[list[int], list[int]]:
    n = 2 * l_val + 1
    if code in ("e3nn", "internal", "deeph", "deeptb", "toy", "model"):
        return list(range(n)), [1] * n
    if code in ("openmx", "deeph-legacy"):
        if l_val not in _OPENMX:
            raise ValueError(f"OpenMX order is tabulated for l <= 3, got l = {l_val}")
        return _OPENMX[l_val], [1] * n
    if code == "abacus":
        return _abacus(l_val)
    if code == "siesta":
        return _siesta(l_val)
    if code == "pyscf":
        return _PYSCF.get(l_val, list(range(n))), [1] * n
    raise ValueError(f"unknown orbital convention {code!r}; known: {CODES}")


#: Codes with a tabulated convention.
CODES = ("e3nn", "openmx", "deeph-legacy", "abacus", "siesta", "pyscf", "deeph", "deeptb")


def signed_permutation(code: str, l_val: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(perm, sign)`` with ``phi_internal[r] = sign[r] * phi_code[perm[r]]``."""
    perm, sign = _table(code, l_val)
    return np.asarray(perm, dtype=np.int64), np.asarray(sign, dtype=np.float64)


def matrix(code: str, l_val: int) -> np.ndarray:
    """Return the (2l+1, 2l+1) matrix M with ``phi_internal = M @ phi_code``."""
    perm, sign = signed_permutation(code, l_val)
    m = np.zeros((len(perm), len(perm)))
    m[np.arange(len(perm)), perm] = sign
    return m


def atom_map(shells, code: str, shell_order=None) -> tuple[np.ndarray, np.ndarray]:
    """Signed permutation of all orbitals of one atom, code order -> internal order.

    Parameters
    ----------
    shells : sequence of int
        Angular momenta of the shells in the *internal* (sorted) order.
    code : str
        Source convention.
    shell_order : sequence of int, optional
        ``shell_order[k]`` is the position in the code's file of internal shell k
        (for codes such as SIESTA that do not sort shells by l). Default: same order.

    Returns
    -------
    perm, sign : ndarray, shape (n_orb,)
        ``phi_internal[r] = sign[r] * phi_code[perm[r]]``.
    """
    shells = list(shells)
    shell_order = list(range(len(shells))) if shell_order is None else list(shell_order)
    code_l = [0] * len(shells)
    for k, pos in enumerate(shell_order):
        code_l[pos] = shells[k]
    code_start = np.concatenate([[0], np.cumsum([2 * l_val + 1 for l_val in code_l])])
    perm, sign = [], []
    for k, l_val in enumerate(shells):
        p, s = signed_permutation(code, l_val)
        perm.extend(code_start[shell_order[k]] + p)
        sign.extend(s)
    return np.asarray(perm, dtype=np.int64), np.asarray(sign)


def _invert(perm: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    inv = np.empty_like(perm)
    inv[perm] = np.arange(len(perm))
    return inv, sign[inv]


def to_internal(hs: HSData, code: str, shell_orders: dict | None = None) -> HSData:
    """Convert an HSData whose blocks are in ``code`` order into the internal order.

    ``hs.basis`` must already hold the sorted (internal) shell lists; ``shell_orders``
    gives, per element, the file position of each sorted shell (see :func:`atom_map`).
    """
    shell_orders = shell_orders or {}
    maps = {el: atom_map(ls, code, shell_orders.get(el)) for el, ls in hs.basis.items()}
    return hs.permute_orbitals(maps)


def from_internal(hs: HSData, code: str, shell_orders: dict | None = None) -> HSData:
    """Inverse of :func:`to_internal`: internal order -> ``code`` order."""
    shell_orders = shell_orders or {}
    maps = {
        el: _invert(*atom_map(ls, code, shell_orders.get(el))) for el, ls in hs.basis.items()
    }
    return hs.permute_orbitals(maps)
