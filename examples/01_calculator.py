"""The drop-in ASE calculator on a structure from ``ase.build``.

AB-stacked bilayer graphene with the shipped default model: Fermi level, band energies,
band structure and DOS through ASE's own interfaces, then the same after moving an atom
(the calculator recomputes)::

    python examples/01_calculator.py [-o calculator_example]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ase.build import graphene
from ase.dft.dos import DOS

from ase_deeph import DeepHCalculator


def ab_bilayer(distance: float = 3.35):
    """AB (Bernal) bilayer graphene, 4 atoms, periodic in-plane."""
    layer = graphene(a=2.46, vacuum=0.0)
    top = layer.copy()
    top.positions += [0.0, 2.46 / 3**0.5, distance]  # B atom above A
    atoms = layer + top
    atoms.cell[2] = [0.0, 0.0, distance + 15.0]
    atoms.pbc = (True, True, False)
    atoms.center(axis=2)
    return atoms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="calculator_example")
    out = Path(parser.parse_args().output)
    out.mkdir(exist_ok=True)

    atoms = ab_bilayer()
    # Gamma-centred 12x12 mesh: it contains K, where the bilayer's bands touch E_F (a
    # Monkhorst-Pack 12x12 mesh misses K and would give a DOS at E_F of ~0)
    atoms.calc = DeepHCalculator(model="default", kpts=(12, 12, 1), gamma=True,
                                 smearing=("fermi-dirac", 0.02))
    calc = atoms.calc
    print(f"E_F = {calc.get_fermi_level():.4f} eV with {len(calc.get_ibz_k_points())} "
          f"irreducible k-points; {calc.get_number_of_bands()} bands")
    print("bands at the first k-point (eV):", calc.get_eigenvalues(kpt=0)[:10].round(3))

    bs = calc.band_structure(path="KGMK", npoints=120)
    bs.subtract_reference().plot(filename=str(out / "bilayer_bands.png"), emin=-4, emax=4)
    dos = DOS(calc, width=0.1, npts=600)
    print(f"DOS at E_F: {dos.get_dos()[abs(dos.get_energies()).argmin()]:.4g} states/eV")

    atoms.positions[2:] += [0.0, 0.0, 0.2]  # pull the layers apart: the calculator recomputes
    print(f"after moving the top layer: E_F = {calc.get_fermi_level():.4f} eV")
    print(f"wrote {out / 'bilayer_bands.png'}")


main()
