"""Electron-phonon coupling of graphene from the shipped model, against DFPT (Piscanec 2004).

H from the default model (trained on eight PySCF carbon families, monolayer graphene among
them; float64 inference), S and the exact on-site D = <d phi | phi> from the same
gth-dzvp-molopt-sr-compact basis (PySCF integrals); phonons from
ASE's Tersoff calculator with Tersoff's carbon parameters (PRB 39, 5566 (1989)) through
phonopy (6x6x1 supercell). Finite differences in a 7x7x1 box (``n_box=(3, 3, 0)``: the 18 A
vacuum axis exceeds twice the 8 A range of H), u = 0.01 A, central differences.

Computed: g at the Dirac point k = K for q = Gamma and q = K (K -> K'), all modes, and along
the path Gamma-M-K-Gamma (|g| per mode, rms over the two pi bands at K; plot ``g_path.png``).

Unstable phonons: Tersoff's flexural (ZA) branch is imaginary near Gamma (down to -10 meV,
23 of the 60 path q-points). Imaginary modes are no couplings, and next to the imaginary
region the branch has tiny positive frequencies (2.6 meV on Gamma-M) whose
``1/sqrt(omega)`` factor gave a spurious 2.1 eV |g| peak; the path coupling therefore uses
``mask_unstable="branch"``: the whole unstable branch is NaN (not drawn; a warning names the
q-points) and ``summary.json`` records ``n_unstable_path_modes``. The same run as a TOML:
``ase-deeph epc ase_deeph/configs/epc/graphene_model.toml``.

Comparison: Piscanec et al., PRL 93, 185503 (2004) (DFT-PBE, graphene) report
<D^2_Gamma>_F = 45.60 (eV/A)^2 (E2g) and <D^2_K>_F = 92.05 (eV/A)^2 (A1'), i.e. a ratio of
2.02, with <g^2> = <D^2> hbar / (2 M omega). Here D^2_nu = |g_nu|^2 2 M omega_nu / hbar is
independent of the phonon frequency, and the E2g / A1' eigenvectors are fixed by symmetry,
so the Tersoff frequencies do not enter D^2; we average |D|^2 over the (mode, pi band,
pi band) triples of the coupled modes (8 at Gamma: two E2g modes, 4 at K: the A1' mode),
the normalisation we read in that paper. Run::

    python examples/06_epc_graphene_model.py [-o epc_graphene] [--model default]
    python examples/06_epc_graphene_model.py --provider pyscf --n-box 1 1 0   # PySCF itself

``--provider pyscf`` runs PySCF (same settings as the training data: PBE, GTH, ``--basis``
(default gth-dzvp-molopt-sr-compact, the default model's), Fermi smearing 0.1 eV, about
15 k-points per A^-1 in plane) on every
displaced supercell; compare with ``--provider model`` at the same ``--n-box``.

Measured with the current default (eight carbon families, 2026-12-08, 2-core CPU, beside a
training run; box (3, 3, 0): 7 model calls 5.5 s): <D^2_Gamma>_F = 44.6 and <D^2_K>_F = 94.9
(eV/A)^2 (ratio 2.13; sum rule max |sum dH| = 0.0034 eV/A), against DFPT 45.60 and 92.05:
-2 % and +3 %. PySCF finite differences in the same basis
(``--provider pyscf --n-box 1 1 0``, 7 SCF runs, 4,127 s beside other work, 2026-12-07):
43.27 and 90.00 (eV/A)^2 (-5 % and -2 % from DFPT; sum rule max |sum dH| = 0.39 eV/A,
SCF noise of the finite differences), so the model is +3.0 % (Gamma) and +5.4 % (K)
from PySCF in its own basis (the previous six-family default: 44.7 and 99.5, +3.3 % and
+10.5 %); in the older gth-dzvp-compact basis PySCF gave 43.1 and 89.7.
The older bilayer-only model (``--model bilayer-dzvp-compact``, older basis) is described
below.

Measured (2-core CPU, one thread, 2026-11-21; phonons 0.15 s, 7 model calls (symmetry on)
for the finite differences 5.4 s; acoustic sum rule max |sum dH| = 0.008 eV/A, |sum dS| = 1e-15 /A):

* selection rules hold: at Gamma only the two E2g modes couple the pi states at K (equal
  D^2 = 380.5 (eV/A)^2 each, all other modes < 1e-20); at K the A1' mode carries the
  coupling (385.4), the E' pair 1.7, the rest ~0;
* PySCF itself as provider (``--provider pyscf --n-box 1 1 0``: 7 SCF runs, 1461 s; sum rule
  0.05 eV/A): <D^2_Gamma>_F = 43.1 and <D^2_K>_F = 89.7 (eV/A)^2, ratio 2.08, against DFPT
  45.60, 92.05 and 2.02 -- the finite-difference matrix element and our reading of the
  paper's averages reproduce DFPT to 3-6 %.
* the older default, now ``bilayer-dzvp-compact`` (box (3, 3, 0); (1, 1, 0) gives
  95.1 / 99.9): <D^2_K>_F = 97.2 (+8 % vs PySCF), <D^2_Gamma>_F = 95.1 (2.2x PySCF): the
  model, trained on bilayers only, overstates the E2g coupling of a monolayer; the A1'
  coupling is right.
* Tersoff frequencies (a = 2.46 A is compressed for Tersoff's carbon): E2g 334 meV and
  A1' 223 meV against ~196 and ~161 meV in DFT; they enter |g| but not D^2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.build import graphene

from ase_deeph import epc
from ase_deeph.cli.epc import model_provider, plot_lines
from ase_deeph.inference.provider import REFERENCE_THRESHOLD, default_model_path
from interfaces.pyscf.generator import DEFAULT_BASIS

PISCANEC = {"D2_Gamma_eV2_per_A2": 45.60, "D2_K_eV2_per_A2": 92.05}


def d_squared(res, mass: float) -> np.ndarray:
    """|D|^2 in (eV/A)^2 per (q, mode, m, n) at the first k from g (meV) and omega (meV)."""
    omega = res.modes.energies_mev  # [nq, n_modes]
    g2 = np.abs(res.g[:, 0]) ** 2  # [nq, n_modes, nb, nb] meV^2
    hbar2_2m = epc.HBAR2_2AMU / mass  # meV A^2
    return g2 * (omega / hbar2_2m)[:, :, None, None] * 1e-6


def pyscf_provider(basis: str):
    """(provider, onsite_d): PySCF with the generator's graphene settings, k-mesh by cell size."""
    from interfaces import pyscf

    def run(atoms):
        lengths = atoms.cell.lengths()
        kmesh = [max(1, round(14.76 / x)) if x < 15.0 else 1 for x in lengths]
        return pyscf.run(atoms, basis=basis, xc="pbe", kmesh=kmesh,
                         ke_cutoff=100.0, r_cut=8.0, smearing=0.1, conv_tol=1e-9)

    return run, epc.onsite_d_pyscf(basis)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="epc_graphene")
    parser.add_argument("--model", default=str(default_model_path()))
    parser.add_argument("--provider", choices=("model", "pyscf"), default="model")
    parser.add_argument("--n-box", type=int, nargs=3, default=(3, 3, 0))
    parser.add_argument("--basis", default=DEFAULT_BASIS,
                        help="PySCF basis of --provider pyscf (use the model's basis)")
    parser.add_argument("--npoints", type=int, default=60)
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    atoms = graphene(a=2.46, vacuum=9.0)  # c = 18 A, as the training cells
    atoms.pbc = True
    t0 = time.perf_counter()
    ph = epc.phonopy_forces(epc.phonopy_from_atoms(atoms, np.diag([6, 6, 1])),
                            epc.tersoff_carbon)
    t_ph = time.perf_counter() - t0
    if args.provider == "pyscf":  # DFT H(R): project only its folding artefacts (1e-4)
        (provider, onsite), thr = pyscf_provider(args.basis), REFERENCE_THRESHOLD
    else:
        (provider, onsite), thr = model_provider(args.model), None
    t0 = time.perf_counter()
    derivs = epc.derivatives(provider, atoms, n_box=tuple(args.n_box), delta=0.01,
                             onsite_d=onsite, ill_threshold=thr)
    t_fd = time.perf_counter() - t0
    k_dirac = atoms.cell.bandpath().special_points["K"]
    pi = [3, 4]  # 8 valence electrons: bands 3 and 4 meet at K
    modes = epc.phonon_modes(ph, [[0.0, 0.0, 0.0], k_dirac], atoms)
    res = epc.coupling(derivs, modes, [k_dirac], bands=pi)
    d2 = d_squared(res, float(atoms.get_masses()[0]))  # [2, 6, 2, 2]
    per_mode = d2.sum(axis=(-1, -2))  # [2, 6]
    d2_gamma, d2_k = per_mode[0].sum() / 8.0, per_mode[1].sum() / 4.0
    summary = {
        "provider": args.provider, "n_box": list(args.n_box),
        "basis": args.basis if args.provider == "pyscf" else args.model,
        "provider_calls": derivs.n_provider_calls, "ill_threshold": derivs.ill_threshold,
        "phonons_s": t_ph, "finite_differences_s": t_fd, "form": res.form,
        "sum_rule_max": epc.sum_rule_error(derivs),
        "dirac_point_eV": res.e_k[0].tolist(),
        "omega_Gamma_meV": modes.energies_mev[0].tolist(),
        "omega_K_meV": modes.energies_mev[1].tolist(),
        "D2_per_mode_Gamma": per_mode[0].tolist(), "D2_per_mode_K": per_mode[1].tolist(),
        "D2_Gamma_eV2_per_A2": float(d2_gamma), "D2_K_eV2_per_A2": float(d2_k),
        "ratio_K_over_Gamma": float(d2_k / d2_gamma), "piscanec_2004": PISCANEC,
    }
    path = atoms.cell.bandpath("GMKG", npoints=args.npoints)
    path_modes = epc.phonon_modes(ph, path.kpts, atoms)
    along = epc.coupling(derivs, path_modes, [k_dirac], bands=pi, mask_unstable="branch")
    g_mode = np.sqrt(np.mean(along.g_avg[:, 0] ** 2, axis=(-1, -2)))  # [nq, 6] meV, NaN masked
    summary["n_unstable_path_modes"] = int(path_modes.unstable.sum())
    summary["masked_path_branches"] = np.flatnonzero(along.masked.any(axis=0)).tolist()
    summary["max_g_path_meV"] = float(np.nanmax(g_mode))
    x, xt, labels = path.get_linear_kpoint_axis()
    plot_lines(out / "g_path.png", x, g_mode, "q",
               "|g| (meV), k = K, pi bands; unstable ZA branch masked",
               (xt, [r"$\Gamma$" if s == "G" else s for s in labels]))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
