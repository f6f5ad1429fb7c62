"""EPC TOML configs (shipped ones and the config.py docstring) and unstable-phonon masking."""

from __future__ import annotations

import json
import re
import textwrap
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import tomllib
from ase.build import bulk

import ase_deeph
from ase_deeph import epc
from ase_deeph.cli.epc import run_epc_config
from ase_deeph.epc import config as epc_config
from ase_deeph.epc.config import from_toml
from ase_deeph.inference.toy import toy_hs

SHIPPED = sorted((Path(ase_deeph.__file__).parent / "configs" / "epc").glob("*.toml"))
#: Size overrides (the configs' own keys) that keep every run to seconds.
TINY = {"phonons": {"supercell": [2, 2, 2]}, "fd": {"n_box": [1, 0, 0]},
        "coupling": {"npoints": 3}, "eliashberg": {"k_mesh": [2, 2, 2], "q_mesh": [2, 2, 2]}}


def docstring_tomls() -> list[str]:
    """The ``::`` literal blocks of the config.py docstring that look like TOML."""
    doc = epc_config.__doc__
    blocks = re.findall(r"::\n\n((?:(?: {4}.*)?\n)+)", doc + "\n")
    return [textwrap.dedent(b) for b in blocks if "[" in b]


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    return json.dumps(v) if isinstance(v, str) else repr(v)


def dump_toml(data: dict) -> str:
    """Minimal TOML writer for the flat sections of an EPC config."""
    lines = []
    for section, values in data.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def tiny(data: dict) -> dict:
    """Copy of a parsed config with the sizes of :data:`TINY` (existing sections only)."""
    out = {s: dict(v) for s, v in data.items()}
    for section, values in TINY.items():
        if section in out:
            out[section].update(values)
    if out.get("structure", {}).get("build") == "graphene":  # a layer: 1 cell along c
        out["phonons"]["supercell"] = [2, 2, 1]
        if "eliashberg" in out:
            out["eliashberg"].update(k_mesh=[2, 2, 1], q_mesh=[2, 2, 1])
    return out


def _run(text: str, folder: Path, name: str):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_epc_config(path, folder / "out")
    return summary, [str(w.message) for w in caught]


def test_shipped_configs_exist_and_state_their_cost():
    names = {p.stem for p in SHIPPED}
    assert {"si_model", "graphene_model"} <= names
    for path in SHIPPED:
        text = path.read_text()
        assert "Cost" in text and "ase-deeph epc" in text, path
        cfg = from_toml(path)  # parses; a shipped model stays a name
        assert cfg.provider == "model" and cfg.model in ("si", "default")


def test_docstring_toml_parses(tmp_path):
    blocks = docstring_tomls()
    assert blocks, "no TOML example found in ase_deeph/epc/config.py"
    for text in blocks:
        data = tomllib.loads(text)
        assert "fermi_level" not in data.get("eliashberg", {})  # the insulator case
        path = tmp_path / "doc.toml"
        path.write_text(text)
        from_toml(path)


def test_docstring_toml_runs_on_an_insulator(tmp_path):
    """The documented config (toy Si, no fermi_level) used to crash in eliashberg."""
    for i, text in enumerate(docstring_tomls()):
        data = tiny(tomllib.loads(text))
        summary, caught = _run(dump_toml(data), tmp_path / f"doc{i}", "doc")
        for name in ("epc.h5", "epc.json", "g_path.png"):
            assert (tmp_path / f"doc{i}" / "out" / name).is_file()
        if "eliashberg" in data:
            eli = summary["eliashberg"]
            assert eli["fermi_in_gap"] and not eli["fermi_level_given"]
            assert eli["lambda"] == 0.0 and eli["tc_K"]["mu*=0.1"]["allen-dynes"] == 0.0
            assert any("lies in a gap" in m and "fermi_level" in m for m in caught)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_runs_tiny(path, tmp_path):
    data = tiny(tomllib.loads(path.read_text()))
    summary, _ = _run(dump_toml(data), tmp_path, path.stem)
    assert summary["provider"] == "model" and summary["onsite_d"] == "provided"
    assert summary["path"]["form"] == "full"
    assert (tmp_path / "out" / "g_path.png").is_file()


def test_model_key_resolution(tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"")
    cases = {"[hs]\nmodel = 'si'\n": ("model", "si"),
             "[hs]\nmodel = 'm.safetensors'\n": ("model", str(tmp_path / "m.safetensors")),
             "[hs]\nprovider = 'm.safetensors'\n": ("model", str(tmp_path / "m.safetensors"))}
    for text, expected in cases.items():
        (tmp_path / "c.toml").write_text(text)
        cfg = from_toml(tmp_path / "c.toml")
        assert (cfg.provider, cfg.model) == expected
    (tmp_path / "c.toml").write_text("[hs]\nprovider = 'model'\n")
    with pytest.raises(ValueError, match="model"):
        from_toml(tmp_path / "c.toml")


# ------------------------------------------------------------------ unstable phonon modes
@pytest.fixture(scope="module")
def si_setup():
    si = bulk("Si", "diamond", a=5.43)
    derivs = epc.derivatives(toy_hs, si)
    ph = epc.phonopy_forces(epc.phonopy_from_atoms(si, np.eye(3, dtype=int) * 2),
                            epc.tersoff_si)
    return si, derivs, ph


def _with_imaginary(modes):
    """Modes at 3 q with mode 0 at q #1 made imaginary (-3 meV)."""
    f = modes.frequencies_thz.copy()
    f[1, 0] = -3.0 / epc.THZ_TO_MEV
    return replace(modes, frequencies_thz=f)


def test_unstable_mask_rules():
    q = np.array([[0.0, 0.0, 0.0], [0.25, 0.0, 0.0], [1.0, 0.0, 0.0]])
    w = np.array([[-1.5, -0.3, 0.0, 0.5, 40.0, 50.0],  # Gamma: 3 acoustic (soft), zero optical
                  [-1.5, -0.5, 10.0, 20.0, 40.0, 50.0],  # -1.5 meV beyond the 1 meV tolerance
                  [-5.0, 0.0, 0.0, 30.0, 40.0, 50.0]])  # Gamma image: broken sum rule
    modes = epc.PhononModes(qpoints=q, frequencies_thz=w / epc.THZ_TO_MEV,
                            eigenvectors=np.zeros((3, 6, 6), complex), masses=np.ones(2),
                            scaled_positions=np.zeros((2, 3)))
    expected = np.zeros((3, 6), bool)
    expected[0, 3] = expected[1, 0] = expected[2, 0] = True
    np.testing.assert_array_equal(modes.unstable, expected)
    np.testing.assert_array_equal(epc.unstable_branches(modes)[:, 0], True)
    assert epc.unstable_branches(modes)[:, 1:].sum() == 3  # mode 3 masked at every q


def test_coupling_masks_imaginary_modes_with_a_warning(si_setup):
    si, derivs, ph = si_setup
    qs = [[0.0, 0.0, 0.0], [0.25, 0.0, 0.25], [0.5, 0.0, 0.5]]
    modes = _with_imaginary(epc.phonon_modes(ph, qs, si))
    with pytest.warns(UserWarning, match=r"1 imaginary/unstable phonon modes at 1 of 3 "
                      r"q-points: q = #1 \[0\.25, 0\.0, 0\.25\] \(min -3\.00 meV\)"):
        res = epc.coupling(derivs, modes, [[0, 0, 0]], bands=[1, 2, 3], form="quasi-elastic")
    assert res.masked.sum() == 1 and res.masked[1, 0]
    assert np.isnan(res.g_avg[1, :, 0]).all() and np.isnan(res.g[1, :, 0]).all()
    assert np.isfinite(res.g_avg[:, :, 1:]).all() and np.isfinite(res.g_avg[[0, 2]]).all()
    with pytest.warns(UserWarning, match="whole branch"):
        branch = epc.coupling(derivs, modes, [[0, 0, 0]], bands=[1, 2, 3],
                              form="quasi-elastic", mask_unstable="branch")
    assert np.isnan(branch.g_avg[:, :, 0]).all() and np.isfinite(branch.g_avg[:, :, 1:]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = epc.coupling(derivs, modes, [[0, 0, 0]], bands=[1, 2, 3], form="quasi-elastic",
                            mask_unstable="none")
    assert kept.g_avg[1, :, 0].max() == 0.0  # imaginary = soft: g = 0, unmasked


def test_eliashberg_excludes_imaginary_modes(si_setup):
    si, derivs, ph = si_setup
    unstable = epc.phonopy_from_atoms(si, np.eye(3, dtype=int) * 2)
    unstable.force_constants = -ph.force_constants  # every non-acoustic mode imaginary
    with pytest.warns(UserWarning, match="imaginary/unstable phonon modes .* excluded"):
        res = epc.eliashberg(derivs, unstable, k_mesh=(2, 2, 2), q_mesh=(2, 2, 2),
                             sigma_el=0.3, fermi_level=-6.0, form="quasi-elastic")
    assert res.n_unstable > 0 and res.lam == 0.0 and np.isfinite(res.a2f).all()
    good = epc.eliashberg(derivs, ph, k_mesh=(2, 2, 2), q_mesh=(2, 2, 2), sigma_el=0.3,
                          fermi_level=-6.0, form="quasi-elastic")
    assert good.n_unstable == 0 and good.lam > 0
