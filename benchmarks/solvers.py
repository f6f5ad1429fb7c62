"""Dense vs sparse solver timings on graphene pz supercells (not a test).

Run: ``python benchmarks/solvers.py`` (about a minute on 2 cores).
Prints, per supercell size: Bloch assembly, dense ``solve`` at Gamma (up to
2000 orbitals), sparse shift-invert of 20 bands near E_F, the sparse inertia
count and the sparse Fermi level.
"""

from __future__ import annotations

import os
import time

# Many small BLAS calls inside ARPACK crawl when OpenBLAS threads spin on a busy
# machine (measured: eigsh 10 s with default threads vs 0.26 s with one thread).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.neighborlist import neighbor_list  # noqa: E402

from ase_deeph import solvers  # noqa: E402
from interfaces.hsdata import HSData  # noqa: E402


def graphene_supercell(n1: int, n2: int, t: float = -2.7, s_nn: float = 0.1) -> HSData:
    """Graphene pz (one orbital per atom) n1 x n2 supercell, NN hopping and overlap."""
    a = 2.46
    prim = Atoms("C2", scaled_positions=[[0, 0, 0.5], [1 / 3, 1 / 3, 0.5]],
                 cell=[[a, 0, 0], [a / 2, a * np.sqrt(3) / 2, 0], [0, 0, 12]],
                 pbc=[True, True, False])
    atoms = prim.repeat((n1, n2, 1))
    i, j, shift = neighbor_list("ijS", atoms, 1.6)
    n = len(atoms)
    i = np.concatenate([np.arange(n), i])
    j = np.concatenate([np.arange(n), j])
    shift = np.concatenate([np.zeros((n, 3), int), shift])
    onsite = np.arange(len(i)) < n
    # a little disorder so that the spectrum is not pathologically degenerate
    h = np.where(onsite, 0.0, t)
    h[:n] = np.random.default_rng(0).uniform(-0.05, 0.05, n)
    s = np.where(onsite, 1.0, s_nn)
    return HSData(atoms=atoms, basis={"C": (0,)},
                  edge_index=np.stack([i, j]), cell_shift=shift, h=h[None], s=s,
                  n_electrons=float(n), source_code="benchmark")


def random_13(n_atoms: int, cutoff: float = 4.5, seed: int = 0) -> HSData:
    """Random carbon-like cell with 13 orbitals per atom (2s2p1d), random H, Gram-type S."""
    rng = np.random.default_rng(seed)
    box = (n_atoms / 0.11) ** (1 / 3)
    atoms = Atoms(f"C{n_atoms}", positions=rng.uniform(0, box, (n_atoms, 3)),
                  cell=[box] * 3, pbc=True)
    i, j, shift, d = neighbor_list("ijSd", atoms, cutoff)
    i = np.concatenate([np.arange(n_atoms), i])
    j = np.concatenate([np.arange(n_atoms), j])
    shift = np.concatenate([np.zeros((n_atoms, 3), int), shift])
    d = np.concatenate([np.zeros(n_atoms), d])
    eye = np.eye(13).ravel()
    s = (np.exp(-0.35 * d**2)[:, None] * eye[None]).ravel()
    h = (rng.normal(size=(len(i), 169)) * np.exp(-d)[:, None]).ravel()
    hs = HSData(atoms=atoms, basis={"C": (0, 0, 1, 1, 2)}, edge_index=np.stack([i, j]),
                cell_shift=shift, h=h[None], s=s, n_electrons=4.0 * n_atoms)
    return hs.symmetrize()


def _time(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    print(f"{'n_orb':>7} {'bloch_sp':>9} {'dense':>8} {'shift-inv':>9} {'count':>8} "
          f"{'E_F sparse':>10} {'#LU':>4} {'max|dE|':>9}")
    for n1, n2 in [(10, 10), (20, 20), (32, 32), (100, 100)]:
        hs = graphene_supercell(n1, n2)
        gamma = (0.0, 0.0, 0.0)
        _, t_bloch = _time(lambda: solvers.bloch_sparse(hs, gamma))  # noqa: B023
        sparse, t_sparse = _time(
            lambda: solvers.solve_sparse(hs, gamma, sigma=0.3, n_bands=20))  # noqa: B023
        _, t_count = _time(lambda: solvers.count_states_below(hs, 0.3, gamma))  # noqa: B023
        ef, t_ef = _time(lambda: solvers.fermi_level_sparse(hs, tol=1e-4))  # noqa: B023
        t_dense, err = float("nan"), float("nan")
        if hs.n_orbitals <= 1000:  # dense eigh beyond this takes minutes on 2 busy cores
            dense, t_dense = _time(lambda: solvers.eigenvalues(hs, gamma)[0, 0])  # noqa: B023
            near = np.sort(dense[np.argsort(np.abs(dense - 0.3))[:20]])
            err = np.abs(near - sparse.eigenvalues[0]).max()
        print(f"{hs.n_orbitals:7d} {t_bloch:9.3f} {t_dense:8.3f} {t_sparse:9.3f} {t_count:8.3f} "
              f"{t_ef:10.3f} {ef.n_factorizations:4d} {err:9.2e}   E_F = {ef.fermi_level:+.4f} eV")

    print(f"\n13 orbitals/atom (2s2p1d), ~{4.5} A cutoff: sparse assembly and shift-invert")
    print(f"{'atoms':>6} {'n_orb':>6} {'values':>10} {'1st bloch_sp':>12} {'next k':>7} "
          f"{'count':>7} {'shift-inv':>9}")
    for n_atoms in (100, 300, 1000):
        hs = random_13(n_atoms)
        k = (0.1, 0.2, 0.3)
        _, t_first = _time(lambda: solvers.bloch_sparse(hs, k))  # noqa: B023
        _, t_next = _time(lambda: solvers.bloch_sparse(hs, (0.3, 0.1, 0.0)))  # noqa: B023
        t_count = t_si = float("nan")
        if n_atoms <= 300:  # 3-D fill-in: the LU of larger random cells is slow on 2 cores
            _, t_count = _time(lambda: solvers.count_states_below(hs, 0.0, k))  # noqa: B023
            _, t_si = _time(lambda: solvers.solve_sparse(hs, k, 0.0, 20))  # noqa: B023
        print(f"{n_atoms:6d} {hs.n_orbitals:6d} {hs.n_values:10d} {t_first:12.3f} {t_next:7.3f} "
              f"{t_count:7.3f} {t_si:9.3f}")


main()
