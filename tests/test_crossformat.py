"""Cross-format chain on real SIESTA data: every writer/reader pair keeps the spectrum.

SIESTA -> DeepH legacy -> DeepH new -> ABACUS CSR -> OpenMX scfout -> DeePTB -> HSData,
spinless (Si, 5x5x5 k-point run) and spinor (Pt2 spin-orbit), eigenvalues to < 1e-6 eV.
"""

from __future__ import annotations

import numpy as np
import pytest

import interfaces
from ase_deeph import solvers

CHAIN = [("deeph-legacy", {}), ("deeph", {}), ("abacus", {}), ("openmx", {}), ("deeptb", {})]


def _kpoints(hs) -> np.ndarray:
    rng = np.random.default_rng(7)
    k = rng.random((4, 3)) - 0.5
    return k * hs.atoms.pbc  # Gamma along non-periodic directions


@pytest.mark.parametrize("sample", ["si_pdos_k", "pt2_soc"])
def test_chain_keeps_eigenvalues(sample, data_dir, tmp_path) -> None:
    hs0 = interfaces.read(data_dir / "siesta" / sample)
    kpts = _kpoints(hs0)
    ref = solvers.eigenvalues(hs0, kpts)
    hs = hs0
    for step, (code, kwargs) in enumerate(CHAIN):
        target = tmp_path / f"{step}_{code}"
        interfaces.write(hs, target, code, **kwargs)
        hs = interfaces.read(target, code)
        assert hs.spin == hs0.spin, code
        err = np.abs(solvers.eigenvalues(hs, kpts) - ref).max()
        assert err < 1e-6, f"after {code}: {err:.2e} eV"
    # and back to SIESTA's own format
    interfaces.write(hs, tmp_path / "final.HSX", "siesta")
    back = interfaces.read(tmp_path / "final.HSX")
    assert np.abs(solvers.eigenvalues(back, kpts) - ref).max() < 1e-6


def test_chain_reproduces_printed_siesta_eigenvalues(data_dir, tmp_path) -> None:
    """The last link of the chain still matches SIESTA's own printed eigenvalues."""
    run = data_dir / "siesta" / "si_pdos_k"
    hs = interfaces.read(run)
    for step, (code, _) in enumerate(CHAIN):
        interfaces.write(hs, tmp_path / str(step), code)
        hs = interfaces.read(tmp_path / str(step), code)
    kp = interfaces.siesta.reader.read_kp(run / "Si_pdos.KP")
    eig = interfaces.siesta.reader.read_eig(next(run.glob("Si_pdos.EIG*")))
    kfrac = kp.fractional(hs.atoms.cell)[:8]
    ours = solvers.eigenvalues(hs, kfrac)[0]
    printed = eig.eigenvalues.reshape(len(eig.eigenvalues), -1)[:8]
    assert np.abs(ours - printed).max() < 1e-4
