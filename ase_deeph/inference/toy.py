"""A toy non-orthogonal tight-binding model that is exactly rotation-covariant (numpy only).

:func:`toy_hs` turns any :class:`ase.Atoms` into an :class:`~interfaces.hsdata.HSData`
so that every stage (conversion, training, solvers, EPC) can be tested without DFT.

Construction (e3nn basis, ``docs/conventions.md`` section 6.2)
--------------------------------------------------------------
Two-centre block between shell a (l_a) of atom i and shell b (l_b) of atom j, bond
``d = tau_j + R @ cell - tau_i``, r = |d|, for H and S alike::

    X_ab[m_a, m_b](d) = 4 pi (-1)^{l_b} A_ab f(r) sum_L g(l_a, l_b, L)
                        sum_M Gaunt(l_a m_a, l_b m_b, L M) Y_LM(d / r)

with L = |l_a - l_b|, ..., l_a + l_b in steps of 2 (exactly the min(l_a, l_b) + 1
Slater-Koster integrals sigma, pi, delta...), ``A_ab`` a symmetric product of per-shell
amplitudes, ``g`` symmetric in (l_a, l_b) and drawn once from ``seed``, and the radial
function ``f(r) = 2 / (1 + exp((r - r0) / rho)) * fc(r)`` (r0 = r_cov,i + r_cov,j,
rho = decay * r0; ``fc`` a cosine switch that reaches 0 with zero slope at
r_cut = cutoff * r0). Because the Gaunt tensor is rotation invariant,
``X(Q d) = D^{l_a}(Q) X(d) D^{l_b}(Q)^T`` exactly (inversion: (-1)^{l_a + l_b}), and
the factor (-1)^{l_b} makes ``X_ba(-d) = X_ab(d)^T``. Only one canonical half of the
pairs is computed; partners are stored as transposes, so Hermiticity is exact.

On-site block of atom i (not two-centre, through its environment)::

    H_ab = delta_ab eps0_a + 4 pi kappa sum_{L <= 2} g_env(l_a, l_b, L)
           sum_M Gaunt(l_a m_a, l_b m_b, L M) sum_j w_j f(r_ij) Y_LM(d_ij)

(L = 0: a coordination shift per shell; L = 1: s-p mixing at non-centrosymmetric
sites; L = 2: an anisotropic crystal field on p/d shells, zero at cubic sites);
``S_ii = 1``. With ``spin="spinor"`` each p shell gets ``lambda L.S`` on site
(spin-major ``kron(sigma_k, L_k) lambda / 2``); with ``spin="collinear"`` the on-site
blocks split by ``-+ exchange / 2``. Parameters: :data:`DEFAULT_ELEMENTS` (H, B, C,
N, O, Si); other elements need ``params=ToyParams(elements=...)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

from interfaces.hsdata import HSData
from interfaces.neighbours import neighbour_list
from interfaces.sph import gaunt, real_sph_harm

__all__ = ["ElementParams", "ToyParams", "DEFAULT_ELEMENTS", "toy_hs"]

_L_MAX = 3  # highest shell angular momentum the toy model supports


@dataclass(frozen=True)
class ElementParams:
    """Toy parameters of one element.

    Parameters
    ----------
    shells : tuple of int
        Angular momentum of each shell, sorted by l.
    onsite : tuple of float
        Bare on-site energy eps0 of each shell, eV.
    hopping : tuple of float
        Positive hopping amplitude of each shell, eV (pair amplitude = geometric mean).
    overlap : tuple of float
        Positive overlap amplitude of each shell (pair amplitude = product).
    valence : float
        Valence electrons of the neutral atom.
    radius : float or None
        Covalent radius in Angstrom; None takes ``ase.data.covalent_radii``.
    env : float
        On-site environment coupling kappa of this atom, eV.
    env_weight : float
        Weight w of this atom in its neighbours' environment sums.
    soc : float
        Spin-orbit lambda of the p shells, eV (``spin="spinor"`` only).
    exchange : float
        On-site exchange splitting, eV (``spin="collinear"`` only).
    """

    shells: tuple[int, ...]
    onsite: tuple[float, ...]
    hopping: tuple[float, ...]
    overlap: tuple[float, ...]
    valence: float
    radius: float | None = None
    env: float = 0.4
    env_weight: float = 1.0
    soc: float = 0.1
    exchange: float = 0.5

    def __post_init__(self) -> None:
        n = len(self.shells)
        if not (len(self.onsite) == len(self.hopping) == len(self.overlap) == n):
            raise ValueError("onsite, hopping and overlap need one value per shell")
        if not self.shells or min(self.shells) < 0 or max(self.shells) > _L_MAX:
            raise ValueError(f"shells must have 0 <= l <= {_L_MAX}, got {self.shells}")
        if list(self.shells) != sorted(self.shells):
            raise ValueError(f"shells must be sorted by l, got {self.shells}")
        if min(self.hopping) < 0 or min(self.overlap) < 0:
            raise ValueError("hopping and overlap amplitudes must be non-negative")
        if self.valence > 2 * sum(2 * lv + 1 for lv in self.shells):
            raise ValueError("more valence electrons than spin-orbitals")

    def r_cov(self, symbol: str) -> float:
        """Covalent radius in Angstrom."""
        return float(self.radius if self.radius is not None
                     else covalent_radii[atomic_numbers[symbol]])


_E = ElementParams
#: Default parameters: s/p for first-row elements (N double-zeta s), s/p/d for Si.
DEFAULT_ELEMENTS: Mapping[str, ElementParams] = MappingProxyType({
    "H": _E((0,), (-6.5,), (3.5,), (0.4,), 1.0, env=0.3, env_weight=0.6),
    "B": _E((0, 1), (-8.5, -3.5), (3.0, 2.6), (0.35, 0.4), 3.0, env_weight=0.9),
    "C": _E((0, 1), (-11.0, -5.0), (3.2, 2.8), (0.35, 0.4), 4.0),
    "N": _E((0, 0, 1), (-14.0, -1.0, -6.5), (3.3, 1.2, 2.9), (0.35, 0.15, 0.4), 5.0,
            env_weight=1.1),
    "O": _E((0, 1), (-18.0, -8.0), (3.0, 2.7), (0.3, 0.35), 6.0, env_weight=1.2),
    "Si": _E((0, 1, 2), (-7.5, -2.0, 4.0), (2.4, 2.2, 1.5), (0.35, 0.4, 0.25), 4.0,
             env=0.3),
})


@dataclass(frozen=True)
class ToyParams:
    """Global toy-model parameters.

    Parameters
    ----------
    elements : mapping of str to ElementParams
        Per-element parameters (default :data:`DEFAULT_ELEMENTS`).
    cutoff : float
        Pair cutoff r_cut = cutoff * (r_cov,i + r_cov,j).
    decay : float
        Radial decay length rho = decay * (r_cov,i + r_cov,j).
    switch_on : float
        The cosine switch starts at switch_on * r_cut.
    """

    elements: Mapping[str, ElementParams] = field(default_factory=lambda: DEFAULT_ELEMENTS)
    cutoff: float = 2.0
    decay: float = 0.2
    switch_on: float = 0.6


# ---------------------------------------------------------------------------- helpers
def _mixing(seed: int) -> dict[tuple[str, int, int, int], float]:
    """Seeded L-mixing factors g(kind, l1 <= l2, L), kind in {"h", "s", "env"}."""
    rng = np.random.default_rng(seed)
    out: dict[tuple[str, int, int, int], float] = {}
    for l1 in range(_L_MAX + 1):
        for l2 in range(l1, _L_MAX + 1):
            for big_l in range(l2 - l1, l1 + l2 + 1, 2):
                u = rng.uniform(size=3)
                out["h", l1, l2, big_l] = -(0.5 + 0.5 * u[0])
                out["s", l1, l2, big_l] = 0.4 + 0.4 * u[1]
                out["env", l1, l2, big_l] = 1.0 if big_l == 0 else 2 * u[2] - 1
    return out


def _g(mix: dict, kind: str, l1: int, l2: int, big_l: int) -> float:
    return mix[kind, min(l1, l2), max(l1, l2), big_l]


def _radial(r: np.ndarray, r0: np.ndarray, params: ToyParams) -> np.ndarray:
    """f(r) = 2 / (1 + exp((r - r0)/rho)) * fc(r), fc a cosine switch to 0 at r_cut."""
    rho, rc = params.decay * r0, params.cutoff * r0
    r_on = params.switch_on * rc
    x = np.clip((r - r_on) / (rc - r_on), 0.0, 1.0)
    fc = 0.5 * (1.0 + np.cos(np.pi * x))
    return 2.0 / (1.0 + np.exp((r - r0) / rho)) * fc


def _shell_offsets(shells: tuple[int, ...]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum([2 * lv + 1 for lv in shells])]).astype(int)


def _gaunt_sum(l1: int, l2: int, big_l: int, ylm: np.ndarray) -> np.ndarray:
    """4 pi sum_M Gaunt(l1 m1, l2 m2, L M) ylm[:, M] -> [n, 2l1+1, 2l2+1]."""
    return 4.0 * np.pi * np.einsum("abM,nM->nab", gaunt(l1, l2, big_l), ylm)


def _check_elements(params: ToyParams, symbols: list[str]) -> dict[str, ElementParams]:
    """Parameters of the elements present, in order of first appearance."""
    symbols = list(dict.fromkeys(symbols))
    missing = sorted(set(symbols) - set(params.elements))
    if missing:
        raise ValueError(
            f"the toy model has no parameters for element(s) {missing}; known: "
            f"{sorted(params.elements)}; pass params=ToyParams(elements={{...}})"
        )
    return {el: params.elements[el] for el in symbols}


def _canonical(i: np.ndarray, j: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Mark the member of each (i, j, R) / (j, i, -R) couple that is computed."""
    r_pos = (shift[:, 0] > 0) | ((shift[:, 0] == 0) & (
        (shift[:, 1] > 0) | ((shift[:, 1] == 0) & (shift[:, 2] > 0))))
    return (i < j) | ((i == j) & r_pos)


def _edges(atoms: Atoms, elements: dict[str, ElementParams], params: ToyParams):
    """Neighbour pairs within each element pair's cutoff; returns (i, j, shift, r0)."""
    symbols = np.array(atoms.get_chemical_symbols())
    r_cov = np.array([elements[s].r_cov(s) for s in symbols])  # [n_atoms]
    r_max = params.cutoff * 2.0 * r_cov.max() if len(r_cov) else 1.0
    i, j, shift = neighbour_list(atoms, r_max)
    r0 = r_cov[i] + r_cov[j]  # [n_pairs]
    vec = atoms.positions[j] - atoms.positions[i] + shift @ np.asarray(atoms.cell)
    dist = np.linalg.norm(vec, axis=1)
    onsite = (i == j) & ~shift.any(axis=1)
    if np.any(dist[~onsite] < 1e-6):
        raise ValueError("two atoms (or periodic images) sit on top of each other")
    keep = onsite | (dist < params.cutoff * r0)
    return i[keep], j[keep], shift[keep], r0[keep]


def _two_centre(pi: ElementParams, pj: ElementParams, vec: np.ndarray, r0: np.ndarray,
                params: ToyParams, mix: dict) -> tuple[np.ndarray, np.ndarray]:
    """H and S blocks of off-site bonds ``vec`` ([n, 3]) from element i to j, [n, n_i, n_j]."""
    f = _radial(np.linalg.norm(vec, axis=1), r0, params)  # [n]
    oi, oj = _shell_offsets(pi.shells), _shell_offsets(pj.shells)
    ylm = {L: real_sph_harm(L, vec) for L in range(2 * max(pi.shells + pj.shells) + 1)}
    h = np.zeros((len(vec), oi[-1], oj[-1]))  # [n, n_i, n_j]
    s = np.zeros_like(h)
    for a, la in enumerate(pi.shells):
        for b, lb in enumerate(pj.shells):
            amp_h = math.sqrt(pi.hopping[a] * pj.hopping[b]) * (-1) ** lb
            amp_s = pi.overlap[a] * pj.overlap[b] * (-1) ** lb
            for big_l in range(abs(la - lb), la + lb + 1, 2):
                x = _gaunt_sum(la, lb, big_l, ylm[big_l]) * f[:, None, None]
                h[:, oi[a]:oi[a + 1], oj[b]:oj[b + 1]] += amp_h * _g(mix, "h", la, lb, big_l) * x
                s[:, oi[a]:oi[a + 1], oj[b]:oj[b + 1]] += amp_s * _g(mix, "s", la, lb, big_l) * x
    return h, s


def _environment(hs: HSData, vec: np.ndarray, r0: np.ndarray,
                 params: ToyParams) -> list[np.ndarray]:
    """Per atom ``sum_j w_j f(r_ij) Y_L(d_ij)`` for L = 0, 1, 2: list of [n_atoms, 2L+1]."""
    i, j = hs.edge_index
    off = (i != j) | hs.cell_shift.any(axis=1)
    vec = vec[off]
    weight = np.array([params.elements[s].env_weight for s in hs.atoms.get_chemical_symbols()])
    wf = weight[j[off]] * _radial(np.linalg.norm(vec, axis=1), r0[off], params)  # [n_off]
    out = []
    for big_l in range(3):
        y = real_sph_harm(big_l, vec) * wf[:, None]  # [n_off, 2L+1]
        out.append(np.stack([np.bincount(i[off], y[:, m], minlength=hs.n_atoms)
                             for m in range(2 * big_l + 1)], axis=1))
    return out


def _onsite(shells: tuple[int, ...], p: ElementParams, env: list[np.ndarray],
            mix: dict) -> np.ndarray:
    """On-site H blocks of atoms of one element from their environment, [n, n_orb, n_orb]."""
    o = _shell_offsets(shells)
    n = env[0].shape[0]
    h = np.zeros((n, o[-1], o[-1]))
    for a, la in enumerate(shells):
        h[:, np.arange(o[a], o[a + 1]), np.arange(o[a], o[a + 1])] += p.onsite[a]
        for b, lb in enumerate(shells):
            for big_l in range(abs(la - lb), min(la + lb, 2) + 1, 2):
                x = _gaunt_sum(la, lb, big_l, env[big_l])
                h[:, o[a]:o[a + 1], o[b]:o[b + 1]] += p.env * _g(mix, "env", la, lb, big_l) * x
    return 0.5 * (h + h.transpose(0, 2, 1))


def _p_angular_momentum(shells: tuple[int, ...]) -> np.ndarray:
    """L_k (k = x, y, z) on the p shells of one atom in the e3nn basis, [3, n_orb, n_orb]."""
    eps = np.zeros((3, 3, 3))
    eps[0, 1, 2] = eps[1, 2, 0] = eps[2, 0, 1] = 1.0
    eps[0, 2, 1] = eps[2, 1, 0] = eps[1, 0, 2] = -1.0
    perm = np.eye(3)[[1, 2, 0]]  # Cartesian (x, y, z) -> e3nn (y, z, x)
    l_p = perm @ (-1j * eps) @ perm.T  # [3, 3, 3]; <a|L_k|b> = -i eps_kab
    o = _shell_offsets(shells)
    out = np.zeros((3, o[-1], o[-1]), dtype=np.complex128)
    for a, la in enumerate(shells):
        if la == 1:
            out[:, o[a]:o[a + 1], o[a]:o[a + 1]] = l_p
    return out


_PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


def _add_spin(hs: HSData, h: np.ndarray, spin: str, params: ToyParams) -> HSData:
    """Return ``hs`` with spinless ``h`` turned into the requested spin kind."""
    base = hs.replace(h=h[None], spin="none")
    if spin == "none":
        return base
    symbols = np.array(hs.atoms.get_chemical_symbols())
    i, j = hs.edge_index
    onsite = (i == j) & ~hs.cell_shift.any(axis=1)
    if spin == "collinear":
        out = np.stack([h, h])  # [2, n_values]
        for el in hs.basis:
            edges = np.flatnonzero(onsite & (symbols[i] == el))
            if len(edges) == 0:
                continue
            idx = hs.block_index(edges)  # [n, n_orb, n_orb]
            diag = idx[:, np.arange(idx.shape[1]), np.arange(idx.shape[1])]
            split = 0.5 * params.elements[el].exchange
            out[0, diag] -= split
            out[1, diag] += split
        return hs.replace(h=out, spin="collinear")
    if spin != "spinor":
        raise ValueError(f"spin must be 'none', 'collinear' or 'spinor', got {spin!r}")
    spinor = base.with_spin("spinor")
    values = spinor.h[0].copy()
    for el, shells in hs.basis.items():
        edges = np.flatnonzero(onsite & (symbols[i] == el))
        if len(edges) == 0:
            continue
        soc = 0.5 * params.elements[el].soc * np.einsum(
            "kst,kab->satb", _PAULI, _p_angular_momentum(shells))  # spin-major
        n = soc.shape[1]
        values[hs.block_index(edges, spinor=True)] += soc.reshape(2 * n, 2 * n)
    return spinor.replace(h=values[None])


def _fill_blocks(hs: HSData, r0: np.ndarray, params: ToyParams,
                 mix: dict) -> tuple[np.ndarray, np.ndarray]:
    """Flat spinless H and S (n_values,): canonical two-centre blocks, their transposes, on-site."""
    i, j = hs.edge_index
    symbols = hs.atoms.get_chemical_symbols()
    vec = hs.edge_vectors()  # [n_edges, 3]
    h, s = np.zeros(hs.n_values), np.zeros(hs.n_values)
    canonical = _canonical(i, j, hs.cell_shift)
    rev = hs.reverse_edges
    for group in hs.shape_groups():
        edges = group[canonical[group]]
        if len(edges) == 0:
            continue
        pi, pj = params.elements[symbols[i[edges[0]]]], params.elements[symbols[j[edges[0]]]]
        hb, sb = _two_centre(pi, pj, vec[edges], r0[edges], params, mix)  # [n, n_i, n_j]
        idx, ridx = hs.block_index(edges), hs.block_index(rev[edges])
        h[idx], s[idx] = hb, sb
        h[ridx], s[ridx] = hb.transpose(0, 2, 1), sb.transpose(0, 2, 1)
    env = _environment(hs, vec, r0, params)
    onsite = (i == j) & ~hs.cell_shift.any(axis=1)
    for el, p in params.elements.items():
        edges = np.flatnonzero(onsite & (hs.atoms.numbers[i] == atomic_numbers[el]))
        idx = hs.block_index(edges)  # [n, n_orb, n_orb]
        h[idx] = _onsite(p.shells, p, [e[i[edges]] for e in env], mix)
        s[idx] = np.eye(idx.shape[1])
    return h, s


def toy_hs(atoms: Atoms, params: ToyParams | None = None, spin: str = "none",
           seed: int = 0) -> HSData:
    """Toy tight-binding H(R) and S(R) of any structure.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (any pbc); elements must be in ``params.elements``.
    params : ToyParams, optional
        Model parameters (default :class:`ToyParams`).
    spin : {"none", "collinear", "spinor"}
        Spinless data, two channels split by the on-site exchange, or spinors with
        on-site ``lambda L.S`` on the p shells.
    seed : int
        Selects the Slater-Koster mixing factors, i.e. the "material"; the same
        seed gives the same model for every structure.

    Returns
    -------
    HSData
        H in eV, S dimensionless, both (i, j, R) and (j, i, -R) blocks stored,
        ``n_electrons`` the valence count, ``fermi_level`` NaN.
    """
    if spin not in ("none", "collinear", "spinor"):
        raise ValueError(f"spin must be 'none', 'collinear' or 'spinor', got {spin!r}")
    params = params or ToyParams()
    symbols = atoms.get_chemical_symbols()
    elements = _check_elements(params, symbols)
    params = dataclasses.replace(params, elements=elements)
    i, j, shift, r0 = _edges(atoms, elements, params)
    hs = HSData(atoms=atoms.copy(), basis={el: p.shells for el, p in elements.items()},
                edge_index=np.stack([i, j]), cell_shift=shift)
    h, s = _fill_blocks(hs, r0, params, _mixing(seed))
    hs = hs.replace(
        s=s, n_electrons=float(sum(elements[x].valence for x in symbols)), source_code="toy",
        metadata={"toy_seed": int(seed), "valence": {el: p.valence for el, p in elements.items()},
                  "units": "H eV, S dimensionless, lengths Angstrom"},
    )
    return _add_spin(hs, h, spin, params)
