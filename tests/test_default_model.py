"""The shipped default model (issue 13): new basis, committee, sane physics where users go first."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, graphene

pytest.importorskip("torch")

from ase_deeph import DeepHCalculator, solvers  # noqa: E402
from ase_deeph.inference.provider import ModelProvider  # noqa: E402
from ase_deeph.solvers.conditioning import BasisTopWarning  # noqa: E402


def _quiet(calc) -> float:
    """E_F with every RuntimeWarning (ghost, far state, committee) raised as an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return calc.get_fermi_level()


def _all_states(calc) -> np.ndarray:
    return np.asarray(calc.results["eigenvalues"])


def test_default_is_a_carbon_committee_in_the_new_basis():
    prov = ModelProvider.from_any("default", device="cpu")
    assert prov.n_members == 3
    assert prov.meta["overlap_source"]["basis"] == "gth-dzvp-molopt-sr-compact"
    assert sorted(prov.meta["basis"]) == ["C", "H"]


def test_graphene_dirac_point_at_fermi_level_and_a_quiet_committee():
    atoms = graphene(a=2.46, vacuum=8.0)
    atoms.pbc = (True, True, False)
    atoms.calc = DeepHCalculator(kpts=(6, 6, 1), gamma=True, smearing=("fermi-dirac", 0.1))
    ef = _quiet(atoms.calc)
    assert atoms.calc.results["uncertainty_near_fermi"] < 0.015
    assert _all_states(atoms.calc).min() > ef - 40.0
    e = _all_states(atoms.calc)
    if (e > ef + 40.0).any():  # the basis's own top (PySCF: +230 eV) comes with its reason
        with pytest.warns(BasisTopWarning, match="above E_F"):
            atoms.calc.calculate(atoms)
    ek = solvers.eigenvalues(atoms.calc.get_hamiltonian(), np.array([[1 / 3, 1 / 3, 0.0]]))
    pair = np.sort(ek[0, 0][np.argsort(np.abs(ek[0, 0] - ef))[:2]])
    assert abs(pair.mean() - ef) < 0.020 and pair[1] - pair[0] < 0.020  # Dirac point at E_F


def test_pristine_diamond_is_an_insulator_with_a_wide_gap():
    """Sane physics; the only warning allowed is the committee's (card: ~70 meV spread)."""
    atoms = bulk("C", "diamond", a=3.567)
    atoms.calc = DeepHCalculator(kpts=(4, 4, 4), gamma=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ef = atoms.calc.get_fermi_level()
    # the committee's warning and the note on the basis's own top (> E_F + 40 eV)
    assert all("uncertain prediction" in str(w.message) or w.category is BasisTopWarning
               for w in caught)
    e = _all_states(atoms.calc)
    assert e.min() > ef - 40.0
    gap = e[e > ef].min() - e[e < ef].max()
    assert gap > 3.0  # PySCF in this basis on this mesh: 4.52 eV


def test_a_structure_far_from_the_data_is_flagged():
    """A linear carbon chain (sp carbon, in no family): the committee warns."""
    chain = Atoms("C2", positions=[[0.0, 8.0, 8.0], [1.28, 8.0, 8.0]], cell=[2.56, 16.0, 16.0],
                  pbc=(True, False, False))
    chain.calc = DeepHCalculator(kpts=(8, 1, 1), gamma=True, smearing=("fermi-dirac", 0.1))
    with pytest.warns(RuntimeWarning, match="uncertain prediction"):
        chain.calc.get_fermi_level()
    assert chain.calc.results["uncertainty_near_fermi"] > 0.015


def test_cli_bands_of_an_ab_bilayer_have_no_deep_ghosts(tmp_path, capsys):
    """``ase-deeph bands STRUCT -m default``: the policy projects nothing in this basis."""
    from ase_deeph.cli.app import main
    from ase_deeph.solvers import conditioning as cond

    layer = graphene(a=2.46, vacuum=None)
    top = layer.copy()
    top.positions += [0.0, 2.46 / 3**0.5, 3.35]
    atoms = layer + top
    atoms.cell[2] = [0.0, 0.0, 18.35]
    atoms.pbc = (True, True, False)
    atoms.center(axis=2)
    structure = tmp_path / "ab.vasp"
    atoms.write(structure, format="vasp")
    assert main(["bands", str(structure), "-m", "default", "-o", str(tmp_path / "b.png")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["s_projection_threshold"] == cond.NUMERICAL  # well conditioned: no projection
    lo, _ = summary["energy_range_eV"]
    assert lo > summary["fermi_level_eV"] - 40.0
    # a VASP file has no pbc flags: the 18 A vacuum axis still gets one k-point
    assert main(["dos", str(structure), "-m", "default", "-o", str(tmp_path / "d.png")]) == 0
    dos = json.loads(capsys.readouterr().out)
    assert dos["kmesh"][2] == 1 and dos["kmesh"][0] > 1
    assert abs(dos["fermi_level_eV"] - summary["fermi_level_eV"]) < 0.05
