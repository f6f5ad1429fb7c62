"""End-to-end electron-phonon coupling of bulk Si: |g| along L-G-X-W-K-G and alpha^2F.

Phonons: ASE's Tersoff calculator (Tersoff's Si(C) parameters) -> phonopy force constants
(3x3x3 supercell of the 2-atom primitive cell, ``primitive_matrix="P"``).
H and S: the toy model (``ase_deeph.inference.toy.toy_hs``, default; seconds) or PySCF
(``--provider pyscf``: a self-consistent gth-szv PBE calculation of each of the 13 supercells
(54 atoms); with exact on-site D from ``int1e_ipovlp``; hours on 2 cores, not run in CI) or a
trained model file (``--provider model.safetensors``; float64 inference).

Run::

    python examples/04_epc.py [-o epc_example] [--provider toy|pyscf|FILE]

Writes ``g_path.png`` (|g| per mode, k = Gamma, top three valence bands, degeneracy-averaged,
in meV) and ``a2f.png`` (alpha^2F of the hole-doped toy, E_F 0.3 eV below the valence-band top).
The Fermi level is set explicitly because Si is an insulator: the computed one is mid-gap,
where N_F = lambda = 0 (``epc.eliashberg`` warns). The path part with the shipped Si model as
a TOML config (about 25 s): ``ase-deeph epc ase_deeph/configs/epc/si_model.toml -o epc_si``.

Comparison with DFPT (Perturbo ``tests/refs/si_ephmat.yml``, k = Gamma, bands 2-4, same path):
there the highest branch has |g| = 146 meV at L, 126 meV at X and 190 meV at Gamma, and the
lowest acoustic branch 12 meV at L, up to 38 meV along L-G, 0 at Gamma. Here |g| per mode is
the rms over the 3 x 3 degeneracy-averaged band pairs (we did not verify that Perturbo averages
the same way). The toy model
is not Si: it has Si-like bonding but invented Slater-Koster parameters (and no on-site D), so
only the shape of |g|(q) and the order of magnitude can be compared. The script prints both.
"""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path

import numpy as np
from ase.build import bulk

from ase_deeph import epc
from ase_deeph.cli.epc import model_provider, plot_lines
from ase_deeph.inference.toy import toy_hs

PERTURBO_SI = {"highest mode at L, X, G": (146.3, 125.6, 190.2), "lowest mode at L": 11.8}


def provider_of(name: str):
    """(provider, onsite_d) for "toy", "pyscf" or a model file."""
    if name == "toy":
        return partial(toy_hs, seed=0), None
    if name == "pyscf":
        from interfaces.pyscf.generator import run

        return partial(run, basis="gth-szv", kmesh=(1, 1, 1)), epc.onsite_d_pyscf("gth-szv")
    return model_provider(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="epc_example")
    parser.add_argument("--provider", default="toy")
    parser.add_argument("--npoints", type=int, default=80)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    si = bulk("Si", "diamond", a=5.43)
    t0 = time.perf_counter()
    ph = epc.phonopy_forces(epc.phonopy_from_atoms(si, np.eye(3, dtype=int) * 3),
                            epc.tersoff_si)
    print(f"phonons (Tersoff, phonopy): {time.perf_counter() - t0:.1f} s")

    provider, onsite = provider_of(args.provider)
    t0 = time.perf_counter()
    derivs = epc.derivatives(provider, si, n_box=1, delta=0.01, onsite_d=onsite)
    print(f"finite differences ({6 * len(si)} supercell H/S calls): "
          f"{time.perf_counter() - t0:.1f} s; on-site D {derivs.onsite_d}; "
          f"sum rule max |sum dH|, |sum dS| = {epc.sum_rule_error(derivs)}")

    path = si.cell.bandpath("LGXWKG", npoints=args.npoints)
    modes = epc.phonon_modes(ph, path.kpts, si)
    n_val = int(round(derivs.hs0.n_electrons / 2))
    bands = list(range(n_val - 3, n_val))
    res = epc.coupling(derivs, modes, [[0.0, 0.0, 0.0]], bands=bands)
    g_mode = np.sqrt(np.mean(res.g_avg[:, 0] ** 2, axis=(-1, -2)))  # [nq, 6] meV
    x, xt, labels = path.get_linear_kpoint_axis()
    plot_lines(out / "g_path.png", x, g_mode, "q", f"|g| (meV), k = G, bands {bands}, {res.form}",
          (xt, [r"$\Gamma$" if s == "G" else s for s in labels]))
    i_l, i_x = 0, int(np.argmin(np.linalg.norm(path.kpts - [0.5, 0.0, 0.5], axis=1)))
    print("phonon energies at L (meV):", np.round(modes.energies_mev[i_l], 1))
    print("phonon energies at X (meV):", np.round(modes.energies_mev[i_x], 1))
    print("|g| at L per mode (meV):", np.round(g_mode[i_l], 1))
    print("|g| at X per mode (meV):", np.round(g_mode[i_x], 1))
    print("Perturbo Si DFPT reference (meV):", PERTURBO_SI)

    e_top = float(res.e_k[0].max())
    eli = epc.eliashberg(derivs, ph, k_mesh=(8, 8, 8), q_mesh=(4, 4, 4), sigma_el=0.1,
                         fermi_level=e_top - 0.3)
    plot_lines(out / "a2f.png", eli.omega_grid, eli.a2f, "omega (meV)", "alpha^2F (hole-doped toy)")
    print(f"hole-doped toy: N_F = {eli.n_f:.3f} /eV/spin, lambda = {eli.lam:.3f}, "
          f"omega_log = {eli.omega_log:.1f} meV, Tc(mu*=0.1) = {eli.tc(0.1):.2f} K, "
          f"{eli.n_soft} soft modes skipped, form {eli.form}")


if __name__ == "__main__":
    main()
