"""HSData: the one code-neutral container for H(R) and S(R) in an atomic-orbital basis.

Conventions (see ``docs/conventions.md`` section 1; tested in ``tests/test_hsdata.py``):

* units eV and Angstrom;
* atoms 0-based, in the DFT code's order;
* per element an ordered list of shells (angular momentum of each radial
  function), sorted by l then zeta; inside a shell m = -l..l in the e3nn /
  Wikipedia real-spherical-harmonic convention;
* block e couples atom ``i = edge_index[0, e]`` in cell 0 to atom
  ``j = edge_index[1, e]`` in cell ``R = cell_shift[e]``:
  ``H_ij(R) = <phi_i, 0 | H | phi_j, R>``, bond vector ``tau_j + R @ cell - tau_i``;
* both (i, j, R) and (j, i, -R) are stored and ``H_ji(-R) = H_ij(R)^dagger``;
* spinor blocks are spin-major ``[[uu, ud], [du, dd]]``; S stays spinless.

Values are kept flat: block e of a spinless array occupies
``values[block_ptr[e]:block_ptr[e+1]]`` reshaped C-order to ``(n_i, n_j)``;
a spinor block occupies ``4 * block_ptr[e] : 4 * block_ptr[e+1]`` reshaped to
``(2 n_i, 2 n_j)``. The methods that rewrite values (Hermiticity, orbital permutations,
spin kinds) are implemented in :mod:`interfaces.hsops`.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Iterator

import numpy as np
from ase import Atoms

from interfaces import hsops

__all__ = ["HSData", "SPIN_KINDS", "irreps_string", "parse_irreps"]

#: Spin kinds and the number of H channels each stores.
SPIN_KINDS = {"none": 1, "collinear": 2, "spinor": 1}
_PARITY = "eo"


def irreps_string(shells: tuple[int, ...] | list[int]) -> str:
    """Return the e3nn irreps of a shell list: ``[0, 0, 1, 1, 2]`` -> ``"2x0e+2x1o+1x2e"``."""
    out: list[str] = []
    for l_val in sorted(set(shells)):
        out.append(f"{list(shells).count(l_val)}x{l_val}{_PARITY[l_val % 2]}")
    return "+".join(out)


def parse_irreps(text: str) -> tuple[int, ...]:
    """Inverse of :func:`irreps_string`: ``"2x0e+1x1o"`` -> ``(0, 0, 1)``."""
    shells: list[int] = []
    for term in text.replace(" ", "").split("+"):
        if not term:
            continue
        mul, _, ir = term.partition("x") if "x" in term else ("1", "", term)
        l_val = int(ir[:-1])
        if ir[-1] != _PARITY[l_val % 2]:
            raise ValueError(f"irrep {ir!r} has the wrong parity for an orbital shell")
        shells.extend([l_val] * int(mul))
    return tuple(shells)


@dataclass(frozen=True, eq=False)
class HSData:
    """Tight-binding-form Hamiltonian H(R) and overlap S(R) of one structure.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (numbers, positions in Angstrom, cell, pbc).
    basis : dict of str to tuple of int
        Per element symbol, the angular momentum of each shell, sorted by l.
    edge_index : ndarray, shape (2, n_edges), int64
        0-based atom pairs (i, j) of each block.
    cell_shift : ndarray, shape (n_edges, 3), int64
        Integer lattice translation R of atom j.
    h : ndarray or None
        Hamiltonian values, eV. Shape (n_spin, n_values) float64 for spin
        ``"none"`` (n_spin = 1) and ``"collinear"`` (2: up, down); shape
        (1, 4 * n_values) complex128 for ``"spinor"``. Values given in single precision
        (float32 / complex64) stay so: the compact form of the largest cells, half the
        memory (the solvers take their products in double precision).
    s : ndarray or None, shape (n_values,)
        Overlap values (dimensionless, spinless); float64, or float32 when given so.
    spin : {"none", "collinear", "spinor"}
        Spin kind of ``h``.
    fermi_level : float
        Fermi level in eV (NaN if unknown).
    n_electrons : float
        Valence electrons in the cell (NaN if unknown).
    source_code, source_version : str
        Producer of the data (``"siesta"``, ``"pyscf"``, ``"toy"``, ``"model"``...).
    metadata : dict
        JSON-serialisable extras (basis definition, units note, per-element
        valence, shell permutations...).
    """

    atoms: Atoms
    basis: dict[str, tuple[int, ...]]
    edge_index: np.ndarray
    cell_shift: np.ndarray
    h: np.ndarray | None = None
    s: np.ndarray | None = None
    spin: str = "none"
    fermi_level: float = math.nan
    n_electrons: float = math.nan
    source_code: str = ""
    source_version: str = ""
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "basis", {str(k): tuple(int(x) for x in v) for k, v in self.basis.items()})
        set_(self, "edge_index", np.ascontiguousarray(self.edge_index, dtype=np.int64))
        set_(self, "cell_shift", np.ascontiguousarray(self.cell_shift, dtype=np.int64))
        if self.spin == "noncollinear":
            set_(self, "spin", "spinor")
        if self.spin not in SPIN_KINDS:
            raise ValueError(f"spin must be one of {tuple(SPIN_KINDS)}, got {self.spin!r}")
        n_e = self.edge_index.shape[1] if self.edge_index.ndim == 2 else -1
        if self.edge_index.shape != (2, n_e) or self.cell_shift.shape != (n_e, 3):
            raise ValueError("edge_index must be (2, n_edges) and cell_shift (n_edges, 3)")
        missing = set(self.atoms.get_chemical_symbols()) - set(self.basis)
        if missing:
            raise ValueError(f"basis lacks elements {sorted(missing)}")
        if n_e and (self.edge_index.min() < 0 or self.edge_index.max() >= len(self.atoms)):
            raise ValueError("edge_index refers to atoms outside the structure")
        if self.s is not None:
            s = np.asarray(self.s)
            set_(self, "s", np.ascontiguousarray(s, dtype=_value_dtype(s, False)).reshape(-1))
            if self.s.shape != (self.n_values,):
                raise ValueError(f"s has {self.s.size} values, the blocks need {self.n_values}")
        if self.h is not None:
            want = self._h_shape()
            h = np.asarray(self.h)
            if self.spin != "spinor" and np.iscomplexobj(h):
                raise ValueError("complex H needs spin='spinor'")
            dtype = _value_dtype(h, self.spin == "spinor")
            set_(self, "h", np.ascontiguousarray(h, dtype=dtype).reshape(want))

    # ------------------------------------------------------------------ sizes
    def _h_shape(self) -> tuple[int, int]:
        if self.spin == "spinor":
            return (1, 4 * self.n_values)
        return (SPIN_KINDS[self.spin], self.n_values)

    @property
    def n_atoms(self) -> int:
        """Number of atoms."""
        return len(self.atoms)

    @property
    def n_edges(self) -> int:
        """Number of stored blocks (directed pairs, on-site included)."""
        return self.edge_index.shape[1]

    @cached_property
    def norbs(self) -> np.ndarray:
        """Spinless orbitals per atom, shape (n_atoms,)."""
        per_el = {el: sum(2 * l_val + 1 for l_val in ls) for el, ls in self.basis.items()}
        return np.array([per_el[s] for s in self.atoms.get_chemical_symbols()], dtype=np.int64)

    @cached_property
    def orbital_offsets(self) -> np.ndarray:
        """First orbital of each atom, shape (n_atoms + 1,)."""
        return np.concatenate([[0], np.cumsum(self.norbs)])

    @property
    def n_orbitals(self) -> int:
        """Spinless orbitals in the cell."""
        return int(self.orbital_offsets[-1])

    @cached_property
    def block_ptr(self) -> np.ndarray:
        """Offsets of the spinless blocks in the flat value arrays, shape (n_edges + 1,)."""
        sizes = self.norbs[self.edge_index[0]] * self.norbs[self.edge_index[1]]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    @property
    def n_values(self) -> int:
        """Length of a spinless flat value array."""
        return int(self.block_ptr[-1])

    @property
    def n_spin_channels(self) -> int:
        """Rows of ``h``: 2 for collinear, else 1."""
        return SPIN_KINDS[self.spin]

    def irreps(self) -> dict[str, str]:
        """Basis of each element as an e3nn irreps string."""
        return {el: irreps_string(ls) for el, ls in self.basis.items()}

    def replace(self, **changes) -> "HSData":
        """Return a copy with some fields replaced (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    # ---------------------------------------------------------------- geometry
    def edge_vectors(self) -> np.ndarray:
        """Bond vectors ``tau_j + R @ cell - tau_i`` in Angstrom, shape (n_edges, 3)."""
        pos = self.atoms.positions
        i, j = self.edge_index
        return pos[j] - pos[i] + self.cell_shift @ np.asarray(self.atoms.cell)

    @cached_property
    def _edge_keys(self) -> tuple[np.ndarray, np.ndarray]:
        keys = _encode(self.edge_index[0], self.edge_index[1], self.cell_shift, self.n_atoms)
        order = np.argsort(keys, kind="stable")
        if np.any(np.diff(keys[order]) == 0):
            raise ValueError("duplicate (i, j, R) blocks")
        return keys[order], order

    def find_edges(self, i, j, shift) -> np.ndarray:
        """Return the indices of the blocks (i, j, R); -1 where absent. Vectorised over arrays."""
        keys, order = self._edge_keys
        shift = np.asarray(shift).reshape(-1, 3)
        query = _encode(np.asarray(i), np.asarray(j), shift, self.n_atoms)
        pos = np.clip(np.searchsorted(keys, query), 0, max(len(keys) - 1, 0))
        hit = keys[pos] == query if len(keys) else np.zeros(query.shape, bool)
        return np.where(hit, order[pos] if len(keys) else -1, -1)

    @cached_property
    def reverse_edges(self) -> np.ndarray:
        """For each block (i, j, R) the index of (j, i, -R); -1 where absent, shape (n_edges,)."""
        return self.find_edges(self.edge_index[1], self.edge_index[0], -self.cell_shift)

    # ------------------------------------------------------------------ blocks
    def block_index(self, edges: np.ndarray, spinor: bool = False) -> np.ndarray:
        """Flat indices of equally-shaped blocks, shape (n_sel, rows, cols).

        Parameters
        ----------
        edges : ndarray of int
            Blocks that all share the same (n_i, n_j).
        spinor : bool
            Index a spinor array (blocks of (2 n_i, 2 n_j) at ``4 * block_ptr``).
        """
        edges = np.asarray(edges, dtype=np.int64)
        f = 2 if spinor else 1
        ni = f * self.norbs[self.edge_index[0, edges[0]]] if len(edges) else 0
        nj = f * self.norbs[self.edge_index[1, edges[0]]] if len(edges) else 0
        start = f * f * self.block_ptr[edges]
        return start[:, None, None] + np.arange(ni)[:, None] * nj + np.arange(nj)[None, :]

    def shape_groups(self) -> Iterator[np.ndarray]:
        """Yield arrays of block indices that share one element pair (hence one shape)."""
        z = self.atoms.numbers
        pair = z[self.edge_index[0]].astype(np.int64) * 1000 + z[self.edge_index[1]]
        order = np.argsort(pair, kind="stable")
        bounds = np.flatnonzero(np.diff(pair[order])) + 1
        yield from (g for g in np.split(order, bounds) if len(g))

    def block(self, i: int, j: int, shift=(0, 0, 0), which: str = "h", channel: int = 0):
        """Return block (i, j, R) of ``"h"`` or ``"s"`` as a 2-D array (KeyError if absent)."""
        e = int(self.find_edges([i], [j], np.array(shift).reshape(1, 3))[0])
        if e < 0:
            raise KeyError(f"no block (i={i}, j={j}, R={tuple(shift)})")
        spinor = which == "h" and self.spin == "spinor"
        values = self.s if which == "s" else self.h[channel]
        if values is None:
            raise KeyError(f"this HSData holds no {which!r}")
        return values[self.block_index([e], spinor=spinor)[0]]

    # -------------------------------------------------------------- hermiticity
    def hermiticity_error(self) -> float:
        """Max |X_ij(R) - X_ji(-R)^dagger| over H channels and S (inf if a partner is missing)."""
        return hsops.hermiticity_error(self)

    def symmetrize(self) -> "HSData":
        """Return a copy with ``X <- (X_ij(R) + X_ji(-R)^dagger) / 2`` enforced exactly."""
        return hsops.symmetrize(self)

    # -------------------------------------------------------------- selection
    def select_edges(self, keep: np.ndarray) -> "HSData":
        """Return a copy holding only the blocks where ``keep`` (bool, (n_edges,)) is true."""
        keep = np.asarray(keep, dtype=bool)
        sizes = np.diff(self.block_ptr)
        mask = np.repeat(keep, sizes)
        h = None
        if self.h is not None:
            hmask = np.repeat(keep, 4 * sizes) if self.spin == "spinor" else mask
            h = self.h[:, hmask]
        s = None if self.s is None else self.s[mask]
        return self.replace(
            edge_index=self.edge_index[:, keep], cell_shift=self.cell_shift[keep], h=h, s=s
        )

    def restrict(self, r_cut: float) -> "HSData":
        """Keep the blocks with bond length < ``r_cut`` Angstrom (on-site blocks always kept)."""
        return self.select_edges(np.linalg.norm(self.edge_vectors(), axis=1) < r_cut)

    def permute_orbitals(self, maps: dict[str, tuple[np.ndarray, np.ndarray]]) -> "HSData":
        """Apply per-element signed orbital permutations to every block.

        ``maps[el] = (perm, sign)`` means ``phi_new[r] = sign[r] * phi_old[perm[r]]``, so
        ``X_new[r, c] = sign_i[r] sign_j[c] X_old[perm_i[r], perm_j[c]]`` (spinor blocks
        use the same map in both spin halves).
        """
        return hsops.permute_orbitals(self, maps)

    # ------------------------------------------------------------------- spin
    def with_spin(self, kind: str) -> "HSData":
        """Convert H to another spin kind where the conversion is exact.

        ``none -> collinear`` duplicates H; ``none/collinear -> spinor`` builds
        block-diagonal spinors; ``collinear -> none`` and ``spinor -> collinear``
        need equal channels / vanishing spin-flip blocks (ValueError otherwise).
        """
        return hsops.with_spin(self, kind)

    def spinor_from_parts(self, parts) -> np.ndarray:
        """Assemble a flat spinor array (4 n_values,) from spinless (uu, ud, du, dd) arrays.

        Each part has shape (n_values,) or is None (zero blocks).
        """
        return hsops.spinor_from_parts(self, parts)

    def spinor_parts(self, values: np.ndarray) -> np.ndarray:
        """Split a flat spinor array (4 n_values,) into spinless parts, shape (4, n_values).

        Rows are (uu, ud, du, dd) of the spin-major blocks ``[[uu, ud], [du, dd]]``.
        """
        return hsops.spinor_parts(self, values)

    # ---------------------------------------------------------------- storage
    def save(self, path, name: str | None = None, append: bool = False,
             overwrite: bool = False) -> str:
        """Write to HDF5 atomically; see :func:`interfaces.h5io.save`. Returns the group name."""
        from interfaces.h5io import save

        return save(self, path, name=name, append=append, overwrite=overwrite)

    @classmethod
    def load(cls, path, name: str | int | None = None) -> "HSData":
        """Read one structure from an HDF5 file; see :func:`interfaces.h5io.load`."""
        from interfaces.h5io import load

        return load(path, name)

    def summary(self) -> str:
        """One line describing the data."""
        return (
            f"HSData({self.atoms.get_chemical_formula()}, {self.n_atoms} atoms, "
            f"{self.n_orbitals} orbitals, {self.n_edges} blocks, spin={self.spin}, "
            f"source={self.source_code or '?'}, basis={json.dumps(self.irreps())})"
        )


def value_dtype(complex_: bool, single: bool) -> type:
    """Return the value type of H, S or their matrices: real/complex, double/single."""
    return {(False, False): np.float64, (False, True): np.float32,
            (True, False): np.complex128, (True, True): np.complex64}[(complex_, single)]


def _value_dtype(values: np.ndarray, complex_: bool) -> type:
    """Storage type of H or S: double, or single when given single (compact large cells)."""
    return value_dtype(complex_, values.dtype in (np.float32, np.complex64))


def _encode(i, j, shift, n_atoms: int) -> np.ndarray:
    """Pack (i, j, R) into one uint64 key: 34 bits for the pair, 10 bits per R component."""
    r = np.asarray(shift, dtype=np.int64)
    if r.size and (np.abs(r).max() >= 512 or n_atoms > 131_000):
        raise ValueError("block keys support |R| < 512 and up to 131,000 atoms")
    r = (r + 512).astype(np.uint64)
    pair = np.asarray(i, dtype=np.int64) * n_atoms + np.asarray(j, dtype=np.int64)
    key = pair.astype(np.uint64) << np.uint64(30)
    return key | (r[:, 0] << np.uint64(20)) | (r[:, 1] << np.uint64(10)) | r[:, 2]
