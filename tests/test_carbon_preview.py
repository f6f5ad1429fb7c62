"""The shipped carbon-preview committee (issue 13): new basis, Dirac point, uncertainty."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from ase.build import bulk, graphene

pytest.importorskip("torch")

from ase_deeph import DeepHCalculator, solvers  # noqa: E402
from ase_deeph.inference.provider import ModelProvider  # noqa: E402


def test_preview_is_a_committee_in_the_new_basis():
    prov = ModelProvider.from_any("carbon-preview", device="cpu")
    assert prov.n_members == 3
    assert prov.meta["overlap_source"]["basis"] == "gth-dzvp-molopt-sr-compact"


def test_graphene_dirac_point_and_a_quiet_committee():
    atoms = graphene(a=2.46, vacuum=8.0)
    atoms.pbc = (True, True, False)
    atoms.calc = DeepHCalculator(model="carbon-preview", kpts=(6, 6, 1), gamma=True,
                                 smearing=("fermi-dirac", 0.1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no ghost, no uncertainty warning
        ef = atoms.calc.get_fermi_level()
    assert atoms.calc.results["uncertainty_near_fermi"] < 0.015
    ek = solvers.eigenvalues(atoms.calc.get_hamiltonian(), np.array([[1 / 3, 1 / 3, 0.0]]))
    pair = np.sort(ek[0, 0][np.argsort(np.abs(ek[0, 0] - ef))[:2]])
    assert abs(pair.mean() - ef) < 0.020 and pair[1] - pair[0] < 0.020  # Dirac point at E_F


def test_diamond_is_outside_the_data_and_the_committee_says_so():
    atoms = bulk("C", "diamond", a=3.567, cubic=True)
    atoms.rattle(0.05, seed=1)
    atoms.calc = DeepHCalculator(model="carbon-preview", kpts=(2, 2, 2))
    with pytest.warns(RuntimeWarning, match="committee disagrees"):
        atoms.calc.get_fermi_level()
    assert atoms.calc.results["uncertainty_near_fermi"] > 0.1
