"""The self-describing format registry (issue 16): entries, detection, CLI choices, round trips."""

from __future__ import annotations

import argparse
import dataclasses
import importlib

import numpy as np
import pytest

import interfaces
from ase_deeph.cli import app
from interfaces import FormatError
from interfaces.errors import ConfigError
from interfaces.registry import FORMATS, Format, codes, lookup, register

#: a VASP run folder: a POSCAR (and an unrelated info.json) but no DeepH file
VASP_FILES = ("POSCAR", "INCAR", "KPOINTS", "POTCAR", "OUTCAR", "CONTCAR", "vasprun.xml",
              "info.json")


@pytest.fixture(scope="module")
def si(data_dir) -> interfaces.HSData:
    return interfaces.read(data_dir / "siesta" / "si_pdos_k")


@pytest.fixture
def restore_registry():
    saved = dict(FORMATS)
    yield
    FORMATS.clear()
    FORMATS.update(saved)


def _vasp_folder(path):
    path.mkdir(parents=True, exist_ok=True)
    for name in VASP_FILES:
        (path / name).write_text("{}\n" if name == "info.json" else "vasp\n")
    return path


# ------------------------------------------------------------------------- the entries
def test_interfaces_exposes_the_registry():
    assert interfaces.FORMATS is FORMATS
    assert list(FORMATS) == ["siesta", "abacus", "openmx", "deeptb", "deeph-legacy", "deeph",
                             "hsdata"]
    assert interfaces.detect is importlib.import_module("interfaces.registry").detect


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_describes_itself(name):
    fmt = FORMATS[name]
    assert isinstance(fmt, Format) and fmt.name == name
    assert fmt.description.strip() and "\n" not in fmt.description
    assert fmt.patterns or fmt.sniff is not None
    module = fmt.load()
    assert module is importlib.import_module(fmt.module)
    assert callable(module.read)
    if fmt.can_write:
        assert callable(module.write)


def test_formats_are_frozen_and_kwargs_read_only():
    fmt = lookup("deeph-legacy")
    assert dict(fmt.kwargs) == {"layout": "legacy"} and dict(lookup("deeph").kwargs) == {}
    with pytest.raises(dataclasses.FrozenInstanceError):
        fmt.can_write = False
    with pytest.raises(TypeError):
        fmt.kwargs["layout"] = "new"
    assert hash(fmt) == hash(lookup("deeph-legacy"))
    with pytest.raises(ValueError, match="patterns or a sniff"):
        Format("x", "interfaces.h5format", "nothing to recognise it by")
    with pytest.raises(ValueError, match="description"):
        Format("x", "interfaces.h5format", "  ", patterns=("*.x",))


def test_unknown_code_is_a_config_error_naming_the_known_ones(tmp_path, si):
    with pytest.raises(ConfigError, match="known: .*deeptb"):
        lookup("vasp")
    with pytest.raises(ValueError, match="unknown code 'vasp'"):
        interfaces.write(si, tmp_path / "x", "vasp")
    with pytest.raises(ValueError, match="unknown code 'vasp'"):
        interfaces.read(tmp_path, "vasp")


def test_register_orders_detection_and_refuses_duplicates(tmp_path, si, restore_registry):
    toy = Format("toy", "interfaces.h5format", "an HDF5 file with another extension",
                 patterns=("*.toy",), can_write=False, in_folder=False)
    register(toy, before="hsdata")
    assert codes()[-2:] == ["toy", "hsdata"] and "toy" not in codes(writable=True)
    path = tmp_path / "x.toy"
    interfaces.save(si, path)
    assert interfaces.detect(path) == "toy"
    assert interfaces.read(path).n_orbitals == si.n_orbitals
    with pytest.raises(ConfigError, match="cannot be written"):
        interfaces.write(si, tmp_path / "y.toy", "toy")
    with pytest.raises(ValueError, match="already registered"):
        register(toy)
    with pytest.raises(ValueError, match="unknown format"):
        register(dataclasses.replace(toy, name="toy2"), before="nope")
    register(dataclasses.replace(toy, description="replaced"), replace=True)
    assert lookup("toy").description == "replaced" and codes()[-2:] == ["toy", "hsdata"]


# ------------------------------------------------------------------------ the command line
def _subparser(verb: str) -> argparse.ArgumentParser:
    sub = next(a for a in app._parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[verb]


def _choices(verb: str, dest: str) -> list[str]:
    action = next(a for a in _subparser(verb)._actions if a.dest == dest)
    return list(action.choices)


def test_cli_choices_are_the_registry_names():
    assert _choices("convert", "from_code") == codes() == list(FORMATS)
    writable = [n for n, f in FORMATS.items() if f.can_write]
    assert _choices("convert", "to_code") == writable == codes(writable=True)
    assert _choices("predict", "to_code") == writable
    assert "deeptb" in writable
    helptext = _subparser("convert").format_help()
    for fmt in FORMATS.values():
        assert fmt.name in helptext and fmt.description in helptext


def test_cli_rejects_an_unregistered_code(capsys):
    with pytest.raises(SystemExit) as exc:
        app.main(["convert", "a", "b", "--to", "vasp"])
    assert exc.value.code == 2 and "invalid choice: 'vasp'" in capsys.readouterr().err


def test_cli_help_built_from_registry_with_a_new_format(restore_registry):
    register(Format("toy", "interfaces.h5format", "a toy read-only format", patterns=("*.t",),
                    can_write=False))
    assert "toy" in _choices("convert", "from_code")
    assert "toy" not in _choices("convert", "to_code") + _choices("predict", "to_code")
    assert "a toy read-only format [read only]" in _subparser("convert").format_help()


# ----------------------------------------------------------------------- DeepH detection
def test_vasp_folder_is_not_deeph(tmp_path):
    folder = _vasp_folder(tmp_path / "vasp")
    assert not lookup("deeph").claims(folder)
    with pytest.raises(FormatError, match="could not recognise"):
        interfaces.detect(folder)
    with pytest.raises(FormatError, match="could not recognise"):
        interfaces.read(folder)


def test_written_deeph_folders_are_detected(tmp_path, si):
    for code in ("deeph", "deeph-legacy"):
        folder = interfaces.write(si, tmp_path / code, code)
        assert interfaces.detect(folder) == code
        _vasp_folder(folder / "vasp_inputs")  # a sub-folder does not change the run
        assert interfaces.detect(folder) == code
    new = tmp_path / "deeph"
    assert not lookup("deeph").claims(new / "POSCAR")  # a lone file is no DeepH run
    for name in ("hamiltonian.h5", "overlap.h5"):  # S alone (or H alone) still says DeepH
        moved = (new / name).rename(tmp_path / name)
        assert interfaces.detect(new) == "deeph"
        moved.rename(new / name)
    for name in ("hamiltonian.h5", "overlap.h5"):
        (new / name).unlink()
    with pytest.raises(FormatError, match="could not recognise"):
        interfaces.detect(new)  # POSCAR + info.json alone: a VASP-like folder


def test_deeph_sniff_knows_the_reader_file_names():
    from interfaces import deeph, registry

    written = {n for names in deeph.NEW_FILES.values() for n in names}
    assert written == set(registry.DEEPH_NEW_MATRICES)


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("code", codes(writable=True))
def test_every_writable_format_reads_back(tmp_path, si, code):
    written = interfaces.write(si, tmp_path / ("out.h5" if code == "hsdata" else "out"), code)
    assert written.exists()
    assert interfaces.detect(written) == code
    back = interfaces.read(written)
    assert back.n_atoms == si.n_atoms and back.n_orbitals == si.n_orbitals
    np.testing.assert_array_equal(back.atoms.numbers, si.atoms.numbers)
    np.testing.assert_allclose(np.asarray(back.atoms.cell), np.asarray(si.atoms.cell),
                               atol=1e-6)
    np.testing.assert_allclose(back.block(0, 0, which="s"), si.block(0, 0, which="s"),
                               atol=1e-6)
    np.testing.assert_allclose(back.block(0, 0), si.block(0, 0), atol=1e-5)
