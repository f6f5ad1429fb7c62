"""Test-only helpers for tests/test_nao.py.

A minimal SIESTA HSX v1 overlap reader (fallback when ``interfaces.siesta.reader`` is missing;
docs/formats.md sections 1.3-1.4), dense Bloch sums, analytic Gaussian radial orbitals, a
brute-force 3-D grid overlap and a writer of synthetic OpenMX ``.pao`` files.
"""

from __future__ import annotations

import gzip

import numpy as np
from ase import Atoms
from ase.units import Bohr
from scipy.interpolate import CubicSpline
from scipy.special import gamma

from interfaces import orbitals
from interfaces.hsdata import HSData
from interfaces.nao.basis_files import RadialOrbital
from interfaces.sph import real_sph_harm


# ----------------------------------------------------------------- SIESTA HSX (S only)
def _records(path) -> list[bytes]:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    out, p = [], 0
    while p < len(data):
        n = int(np.frombuffer(data[p:p + 4], "<i4")[0])
        out.append(data[p + 4:p + 4 + n])
        assert int(np.frombuffer(data[p + 4 + n:p + 8 + n], "<i4")[0]) == n
        p += n + 8
    return out


def read_hsx_overlap(path) -> HSData:
    """S(R) of an HSX v1 file, converted to the internal orbital convention."""
    rec = _records(path)
    assert int(np.frombuffer(rec[0], "<i4")[0]) == 1, "only HSX version 1"
    na, no, nspin, nspec, *nsc = (int(x) for x in np.frombuffer(rec[2], "<i4"))
    cell = np.frombuffer(rec[3], "<f8")[:9].reshape(3, 3) * Bohr
    n_s = int(np.prod(nsc))
    isc = np.frombuffer(rec[4][:12 * n_s], "<i4").reshape(n_s, 3).astype(np.int64)
    xa = np.frombuffer(rec[4][12 * n_s:12 * n_s + 24 * na], "<f8").reshape(na, 3) * Bohr
    rest = np.frombuffer(rec[4][12 * n_s + 24 * na:], "<i4")
    isa, lasto = rest[:na] - 1, rest[na:2 * na]
    labels = [rec[5][32 * k:32 * k + 20].decode().strip() for k in range(nspec)]
    basis, orders = {}, {}
    for k in range(nspec):
        nlz = np.frombuffer(rec[6 + k], "<i4").reshape(-1, 3)
        ls, pos = [], 0
        while pos < len(nlz):
            ls.append(int(nlz[pos, 1]))
            pos += 2 * ls[-1] + 1
        orders[labels[k]] = [int(x) for x in np.argsort(ls, kind="stable")]
        basis[labels[k]] = tuple(sorted(ls))
    p = 6 + nspec
    numh = np.frombuffer(rec[p], "<i4")
    cols = np.concatenate([np.frombuffer(rec[p + 1 + io], "<i4") for io in range(no)]) - 1
    p += 1 + no + nspin * no
    s_val = np.concatenate([np.frombuffer(rec[p + io], "<f8") for io in range(no)])
    rows = np.repeat(np.arange(no), numh)
    atom_of = np.searchsorted(lasto, np.arange(no), side="right")
    first = np.concatenate([[0], lasto[:-1]])
    jo = cols % no
    ia, ja, shift = atom_of[rows], atom_of[jo], isc[cols // no]
    atoms = Atoms([labels[s] for s in isa], positions=xa, cell=cell, pbc=True)
    uniq, inv = np.unique(np.stack([ia, ja, *shift.T], axis=1), axis=0, return_inverse=True)
    hs = HSData(atoms, basis, uniq[:, :2].T.copy(), uniq[:, 2:].copy())
    s = np.zeros(hs.n_values)
    s[hs.block_ptr[inv.reshape(-1)] + (rows - first[ia]) * hs.norbs[ja] + jo - first[ja]] = s_val
    return orbitals.to_internal(hs.replace(s=s), "siesta", orders)


# ----------------------------------------------------------------- Bloch sums
def bloch(hs: HSData, values: np.ndarray, k_frac) -> np.ndarray:
    """Dense X(k) = sum_R X(R) exp(+i 2 pi k.R) of spinless flat ``values``."""
    n, off = hs.n_orbitals, hs.orbital_offsets
    out = np.zeros((n, n), dtype=np.complex128)
    phase = np.exp(2j * np.pi * hs.cell_shift @ np.asarray(k_frac, dtype=float))
    for g in hs.shape_groups():
        blocks = values[hs.block_index(g)] * phase[g][:, None, None]
        i, j = hs.edge_index[:, g]
        rows = off[i][:, None, None] + np.arange(blocks.shape[1])[None, :, None]
        cols = off[j][:, None, None] + np.arange(blocks.shape[2])[None, None, :]
        np.add.at(out, (np.broadcast_to(rows, blocks.shape), np.broadcast_to(cols, blocks.shape)),
                  blocks)
    return out


def aligned(ref: HSData, ours: HSData) -> tuple[np.ndarray, np.ndarray]:
    """Our S on the reference's blocks (zero where we have none) and the reference S."""
    idx = ours.find_edges(ref.edge_index[0], ref.edge_index[1], ref.cell_shift)
    mine = np.zeros(ref.n_values)
    for g in ref.shape_groups():
        have = g[idx[g] >= 0]
        mine[ref.block_index(have)] = ours.s[ours.block_index(idx[have])]
    return mine, ref.s


# ----------------------------------------------------------------- analytic orbitals
def gaussian_orbital(l_val: int, alpha: float, n_grid: int = 2001) -> RadialOrbital:
    """Normalised R = N r^l exp(-alpha r^2) (alpha in Angstrom^-2), cut where it is ~1e-16."""
    rc = np.sqrt(36.0 / alpha)
    r = np.linspace(0.0, rc, n_grid)
    norm = np.sqrt(2 * (2 * alpha) ** (l_val + 1.5) / gamma(l_val + 1.5))
    return RadialOrbital(l=l_val, n=0, zeta=1, cutoff=rc, r=r,
                         values=norm * r**l_val * np.exp(-alpha * r**2))


def grid_overlap(orbs_a, orbs_b, d: np.ndarray, h: float) -> np.ndarray:
    """Brute-force <phi_a(r) | phi_b(r - d)> on a uniform 3-D grid of step h (Angstrom)."""
    rc = max(o.cutoff for o in (*orbs_a, *orbs_b))
    lo, hi = np.minimum(0, d) - rc, np.maximum(0, d) + rc
    axes = [np.arange(lo[k], hi[k] + h, h) for k in range(3)]
    pts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)

    def values(orbs, centre):
        v = pts - centre
        r = np.linalg.norm(v, axis=1)
        cols = []
        for o in orbs:
            rad = CubicSpline(o.r, o.values)(np.minimum(r, o.cutoff)) * (r < o.cutoff)
            cols.append(rad[:, None] * real_sph_harm(o.l, v))
        return np.concatenate(cols, axis=1)

    return values(orbs_a, np.zeros(3)).T @ values(orbs_b, d) * h**3


# ----------------------------------------------------------------- OpenMX .pao
def write_pao(path, z: int, rc_bohr: float, funcs: dict, n_log: int = 600) -> np.ndarray:
    """Write a synthetic ``.pao``; ``funcs[l]`` = callables R(r_bohr). Returns the r grid."""
    x = np.linspace(np.log(1e-4), np.log(rc_bohr * 1.2), n_log)
    r = np.exp(x)
    mul = max(len(v) for v in funcs.values())
    lines = [f"AtomSpecies {z}", f"grid.num.output {n_log}", f"radial.cutoff.pao {rc_bohr}",
             f"PAO.Lmax {max(funcs)}", f"PAO.Mul {mul}"]
    for l_val in range(max(funcs) + 1):
        lines.append(f"<pseudo.atomic.orbitals.L={l_val}")
        cols = [f(r) * (r <= rc_bohr) for f in funcs.get(l_val, [])]
        cols += [np.zeros_like(r)] * (mul - len(cols))
        for k in range(n_log):
            lines.append(" ".join(f"{v:.15e}" for v in (x[k], r[k], *(c[k] for c in cols))))
        lines.append(f"pseudo.atomic.orbitals.L={l_val}>")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return r
