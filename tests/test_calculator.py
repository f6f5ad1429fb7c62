"""The ASE calculator contract, on the toy tight-binding model (no torch needed)."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, graphene
from ase.calculators.calculator import PropertyNotImplementedError
from ase.dft.dos import DOS
from ase.outputs import Properties, all_outputs

from ase_deeph import solvers
from ase_deeph.calculator import DeepHCalculator
from ase_deeph.inference.toy import toy_hs


class CountingToy:
    """A toy H/S provider that counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, atoms):
        self.calls += 1
        return toy_hs(atoms)


@pytest.fixture
def si():
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.calc = DeepHCalculator(model=CountingToy(), kpts=(3, 3, 3))
    return atoms


def test_results_follow_ase_output_names_and_shapes(si) -> None:
    calc = si.calc
    calc.get_fermi_level()
    props = Properties({k: v for k, v in calc.results.items() if k in all_outputs})
    nspins, nk, nbands = calc.results["eigenvalues"].shape
    assert props["nspins"] == nspins == 1
    assert props["nkpts"] == nk == len(calc.get_ibz_k_points())
    assert nbands == calc.results["hamiltonian"].n_orbitals
    assert calc.results["occupations"].shape == (nspins, nk, nbands)
    assert np.isclose(calc.get_k_point_weights().sum(), 1.0)
    assert "energy" not in DeepHCalculator.implemented_properties
    assert isinstance(DeepHCalculator.implemented_properties, tuple)


def test_energy_and_forces_are_not_reported(si) -> None:
    with pytest.raises(PropertyNotImplementedError):
        si.get_potential_energy()
    with pytest.raises(PropertyNotImplementedError):
        si.get_forces()


def test_cache_and_recompute_after_moving_atoms(si) -> None:
    calc = si.calc
    e0 = calc.get_eigenvalues(0, 0)
    calc.get_fermi_level()
    calc.get_ibz_k_points()
    assert calc.provider.function.calls == 1
    si.positions[0] += [0.05, -0.02, 0.03]
    e1 = si.calc.get_eigenvalues(0, 0)
    assert calc.provider.function.calls == 2
    assert np.abs(e1 - e0).max() > 1e-4


def test_calculator_reproduces_solvers_exactly() -> None:
    atoms = graphene(a=2.46, vacuum=8.0)
    atoms.pbc = (True, True, False)
    calc = DeepHCalculator(model=toy_hs, kpts=(6, 6, 1), smearing=("fermi-dirac", 0.02))
    atoms.calc = calc
    hs = toy_hs(atoms)
    mesh = solvers.kmesh(atoms, (6, 6, 1))
    ref = solvers.solve(hs, mesh.kpts).eigenvalues
    fermi = solvers.fermi_level(ref, hs.n_electrons, mesh.weights, 2, "fermi-dirac", 0.02)
    np.testing.assert_array_equal(calc.get_ibz_k_points(), mesh.kpts)
    for k in range(mesh.nk):
        np.testing.assert_array_equal(calc.get_eigenvalues(k, 0), ref[0, k])
    assert calc.get_fermi_level() == fermi.fermi_level
    occ = sum(w * calc.get_occupation_numbers(k).sum()
              for k, w in enumerate(calc.get_k_point_weights()))
    assert np.isclose(occ, hs.n_electrons, atol=1e-9)


def test_ase_dos_and_band_structure_run(si, tmp_path) -> None:
    dos = DOS(si.calc, width=0.2, npts=400)
    e, d = dos.get_energies(), dos.get_dos()
    assert d.shape == e.shape and np.all(d >= 0)
    bs = si.calc.band_structure(path="GXWL", npoints=30)
    assert bs.energies.shape[:2] == (1, 30)
    assert np.isclose(bs.reference, si.calc.get_fermi_level())
    bs.plot(filename=str(tmp_path / "bands.png"), emin=-6, emax=6)
    assert (tmp_path / "bands.png").stat().st_size > 0


def test_pdos_and_mulliken(si) -> None:
    pdos = si.calc.get_pdos(width=0.2)
    np.testing.assert_allclose(pdos.atom.sum(axis=1), pdos.total, atol=1e-9)
    mull = si.calc.get_mulliken()
    assert np.isclose(mull.total, si.calc.get_hamiltonian().n_electrons, atol=1e-6)


def test_sparse_solver_matches_dense_near_fermi_level() -> None:
    atoms = graphene(a=2.46, vacuum=8.0).repeat((6, 6, 1))
    atoms.pbc = (True, True, False)
    atoms.rattle(0.02, seed=3)
    dense = DeepHCalculator(model=toy_hs, kpts=np.zeros((1, 3)), solver="dense")
    sparse = DeepHCalculator(model=toy_hs, solver="sparse", n_bands=12)
    ed = dense.get_property("eigenvalues", atoms)[0, 0]
    es = sparse.get_property("eigenvalues", atoms)[0, 0]
    ef = sparse.get_fermi_level()
    assert abs(ef - dense.get_fermi_level()) < 1e-4
    # the sparse window holds the dense states closest to E_F
    nearest = np.sort(ed[np.argsort(np.abs(ed - ef))[:12]])
    np.testing.assert_allclose(es, nearest, atol=1e-8)


def test_unknown_solver_name_is_an_error(si) -> None:
    """Issue 16: a bad value or a typo fails when set, not at the first calculation."""
    from interfaces.errors import ConfigError

    with pytest.raises(ConfigError, match="solver"):
        si.calc.set(solver="magic")
    with pytest.raises(ConfigError, match="solvr"):
        DeepHCalculator(model=toy_hs, solvr="dense")
    with pytest.raises(ConfigError, match="smearing"):
        DeepHCalculator(model=toy_hs, smearing=("lorentz", 0.1))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_trained_model_file_drives_the_calculator(tmp_path) -> None:
    """Train a tiny model on toy data, save it, and use the file as the calculator's model."""
    pytest.importorskip("torch")
    import dataclasses

    import interfaces
    from ase_deeph.inference.provider import ModelProvider
    from ase_deeph.training.config import ModelConfig, TrainConfig
    from ase_deeph.training.trainer import train

    rng = np.random.default_rng(0)
    items = []
    for k in range(3):
        atoms = bulk("C", "diamond", a=3.57)
        atoms.rattle(0.03, seed=k)
        items.append((None, toy_hs(atoms)))
    data = tmp_path / "toy.h5"
    interfaces.save_many(items, data)
    mcfg = dataclasses.replace(ModelConfig(), r_cut=4.0, channels=8, pseudo_channels=4,
                               n_layers=1)
    tcfg = dataclasses.replace(TrainConfig(), dataset=str(data), out_dir=str(tmp_path / "run"),
                               epochs=2, split=(0.34, 0.33, 0.33))
    path = train(mcfg, tcfg)
    provider = ModelProvider.from_any(str(path))
    assert provider.meta["overlap_source"]["kind"] == "toy"
    assert provider.meta["valence_electrons"] == {"C": 4.0}
    atoms = bulk("C", "diamond", a=3.57)
    atoms.positions += rng.normal(scale=0.01, size=atoms.positions.shape)
    calc = DeepHCalculator(model=str(path), kpts=(2, 2, 2))
    atoms.calc = calc
    ef = calc.get_fermi_level()
    hs = calc.get_hamiltonian()
    assert hs.source_code == "model" and hs.n_electrons == 8.0
    ref = toy_hs(atoms)  # S must be the exact basis overlap, copied block by block
    found = ref.find_edges(hs.edge_index[0], hs.edge_index[1], hs.cell_shift)
    for g in hs.shape_groups():
        have = found[g] >= 0
        np.testing.assert_array_equal(hs.s[hs.block_index(g[have])],
                                      ref.s[ref.block_index(found[g][have])])
        assert not np.any(hs.s[hs.block_index(g[~have])]) if np.any(~have) else True
    assert np.isfinite(ef)
    atoms.positions[0] = atoms.positions[1] + [0.3, 0.3, 0.3]
    with pytest.warns(RuntimeWarning, match="closer than any pair"):
        calc.get_fermi_level()


def test_torch_batched_eigensolver_matches_numpy() -> None:
    """The GPU path (batched torch eigh) gives the numpy eigenvalues; checked here on CPU."""
    pytest.importorskip("torch")
    from ase_deeph.inference.accel import solve_torch

    atoms = bulk("Si", "diamond", a=5.43)
    atoms.rattle(0.05, seed=2)
    hs = toy_hs(atoms, spin="spinor")
    k = np.random.default_rng(3).random((5, 3))
    ref = solvers.solve(hs, k).eigenvalues
    got = solve_torch(hs, k, device="cpu", chunk=2).eigenvalues
    np.testing.assert_allclose(got, ref, atol=1e-9)
    calc = DeepHCalculator(model=toy_hs, kpts=k, eigensolver="torch")
    np.testing.assert_allclose(calc.get_property("eigenvalues", atoms)[0],
                               solvers.solve(toy_hs(atoms), k).eigenvalues[0], atol=1e-9)


def test_shipped_models_are_found_by_name() -> None:
    from ase_deeph.inference.provider import ModelProvider, model_path, shipped_models

    names = shipped_models()
    assert "default" in names
    for name in names:
        prov = ModelProvider.from_any(name, device="cpu")
        assert prov.meta["basis"] and model_path(name).with_suffix(".md").exists()  # a card
    with pytest.raises(FileNotFoundError, match="no shipped model 'nonesuch'.*default"):
        model_path("nonesuch")
    with pytest.raises(FileNotFoundError, match="nonesuch.safetensors does not exist"):
        DeepHCalculator(model="nonesuch.safetensors")
