"""Convert real DFT runs between formats and plot their bands (no torch needed).

Reads the shipped SIESTA silicon run (HSX v1 + EIG + KP) and the ABACUS silicon run
(old CSR), checks the SIESTA Hamiltonian against SIESTA's own printed eigenvalues,
writes it to the DeepH-dock, ABACUS and OpenMX formats and back, and plots bands and a
projected DOS::

    python examples/02_convert_and_bands.py [-o convert_example]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import interfaces
from ase_deeph import solvers

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="convert_example")
    out = Path(parser.parse_args().output)
    out.mkdir(exist_ok=True)

    run = DATA / "siesta" / "si_pdos_k"
    hs = interfaces.read(run)                       # detects SIESTA from *.HSX
    print(hs.summary())

    # 1. the converted data reproduce SIESTA's printed eigenvalues
    kp = interfaces.siesta.reader.read_kp(run / "Si_pdos.KP")
    eig = interfaces.siesta.reader.read_eig(next(run.glob("Si_pdos.EIG*")))
    ours = solvers.eigenvalues(hs, kp.fractional(hs.atoms.cell))[0]
    printed = eig.eigenvalues.reshape(len(eig.eigenvalues), -1)
    print(f"max |e_ours - e_SIESTA| over {len(printed)} k-points: "
          f"{1e3 * np.abs(ours - printed).max():.3f} meV")

    # 2. round trip through other codes' formats; the spectrum is unchanged
    k = np.array([[0.1, 0.2, 0.3], [0.5, 0.0, 0.5]])
    ref = solvers.eigenvalues(hs, k)
    for code in ("deeph", "deeph-legacy", "abacus", "openmx", "deeptb"):
        interfaces.write(hs, out / code, code)
        back = interfaces.read(out / code, code)
        print(f"{code:13s} round trip: max eigenvalue change "
              f"{np.abs(solvers.eigenvalues(back, k) - ref).max():.1e} eV")

    # 3. bands and projected DOS
    mesh = solvers.kmesh(hs.atoms, (8, 8, 8))
    sol = solvers.solve(hs, mesh.kpts, return_vectors=True)
    fermi = solvers.fermi_level(sol.eigenvalues, hs.n_electrons, mesh.weights)
    print(f"E_F = {fermi.fermi_level:.3f} eV (mid-gap), gap on the mesh = {fermi.gap:.3f} eV")
    bs = solvers.band_structure(hs, "LGXUKG", 150, fermi_level=fermi.fermi_level)
    solvers.plot_bands(bs, out / "si_bands.png", emin=-6, emax=5, title="Si, SIESTA SZP")
    pdos = solvers.projected_dos(hs, sol, mesh.weights, width=0.15,
                                 fermi_level=fermi.fermi_level)
    solvers.plot_dos(pdos, out / "si_pdos.png", by="l", emin=-13, emax=6)

    # 4. an ABACUS run (H after one SCF step: formats only, not physics)
    ab = interfaces.read(DATA / "abacus" / "si2_dzp_oldcsr")
    print(ab.summary())
    print(f"wrote {out}/si_bands.png, {out}/si_pdos.png and converted folders")


main()
