"""Finite-difference real-space derivatives dH, dS and D = <d phi | phi> (docs/epc.md 3.2).

Recipe: a (2N+1)^3 supercell of the primitive cell; every primitive atom kappa of cell 0 is
displaced by +-delta along x, y, z; H and S of each displaced supercell come from any
provider ``f(atoms) -> HSData`` (toy model, PySCF, a trained model) with its own edge list.
Each supercell block (I, J, S) is mapped to the primitive-cell pair (a, R_m; b, R_n); of its
periodic images the one closest to the displaced atom (sum of both end distances) is kept,
equidistant images share the block with weight 1/multiplicity (both (a, b) and (b, a) pick
the same image, so the stored derivative stays Hermitian). Only blocks present in both
geometries are differenced (a block crossing a hard cutoff has no derivative). With
``symmetry=True`` only one atom per space-group orbit is displaced and the others follow by
rotating its blocks (:mod:`ase_deeph.epc.symmetry`).

D^{kappa alpha} holds the rows of dS on the displaced atom (off-site D) plus the on-site block
``<d phi_mu / d u | phi_nu>`` from a basis provider (``onsite_d(symbol) -> (3, n, n)``), the
bra-centre derivative of :class:`interfaces.overlap_gradient.OverlapGradient` (one sign
convention for every producer). Without one the result says ``onsite_d="missing"`` and
:func:`ase_deeph.epc.coupling.coupling` refuses the full form and uses the quasi-elastic one
unless told otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from ase import Atoms

from ase_deeph.epc.symmetry import complete_records, displacement_symmetry
from ase_deeph.inference.base import HSProvider
from interfaces.hsdata import HSData
from interfaces.overlap_gradient import OverlapGradient
from interfaces.pyscf.basis import DEFAULT_BASIS

__all__ = ["EPCDerivatives", "derivatives", "supercell_map", "onsite_d_pyscf", "onsite_d_nao",
           "sum_rule_error", "block_decay"]

#: a provider (:class:`~ase_deeph.inference.base.HSProvider`) or a plain f(atoms) -> HSData
Provider = HSProvider | Callable[[Atoms], HSData]
OnsiteD = Callable[[str], np.ndarray]


@dataclass(frozen=True)
class EPCDerivatives:
    """Real-space derivatives of H and S with respect to one displaced atom of cell 0.

    Attributes
    ----------
    atoms : ase.Atoms
        Primitive structure (Angstrom); atom order = derivative order kappa.
    hs0 : HSData
        H(R), S(R) of the undisplaced primitive structure from the same provider.
    cell_pairs : ndarray, shape (P, 2, 3), int64
        Cells (R_m, R_n) of each stored orbital block (rows in R_m, columns in R_n).
    dh : ndarray, shape (P, N_uc, 3, n_orb, n_orb)
        ``dH_{mu R_m, nu R_n} / du_{kappa alpha}(0)`` in eV/Angstrom (n_orb per primitive cell,
        orbitals in ``hs0`` order, image weights applied).
    ds : ndarray, same shape as ``dh``
        dS / du in 1/Angstrom.
    d : ndarray, same shape as ``dh``
        D = <d phi_mu / du | phi_nu> in 1/Angstrom: rows of the displaced atom only, on-site block
        included when ``onsite_d == "provided"`` (zero otherwise).
    onsite_d : {"provided", "missing"}
        Whether the on-site block of D is present.
    delta : float
        Displacement step, Angstrom.
    scheme : {"central", "forward"}
        Finite-difference scheme (central: error O(delta^2); forward: O(delta), documented only).
    n_box : tuple of int
        N per axis of the (2N+1)-cell box.
    ill_threshold : float
        S(k) eigenvalues below this are projected out when bands are solved (the
        provider's own ``ill_threshold``, 1e-6 by default).
    n_provider_calls : int
        Provider calls made (primitive cell included); fewer with ``symmetry=True``.
    """

    atoms: Atoms
    hs0: HSData
    cell_pairs: np.ndarray
    dh: np.ndarray
    ds: np.ndarray
    d: np.ndarray
    onsite_d: str
    delta: float
    scheme: str
    n_box: tuple[int, int, int]
    ill_threshold: float = 1e-6
    n_provider_calls: int = 0

    @property
    def n_orb(self) -> int:
        """Orbitals per primitive cell."""
        return int(self.dh.shape[-1])


# ----------------------------------------------------------------------------- supercell
def box_size(n_box) -> np.ndarray:
    """N per axis, int64 [3], from an int (the same along a, b, c) or three ints."""
    n = np.broadcast_to(np.asarray(n_box, dtype=np.int64), (3,)).copy()
    if np.any(n < 0):
        raise ValueError(f"n_box must be >= 0 along every axis, got {n_box!r}")
    return n


def supercell_map(atoms: Atoms, n_box) -> tuple[Atoms, np.ndarray, np.ndarray]:
    """(2N+1) cells per axis; return (supercell, kappa of each atom, cell R in [-N, N])."""
    n = box_size(n_box)
    m = 2 * n + 1  # [3]
    rngs = [np.arange(-x, x + 1) for x in n]
    cells = np.stack(np.meshgrid(*rngs, indexing="ij"), -1).reshape(-1, 3)  # [prod(m), 3]
    n_uc = len(atoms)
    kappa = np.tile(np.arange(n_uc), len(cells))
    cell_of = np.repeat(cells, n_uc, axis=0)  # [n_sc, 3]
    pos = atoms.positions[kappa] + cell_of @ np.asarray(atoms.cell)
    sc = Atoms(numbers=atoms.numbers[kappa], positions=pos,
               cell=m[:, None] * np.asarray(atoms.cell), pbc=True)
    return sc, kappa, cell_of


def _image_weights(atoms: Atoms, n_box, a, ra, b, rb, x0: np.ndarray):
    """Image shifts L (in supercell vectors) closest to x0 and their weights, per block."""
    m = 2 * box_size(n_box) + 1  # [3]
    cell = np.asarray(atoms.cell)
    shifts = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    xa = atoms.positions[a] + ra @ cell  # [n, 3]
    xb = atoms.positions[b] + rb @ cell
    t = (m * shifts) @ cell  # [27, 3]
    dist = (np.linalg.norm(xa[:, None] + t[None] - x0, axis=-1)
            + np.linalg.norm(xb[:, None] + t[None] - x0, axis=-1))  # [n, 27]
    best = dist <= dist.min(axis=1, keepdims=True) + 1e-6
    weight = best / best.sum(axis=1, keepdims=True)
    return shifts, weight


def _common_edges(a: HSData, b: HSData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, R) blocks present in both HSData and their indices in a and b.

    A block that crosses a hard cutoff between the two geometries has no finite difference
    (its value jumps); it is dropped, i.e. its derivative is taken as zero.
    """
    keys = np.column_stack([a.edge_index.T, a.cell_shift])  # [n, 5]
    i, j, shift = keys[:, 0], keys[:, 1], keys[:, 2:]
    eb = b.find_edges(i, j, shift)
    both = eb >= 0
    return keys[both], np.flatnonzero(both), eb[both]


def _gather(hs: HSData, edges: np.ndarray, which: str) -> np.ndarray:
    """Blocks of equally shaped ``edges``, [n, ni, nj]."""
    values = hs.s if which == "s" else hs.h[0]
    return values[hs.block_index(edges)]


def _differences(plus: HSData, ref: HSData, scale: float, prune: float):
    """Yield (keys [n, 5], dH [n, ni, nj], dS) per element pair: (X+ - X_ref) / scale."""
    keys, ep, er = _common_edges(plus, ref)
    z = plus.atoms.numbers
    pair = z[keys[:, 0]].astype(np.int64) * 1000 + z[keys[:, 1]]
    for code in np.unique(pair):
        sel = np.flatnonzero(pair == code)
        dh = (_gather(plus, ep[sel], "h") - _gather(ref, er[sel], "h")) / scale
        ds = (_gather(plus, ep[sel], "s") - _gather(ref, er[sel], "s")) / scale
        big = np.maximum(np.abs(dh).max(axis=(1, 2)), np.abs(ds).max(axis=(1, 2))) > prune
        if big.any():
            yield keys[sel[big]], dh[big], ds[big]


def _displaced(sc: Atoms, index: int, alpha: int, step: float) -> Atoms:
    out = sc.copy()
    out.positions[index, alpha] += step
    return out


def _to_primitive(keys: np.ndarray, geometry: tuple):
    """Weighted images of supercell blocks: (record row, pair6 [m, 6], a, b, weight)."""
    atoms, n_box, kappa, cell_of, x0 = geometry
    m = 2 * box_size(n_box) + 1  # [3]
    i, j, s = keys[:, 0], keys[:, 1], keys[:, 2:]
    a, b = kappa[i], kappa[j]
    ra, rb = cell_of[i], cell_of[j] + m * s
    shifts, weight = _image_weights(atoms, n_box, a, ra, b, rb, x0)
    row, img = np.nonzero(weight)
    sh = m * shifts[img]
    pair6 = np.concatenate([ra[row] + sh, rb[row] + sh], axis=1)
    return row, pair6, a[row], b[row], weight[row, img]


def _records(plus: HSData, ref: HSData, scale: float, geometry: tuple, prune: float) -> list:
    """Per element pair: (pair6, a, b, weighted dH blocks, weighted dS blocks)."""
    out = []
    for keys, dh, ds in _differences(plus, ref, scale, prune):
        row, pair6, a, b, w = _to_primitive(keys, geometry)
        out.append((pair6, a, b, w[:, None, None] * dh[row], w[:, None, None] * ds[row]))
    return out


def _assemble(records: dict, hs0: HSData, onsite: OnsiteD | None):
    """Dense (P, N_uc, 3, n_orb, n_orb) arrays from per-(kappa, alpha) records."""
    all_pairs = [r[0] for recs in records.values() for r in recs] + [np.zeros((1, 6), int)]
    pairs, inverse = np.unique(np.concatenate(all_pairs), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    home = int(np.flatnonzero(~pairs.any(axis=1))[0])
    off = hs0.orbital_offsets
    n_uc, n_orb = hs0.n_atoms, hs0.n_orbitals
    shape = (len(pairs), n_uc, 3, n_orb, n_orb)
    dh, ds, d = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    start = 0
    for (kap, alpha), recs in records.items():
        for pair6, a, b, xh, xs in recs:
            p = inverse[start:start + len(pair6)]
            start += len(pair6)
            rows = off[a][:, None, None] + np.arange(xh.shape[1])[None, :, None]
            cols = off[b][:, None, None] + np.arange(xh.shape[2])[None, None, :]
            idx = (p[:, None, None], kap, alpha, rows, cols)
            np.add.at(dh, idx, xh)
            np.add.at(ds, idx, xs)
            # off-site D: the rows of dS on the displaced atom (kappa in cell 0)
            row_d = (a == kap) & ~pair6[:, :3].any(axis=1)
            row_d &= ~((b == kap) & ~pair6[:, 3:].any(axis=1))
            np.add.at(d, (p[row_d, None, None], kap, alpha, rows[row_d], cols[row_d]), xs[row_d])
    if onsite is not None:
        for kap, sym in enumerate(hs0.atoms.get_chemical_symbols()):
            blk = np.asarray(onsite(sym), dtype=np.float64)  # [3, n, n]
            d[home, kap, :, off[kap]:off[kap + 1], off[kap]:off[kap + 1]] = blk
    return pairs.reshape(-1, 2, 3).astype(np.int64), dh, ds, d


def _displacement_records(provider: Provider, atoms: Atoms, n_box, delta: float, scheme: str,
                          displaced, prune: float) -> dict:
    """Displace the ``displaced`` atoms; return ``{(kappa, alpha): records}`` (:func:`_records`)."""
    sc, kappa, cell_of = supercell_map(atoms, n_box)
    base = provider(sc) if scheme == "forward" else None
    records = {}
    for kap in displaced:
        index = int(np.flatnonzero((kappa == kap) & ~cell_of.any(axis=1))[0])
        geometry = (atoms, n_box, kappa, cell_of, sc.positions[index])
        for alpha in range(3):
            plus = provider(_displaced(sc, index, alpha, delta))
            if base is None:
                ref, scale = provider(_displaced(sc, index, alpha, -delta)), 2.0 * delta
            else:
                ref, scale = base, delta
            records[kap, alpha] = _records(plus, ref, scale, geometry, prune)
    return records


def derivatives(provider: Provider, atoms: Atoms, n_box=1, delta: float = 0.01,
                scheme: str = "central", onsite_d: OnsiteD | None = None,
                prune: float = 1e-10, ill_threshold: float | None = None,
                symmetry: bool = True, symprec: float = 1e-5) -> EPCDerivatives:
    """Finite-difference dH, dS and D of every primitive atom (``docs/epc.md`` section 3.2).

    Parameters
    ----------
    provider : callable
        ``provider(atoms) -> HSData`` with H (spin "none") and S; called once on ``atoms`` and
        ``6 N_uc`` (central) or ``3 N_uc + 1`` (forward) times on the supercell (N_uc: the
        number of displaced atoms, one per symmetry orbit with ``symmetry=True``).
    atoms : ase.Atoms
        Primitive cell, periodic in 3-D.
    n_box : int or tuple of int
        Box of 2 n_box + 1 cells per axis (one int for all three, or three ints, e.g.
        ``(2, 2, 0)`` for a layer whose vacuum axis is already longer than twice the
        H range); it must contain the H range around the displaced atom.
    delta : float
        Displacement in Angstrom (0.005-0.01 recommended; float64 providers only).
    scheme : {"central", "forward"}
        Central differences (default, error O(delta^2)) or forward (O(delta)).
    onsite_d : callable, optional
        ``onsite_d(symbol) -> (3, n, n)`` on-site ``<d phi_mu / d u_alpha | phi_nu>`` in 1/Angstrom
        (e.g. :func:`onsite_d_pyscf`); None marks the result ``onsite_d="missing"``.
    prune : float
        Drop supercell blocks whose derivatives are all below this (eV/Angstrom, 1/Angstrom).
    ill_threshold : float, optional
        S projection threshold of the band solves; default: the provider's
        :class:`~ase_deeph.solvers.conditioning.OverlapPolicy` (a model: 1e-2 for
        ghost-prone structures, else 1e-6; a plain function: 1e-6).
    symmetry : bool
        Displace one atom per orbit of the space group (spglib, operations that keep the
        box lattice) and rotate its derivatives onto the others
        (:mod:`ase_deeph.epc.symmetry`); equal to the direct result up to O(delta^2)
        (central) or O(delta) (forward). The provider must be rotation covariant.
    symprec : float
        spglib symmetry tolerance in Angstrom.

    Returns
    -------
    EPCDerivatives
    """
    box = _checked_box(scheme, n_box, atoms)
    counted = _CountingProvider(provider)
    hs0 = counted(atoms)
    if hs0.spin != "none" or hs0.h is None or hs0.s is None:
        raise ValueError("the EPC provider must return spinless ('none') H and S")
    sym = displacement_symmetry(atoms, box, symprec) if symmetry else None
    displaced = sym.representatives.tolist() if sym is not None else range(len(atoms))
    records = _displacement_records(counted, atoms, n_box, delta, scheme, displaced, prune)
    if sym is not None:
        records = complete_records(records, sym, atoms, hs0.basis, symprec)
    pairs, dh, ds, d = _assemble(records, hs0, onsite_d)
    return EPCDerivatives(atoms=atoms.copy(), hs0=hs0, cell_pairs=pairs, dh=dh, ds=ds, d=d,
                          onsite_d="missing" if onsite_d is None else "provided",
                          delta=float(delta), scheme=scheme,
                          n_box=tuple(int(x) for x in box),
                          ill_threshold=float(ill_threshold if ill_threshold is not None
                                              else _provider_threshold(provider, hs0)),
                          n_provider_calls=counted.calls)


def _checked_box(scheme: str, n_box, atoms: Atoms) -> np.ndarray:
    """Validate the scheme and the cell; return N per axis."""
    if scheme not in ("central", "forward"):
        raise ValueError(f"scheme must be 'central' or 'forward', got {scheme!r}")
    box = box_size(n_box)
    if not np.any(box) or not np.all(atoms.pbc):
        raise ValueError("derivatives need a 3-D periodic cell and n_box >= 1 along some "
                         "axis (a box of 2 n_box + 1 cells per axis)")
    return box


class _CountingProvider:
    """Wrap a provider and count its calls."""

    def __init__(self, provider: Provider):
        self.provider, self.calls = provider, 0

    def __call__(self, structure: Atoms) -> HSData:
        self.calls += 1
        return self.provider(structure)


def _provider_threshold(provider, hs0: HSData) -> float:
    """Return the provider's dense projection threshold of ``hs0`` on a 4x4x4 mesh."""
    from ase_deeph.inference.base import as_provider
    from ase_deeph.solvers import mesh_points

    mesh = mesh_points((4, 4, 4), gamma_centred=True)
    return float(as_provider(provider).policy.dense_threshold(hs0, mesh))


def block_decay(derivs: EPCDerivatives) -> tuple[np.ndarray, np.ndarray]:
    """Return block distances and norms for checking the decay of dH across the box.

    Per (cell pair, kappa): the distance (Angstrom) of the farther cell origin from cell 0 and
    the largest |dH| (eV/Angstrom); both shape (P * N_uc,). Truncation at the box edge is
    justified when the values at the largest distances are small compared with the maximum
    (or compare with ``n_box + 1``).
    """
    cell = np.asarray(derivs.atoms.cell)
    far = np.linalg.norm(derivs.cell_pairs @ cell, axis=-1).max(axis=1)  # [P]
    mx = np.abs(derivs.dh).max(axis=(2, 3, 4))  # [P, N_uc]
    return np.repeat(far, mx.shape[1]), mx.reshape(-1)


def sum_rule_error(derivs: EPCDerivatives) -> tuple[float, float]:
    """Acoustic sum rule: max |sum_kappa sum_L dX(a R_m, b R_n)/du_kappa(L)| for X = H, S.

    Blocks are grouped by ``R_n - R_m`` (translation invariance), summed over kappa.
    """
    diff = derivs.cell_pairs[:, 1] - derivs.cell_pairs[:, 0]  # [P, 3]
    keys, inv = np.unique(diff, axis=0, return_inverse=True)
    out = []
    for x in (derivs.dh, derivs.ds):
        acc = np.zeros((len(keys),) + x.shape[2:])
        np.add.at(acc, inv.reshape(-1), x.sum(axis=1))
        out.append(float(np.abs(acc).max()))
    return out[0], out[1]


# ------------------------------------------------------------------------ on-site D
def _onsite_from(gradient: Callable[[Atoms], OverlapGradient]) -> OnsiteD:
    """On-site D provider: block (0, 0, 0) of ``gradient`` on a lone atom, cached per element.

    :class:`~interfaces.overlap_gradient.OverlapGradient` stores ``<d phi_mu / d tau | phi_nu>``
    with the bra centre moved, which is the D of this module as it is (no sign change).
    """
    cache: dict[str, np.ndarray] = {}

    def onsite(symbol: str) -> np.ndarray:
        if symbol not in cache:
            atom = Atoms(symbol, positions=[[0.0, 0.0, 0.0]], pbc=False)
            cache[symbol] = gradient(atom).block(0, 0)  # [3, n, n]
        return cache[symbol]

    return onsite


def onsite_d_pyscf(basis: str = DEFAULT_BASIS) -> OnsiteD:
    """On-site D provider from PySCF ``int1e_ipovlp`` (same orbital order as ``pyscf.run``)."""
    from interfaces.pyscf.generator import overlap_gradient

    return _onsite_from(lambda atom: overlap_gradient(atom, basis))


def onsite_d_nao(basis) -> OnsiteD:
    """On-site D provider from numerical radial orbitals (:mod:`interfaces.nao.overlap`)."""
    from interfaces.nao.overlap import overlap_gradient

    return _onsite_from(lambda atom: overlap_gradient(atom, basis))
