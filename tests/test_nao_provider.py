"""Non-local projector pairs, basis files embedded by the readers, and the NAO S provider."""

from __future__ import annotations

import gzip
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from interfaces import abacus, siesta
from interfaces.errors import FormatError
from interfaces.nao.basis_files import read_basis
from interfaces.nao.overlap import bases_from_metadata, nonlocal_pairs, overlap, projector_radii

DATA = Path(__file__).parent / "data"
NAO = DATA / "nao"
SI_RUN = DATA / "siesta" / "si_pdos_k"
SI_ION = NAO / "siesta_si_pdos_k" / "Si.ion.xml.gz"
SI_ION_TXT = NAO / "siesta_si_pdos_k" / "Si.ion.gz"
H2O_IONS = {el: NAO / "siesta_h2o_gamma" / f"{el}.ion.xml.gz" for el in ("H", "O")}
SI_ORB = NAO / "abacus_si2_dzp_oldcsr" / "Si_gga_8au_60Ry_2s2p1d.orb.gz"
AB_RUN = DATA / "abacus" / "si2_dzp_oldcsr"


def _keys(edge_index: np.ndarray, shift: np.ndarray) -> set:
    return {(int(i), int(j), *map(int, r)) for i, j, r in zip(*edge_index, shift, strict=True)}


def _sha(path: Path) -> str:
    with gzip.open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


@pytest.fixture(scope="module")
def si_ref():
    return siesta.read(SI_RUN / "Si_pdos.HSX.gz")


@pytest.fixture
def si_run_with_ion(tmp_path) -> Path:
    """The SIESTA Si run with its basis file ``Si.ion.xml`` next to it (as SIESTA leaves it)."""
    run = tmp_path / "si_run"
    shutil.copytree(SI_RUN, run)
    with gzip.open(SI_ION, "rb") as src, open(run / "Si.ion.xml", "wb") as dst:
        dst.write(src.read())
    return run


# ------------------------------------------------------------------- non-local pairs
def test_overlap_plus_nonlocal_pairs_is_the_siesta_h_pattern(si_ref):
    """SIESTA stores H on overlap + KB-projector pairs: the union must be exactly its blocks."""
    s_only = overlap(si_ref.atoms, SI_ION)
    full = overlap(si_ref.atoms, SI_ION, include_nonlocal=True)
    ref_keys = _keys(si_ref.edge_index, si_ref.cell_shift)
    assert _keys(full.edge_index, full.cell_shift) == ref_keys
    assert _keys(s_only.edge_index, s_only.cell_shift) < ref_keys  # S alone misses H blocks
    new = nonlocal_pairs(si_ref.atoms, SI_ION)
    assert len(new[1]) == full.n_edges - s_only.n_edges > 0
    # S is unchanged on overlap pairs and exactly zero on the added H-only pairs
    idx = full.find_edges(s_only.edge_index[0], s_only.edge_index[1], s_only.cell_shift)
    assert np.array_equal(full.s[full.block_index(idx)],
                          s_only.s[s_only.block_index(np.arange(s_only.n_edges))])
    added = full.find_edges(new[0][0], new[0][1], new[1])
    assert np.all(full.s[full.block_index(added)] == 0)
    assert np.abs(full.s).sum() == pytest.approx(np.abs(s_only.s).sum(), rel=1e-14)


def _brute_force_pairs(atoms: Atoms, r_orb: np.ndarray, r_proj: np.ndarray, n_img: int):
    """All (a, b, R) sharing a projector atom j (any image), by explicit image enumeration."""
    grid = np.arange(-n_img, n_img + 1)
    pbc = atoms.pbc.astype(int)
    imgs = np.stack(np.meshgrid(*[grid * p for p in pbc], indexing="ij"), -1).reshape(-1, 3)
    imgs = np.unique(imgs, axis=0)  # [n_img, 3]
    pos, cell = atoms.positions, np.asarray(atoms.cell)
    # near[a, j, J]: projector j in image J reaches orbitals of atom a (cell 0)
    d = np.linalg.norm(pos[None, :, None] + (imgs @ cell)[None, None] - pos[:, None, None],
                       axis=-1)  # [a, j, J]
    near = d < (r_orb[:, None, None] + r_proj[None, :, None])
    out = set()
    for a in range(len(atoms)):
        for j, jimg in zip(*np.nonzero(near[a]), strict=True):
            for b, bimg in zip(*np.nonzero(near[:, j, :]), strict=True):
                # b in cell R sees j in image J_a when J_a - R = J_b
                out.add((a, int(b), *map(int, imgs[jimg] - imgs[bimg])))
    return out


@pytest.mark.parametrize("pbc", [(True, True, True), (True, False, False), (False,) * 3])
def test_nonlocal_pairs_match_brute_force(pbc):
    rng = np.random.default_rng(7)
    atoms = Atoms("OH2OH2", positions=rng.uniform(0, 6.0, (6, 3)),
                  cell=[[6.0, 0.3, 0.0], [0.0, 6.5, 0.4], [0.2, 0.0, 7.0]], pbc=pbc)
    bases = {el: read_basis(p) for el, p in H2O_IONS.items()}
    proj = projector_radii(bases)
    assert proj["O"] == max(rc for _, rc in bases["O"].projector_cutoffs)
    sym = atoms.get_chemical_symbols()
    r_orb = np.array([bases[el].cutoff for el in sym])
    r_proj = np.array([proj[el] for el in sym])
    edge_index, shift = nonlocal_pairs(atoms, bases, only_new=False)
    brute = _brute_force_pairs(atoms, r_orb, r_proj, n_img=4)
    assert _keys(edge_index, shift) == brute
    new_index, new_shift = nonlocal_pairs(atoms, bases)
    d = np.linalg.norm(atoms.positions[new_index[1]] + new_shift @ atoms.cell
                       - atoms.positions[new_index[0]], axis=1)
    assert np.all(d >= r_orb[new_index[0]] + r_orb[new_index[1]])
    assert _keys(new_index, new_shift) <= brute
    # both directions are present
    assert _keys(new_index[::-1], -new_shift) == _keys(new_index, new_shift)


def test_abacus_orb_has_no_projectors():
    """ABACUS keeps projectors in the UPF file: the caller must give their radii."""
    atoms = abacus.read(AB_RUN).atoms
    with pytest.raises(ValueError, match="projector_cutoffs"):
        nonlocal_pairs(atoms, SI_ORB)
    edge_index, _ = nonlocal_pairs(atoms, SI_ORB, projector_cutoffs={"Si": 1.0})
    assert edge_index.shape[1] > 0


# ------------------------------------------------------------------- embedded basis files
def test_siesta_reader_embeds_basis_files(si_run_with_ion, si_ref):
    hs = siesta.read(si_run_with_ion)
    entry = hs.metadata["overlap"]["files"]["Si"]
    assert hs.metadata["overlap"]["kind"] == "nao"
    assert entry["name"] == "Si.ion.xml" and entry["sha256"] == _sha(SI_ION)
    assert "overlap" not in si_ref.metadata  # no basis file next to the run: nothing embedded
    bases = bases_from_metadata(hs.metadata)
    assert bases["Si"].shells == hs.basis["Si"], "NAO shells differ from the SIESTA reader's"
    s_meta = overlap(hs.atoms, bases)
    s_file = overlap(hs.atoms, SI_ION)
    assert np.array_equal(s_meta.edge_index, s_file.edge_index)
    assert np.array_equal(s_meta.s, s_file.s)


def test_abacus_reader_embeds_orb_files():
    hs = abacus.read(AB_RUN)
    entry = hs.metadata["overlap"]["files"]["Si"]
    assert entry["name"] == "Si_gga_8au_60Ry_2s2p1d.orb" and entry["sha256"] == _sha(SI_ORB)
    bases = bases_from_metadata(hs.metadata["overlap"])
    assert bases["Si"].shells == hs.basis["Si"]
    assert np.array_equal(overlap(hs.atoms, bases).s, overlap(hs.atoms, SI_ORB).s)


@pytest.mark.parametrize("field, value, match", [
    ("sha256", "0" * 64, "sha256"),
    ("content_gz_b64", "not base64!", "content"),
    ("name", "Si.orb", "not an ABACUS|missing"),
])
def test_bad_embedded_basis_raises(si_run_with_ion, field, value, match):
    meta = siesta.read(si_run_with_ion).metadata["overlap"]
    bad = {"kind": "nao", "files": {"Si": {**meta["files"]["Si"], field: value}}}
    with pytest.raises(FormatError, match=match):
        bases_from_metadata(bad)
    other = {"kind": "nao", "files": {"Ge": meta["files"]["Si"]}}
    with pytest.raises(FormatError, match="element Si"):
        bases_from_metadata(other)


# ------------------------------------------------------------------- provider
torch = pytest.importorskip("torch")


def _tiny_net(basis: dict, r_cut: float = 7.5):
    from ase_deeph.model.config import ModelConfig
    from ase_deeph.model.network import HamiltonianNet

    torch.manual_seed(0)
    cfg = ModelConfig(r_cut=r_cut, l_max=2, channels=2, pseudo_channels=1, n_layers=1,
                      n_radial=4, radial_hidden=8, n_species_embed=4)
    return HamiltonianNet(cfg, basis, "none")


def _new_structure(atoms: Atoms) -> Atoms:
    new = atoms.repeat((2, 1, 1))
    new.positions += np.random.default_rng(3).normal(0, 0.05, new.positions.shape)
    return new


def _assert_same_s(pred, ref) -> None:
    """Every block of ``ref`` is in ``pred`` with the same S; other blocks of pred are zero."""
    idx = pred.find_edges(ref.edge_index[0], ref.edge_index[1], ref.cell_shift)
    assert np.all(idx >= 0), "graph misses overlap blocks"
    for g in ref.shape_groups():
        np.testing.assert_array_equal(pred.s[pred.block_index(idx[g])], ref.s[ref.block_index(g)])
    assert np.abs(pred.s).sum() == pytest.approx(np.abs(ref.s).sum(), rel=1e-12)


@pytest.fixture
def si_embedded(si_run_with_ion, tmp_path):
    """The SIESTA run with embedded basis and the model metadata train.py derives from it."""
    from ase_deeph.training.runs import electrons_and_overlap

    hs = siesta.read(si_run_with_ion)
    hs.save(tmp_path / "data.h5", "si")
    meta = electrons_and_overlap(tmp_path / "data.h5", ["si"])
    assert meta["overlap_source"]["kind"] == "nao"
    assert meta["valence_electrons"] == {"Si": pytest.approx(4.0)}  # SIESTA Si: 4 valence e
    return hs, meta


def test_provider_s_from_embedded_basis(si_embedded):
    from ase_deeph.inference.provider import ModelProvider

    hs, meta = si_embedded
    provider = ModelProvider(_tiny_net(hs.basis), meta, device="cpu")
    atoms = _new_structure(hs.atoms)
    pred = provider(atoms)
    assert np.all(np.isfinite(pred.h))
    _assert_same_s(pred, overlap(atoms, SI_ION))


def test_provider_explicit_basis_files(si_embedded):
    from ase_deeph.inference.provider import ModelProvider

    hs, meta = si_embedded
    atoms = _new_structure(hs.atoms)
    pred = ModelProvider(_tiny_net(hs.basis), {}, "cpu", overlap={"Si": SI_ION})(atoms)
    _assert_same_s(pred, overlap(atoms, SI_ION))
    # the same basis in the .ion text format is another file: refused against the record
    with pytest.raises(ValueError, match="sha256"):
        ModelProvider(_tiny_net(hs.basis), meta, "cpu", overlap={"Si": SI_ION_TXT})(atoms)
    with pytest.raises(ValueError, match="shells"):
        ModelProvider(_tiny_net({"Si": (0, 1)}), meta, "cpu")(atoms)
    with pytest.warns(RuntimeWarning, match="dropped"):
        ModelProvider(_tiny_net(hs.basis, r_cut=5.0), meta, "cpu")(atoms)
    # hashes only (the metadata of interfaces.nao.overlap.overlap): files must be given
    hashes = {"overlap_source": {"kind": "nao", **overlap(hs.atoms, SI_ION).metadata["overlap"]}}
    with pytest.raises(ValueError, match="overlap=\\{element"):
        ModelProvider(_tiny_net(hs.basis), hashes, "cpu")(atoms)
    with pytest.raises(ValueError, match="sha256"):
        ModelProvider(_tiny_net(hs.basis), hashes, "cpu", overlap={"Si": SI_ION_TXT})(atoms)
    pred = ModelProvider(_tiny_net(hs.basis), hashes, "cpu", overlap={"Si": SI_ION})(atoms)
    _assert_same_s(pred, overlap(atoms, SI_ION))


def test_calculator_with_basis_files(si_embedded, tmp_path):
    from ase_deeph.calculator import DeepHCalculator
    from ase_deeph.model.checkpoint import save_model

    hs, meta = si_embedded
    path = save_model(_tiny_net(hs.basis), tmp_path / "si.safetensors", extra=meta)
    atoms = _new_structure(hs.atoms)
    ref = overlap(atoms, SI_ION)
    eigs = []
    for kw in ({"overlap": {"Si": SI_ION}}, {}):  # explicit files, and the embedded ones
        calc = DeepHCalculator(model=str(path), device="cpu", kpts=(1, 2, 2), **kw)
        _assert_same_s(calc.provider(atoms), ref)
        atoms.calc = calc
        eigs.append(calc.get_eigenvalues(kpt=0))
    assert calc.provider(atoms).n_electrons == pytest.approx(2 * hs.n_electrons)
    assert np.all(np.isfinite(eigs[0])) and len(eigs[0]) == hs.n_orbitals * 2
    np.testing.assert_allclose(eigs[0], eigs[1], atol=1e-8)
