"""Overlap S(R) and orbital-gradient blocks of a structure from numerical radial basis files.

``overlap(atoms, basis)`` returns an :class:`~interfaces.hsdata.HSData` holding S only, in
the internal orbital convention (shells sorted by l, m = -l..l Wikipedia harmonics), with
one block for every atom pair closer than the sum of the two atoms' largest orbital
cutoffs (both (i, j, R) and (j, i, -R), on-site blocks included). Writers export it to a
code's convention with :func:`interfaces.orbitals.from_internal` (pass
``hs.metadata["overlap"]["shell_orders"]`` for SIESTA's file shell order).

``overlap_gradient(atoms, basis)`` returns :class:`~interfaces.overlap_gradient.OverlapGradient`
with its one sign convention: ``D^a_{mu nu} = <d phi_mu / d tau_i^a | phi_nu>`` for block
(i, j, R), where only the centre tau_i of the bra orbital moves (``docs/epc.md`` section 2.4).
Off-site it equals ``-dS_ij(R)/dd`` with d = tau_j + R.A - tau_i; on-site it is the
antisymmetric block between shells l and l +- 1. Hence ``dS_e/dtau_i = D_e`` and
``dS_e/dtau_j = D_{rev(e)}^T`` for i != j.

Blocks are the pairs of the one neighbour-list builder,
:func:`interfaces.neighbours.radius_pairs`.

``nonlocal_pairs(atoms, basis)`` lists the atom pairs that H couples through a shared
non-local projector without overlapping (``docs/conventions.md`` 8.2); ``overlap(...,
include_nonlocal=True)`` adds them as zero-S blocks so that the block set is a SIESTA H's.
``embed_basis_files`` / ``bases_from_metadata`` carry basis files inside JSON metadata
(readers -> dataset -> model file) so that S of new structures can be recomputed.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import hashlib
import os
from collections.abc import Mapping

import numpy as np
from ase import Atoms

from interfaces.errors import FormatError, reading
from interfaces.hsdata import HSData
from interfaces.nao.basis_files import (
    RadialBasis,
    basis_file_name,
    read_basis,
    read_basis_text,
    read_text_digest,
    text_parser,
)
from interfaces.nao.twocenter import TwoCenterSettings, TwoCenterTables
from interfaces.neighbours import radius_pairs
from interfaces.overlap_gradient import OverlapGradient

__all__ = [
    "overlap", "overlap_gradient", "OverlapGradient", "load_bases", "overlap_edges",
    "nonlocal_pairs", "projector_radii", "embed_basis_files", "bases_from_metadata",
]

_CHUNK = 20000  # edges per vectorised batch (bounds temporary memory)


def load_bases(basis) -> dict[str, RadialBasis]:
    """Normalise ``basis`` to ``{element symbol: RadialBasis}``.

    Accepts a RadialBasis or a file path, a sequence of them, or a mapping from element
    symbol to RadialBasis or path.
    """
    if isinstance(basis, (RadialBasis, str, os.PathLike)):
        basis = [basis]
    if isinstance(basis, Mapping):
        items = [(str(k), v) for k, v in basis.items()]
    else:
        items = [(None, v) for v in basis]
    out = {}
    for key, value in items:
        b = value if isinstance(value, RadialBasis) else read_basis(value)
        out[key or b.symbol] = b
    return out


def embed_basis_files(paths: Mapping[str, str | os.PathLike]) -> dict:
    """Embed basis files in JSON metadata: ``{"kind": "nao", "files": {el: entry}}``.

    Each entry is ``{"name", "sha256", "content_gz_b64"}``: the base name, the sha256 of the
    uncompressed bytes and base64 of their gzip (about 60-120 kB per SIESTA file).
    :func:`bases_from_metadata` rebuilds the bases; the element of every file is checked.
    """
    files = {}
    for el, path in paths.items():
        text, digest = read_text_digest(path)
        text_parser(basis_file_name(path), path)  # only text formats can be embedded
        blob = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
        files[str(el)] = {"name": basis_file_name(path), "sha256": digest,
                          "content_gz_b64": base64.b64encode(blob).decode("ascii")}
    return {"kind": "nao", "files": files}


def bases_from_metadata(meta: Mapping) -> dict[str, RadialBasis]:
    """Rebuild ``{element: RadialBasis}`` from :func:`embed_basis_files` metadata.

    ``meta`` may be that dict, or a dict holding it under ``"overlap"`` or
    ``"overlap_source"`` (HSData or model metadata). Raises :class:`FormatError` when an
    entry has no content, its sha256 does not match, or the file is of another element.
    """
    for key in ("overlap_source", "overlap"):
        if key in meta and isinstance(meta[key], Mapping):
            meta = meta[key]
    files = meta.get("files")
    if not isinstance(files, Mapping) or not files:
        raise FormatError("metadata", "no embedded basis files (metadata 'files' is missing)")
    out = {}
    for el, entry in files.items():
        where = f"metadata files[{el!r}] ({entry.get('name', '?')})"
        with reading(where, "no readable embedded content"):  # zlib.error, EOFError, ...
            raw = gzip.decompress(base64.b64decode(entry["content_gz_b64"], validate=True))
            if hashlib.sha256(raw).hexdigest() != entry.get("sha256"):
                raise FormatError(where, "sha256 of the embedded content does not match")
            basis = read_basis_text(raw.decode("utf-8"), entry["name"])
        if basis.symbol != el:
            raise FormatError(where, f"the file is for element {basis.symbol}, not {el}")
        out[str(el)] = basis
    return out


def overlap_edges(atoms: Atoms, cutoffs: dict[str, float], r_cut: float | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Atom pairs (i, j, R) with |d| < rc_i + rc_j (or < ``r_cut``), on-site included.

    The pairs come from the one neighbour-list builder,
    :func:`interfaces.neighbours.radius_pairs`.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom).
    cutoffs : dict of str to float
        Orbital cutoff radius (Angstrom) of each element; unused with ``r_cut``.
    r_cut : float, optional
        Keep every pair with |d| < r_cut instead (:func:`interfaces.neighbours.neighbour_list`).

    Returns
    -------
    edge_index : ndarray, shape (2, E), int64
        (i, j) of each block, sorted by element pair, then i, j, R.
    cell_shift : ndarray, shape (E, 3), int64
        Lattice translation R of atom j.
    """
    if r_cut is not None:
        radii = np.full(len(atoms), 0.5 * r_cut)  # [n_atoms]
    else:
        radii = np.array([cutoffs[s] for s in atoms.get_chemical_symbols()], dtype=np.float64)
    return _sorted_edges(atoms, *radius_pairs(atoms, radii, self_interaction=True))


def _unique_edges(i, j, shift, n: int):
    """Distinct (i, j, R) triples (int64 key encoding; sorted by i, j, R)."""
    if len(i) == 0:
        return i.astype(np.int64), j.astype(np.int64), np.asarray(shift, np.int64).reshape(0, 3)
    lo = shift.min(axis=0)
    span = shift.max(axis=0) - lo + 1
    key = np.ravel_multi_index((i, j, *(shift - lo).T), (n, n, *span))  # [n_in]
    i, j, *r = np.unravel_index(np.unique(key), (n, n, *span))
    return i.astype(np.int64), j.astype(np.int64), np.stack(r, axis=1) + lo


def _sorted_edges(atoms: Atoms, i, j, shift):
    """Edges sorted by element pair, then i, j, R: (edge_index (2, E), cell_shift (E, 3))."""
    z = atoms.numbers.astype(np.int64)
    order = np.lexsort((shift[:, 2], shift[:, 1], shift[:, 0], j, i, z[j], z[i]))
    return np.stack([i[order], j[order]]).astype(np.int64), shift[order].astype(np.int64)


def projector_radii(basis, projector_cutoffs: Mapping[str, float] | None = None
                    ) -> dict[str, float]:
    """Largest non-local projector cutoff (Angstrom) per element.

    From ``projector_cutoffs`` where given, else from the basis files (SIESTA ``.ion.xml`` /
    ``.ion`` ``<projector>`` cutoffs). ABACUS ``.orb`` and OpenMX ``.pao`` files hold no
    projectors (they are in the pseudopotential files): pass ``projector_cutoffs`` for them.
    """
    bases = basis.basis if isinstance(basis, TwoCenterTables) else load_bases(basis)
    given = dict(projector_cutoffs or {})
    out = {}
    for el, b in bases.items():
        if el in given:
            out[el] = float(given[el])
        elif b.projector_cutoffs:
            out[el] = max(rc for _, rc in b.projector_cutoffs)
        else:
            raise ValueError(f"the basis file {b.filename!r} of {el} lists no non-local "
                             "projectors: pass projector_cutoffs={element: radius in Angstrom}")
    return out


def nonlocal_pairs(atoms: Atoms, basis, projector_cutoffs: Mapping[str, float] | None = None,
                   only_new: bool = True):
    """Atom pairs coupled by H through a shared non-local projector (``docs/conventions.md`` 8.2).

    Atoms i and i' (image R) are paired when some projector atom j (any image) satisfies
    ``|tau_i - tau_j| < r_proj(j) + r_orb(i)`` and ``|tau_i' + R.A - tau_j| < r_proj(j) +
    r_orb(i')``, where r_orb is the largest orbital cutoff and r_proj the largest projector
    cutoff of the element (:func:`projector_radii`).

    Parameters
    ----------
    atoms : ase.Atoms
        Structure.
    basis : as for :func:`overlap`
        Radial bases (with projector cutoffs, or pass ``projector_cutoffs``).
    projector_cutoffs : mapping of str to float, optional
        Projector radius (Angstrom) per element, overriding the files.
    only_new : bool
        Return only pairs that are not overlap pairs (``|d| >= rc_i + rc_i'``); else all.

    Returns
    -------
    edge_index : ndarray, shape (2, E), int64
        (i, i') of every pair; both directions are present.
    cell_shift : ndarray, shape (E, 3), int64
        Lattice translation R of i'.
    """
    bases = basis.basis if isinstance(basis, TwoCenterTables) else load_bases(basis)
    proj = projector_radii(bases, projector_cutoffs)
    symbols = atoms.get_chemical_symbols()
    r_orb = np.array([bases[el].cutoff for el in symbols])  # [n_atoms]
    r_proj = np.array([proj[el] for el in symbols])  # [n_atoms]
    n = len(atoms)
    # every atom sees its own projectors: on-site entries included
    i, j, shift = radius_pairs(atoms, r_orb, r_proj, self_interaction=True)
    order = np.argsort(j, kind="stable")
    i, j, shift = i[order], j[order], shift[order]
    counts = np.bincount(j, minlength=n)  # entries per projector atom
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    reps = counts[j]  # [n_entries]: partners of each entry
    p = np.repeat(np.arange(len(j)), reps)
    q = start[j[p]] + np.arange(len(p)) - np.repeat(np.cumsum(reps) - reps, reps)
    a, b, r = _unique_edges(i[p], i[q], shift[p] - shift[q], n)  # shared image: R = R_a - R_b
    if only_new:
        d = np.linalg.norm(atoms.positions[b] + r @ np.asarray(atoms.cell) - atoms.positions[a],
                           axis=1)
        keep = d >= r_orb[a] + r_orb[b]
        a, b, r = a[keep], b[keep], r[keep]
    return np.stack([a, b]).astype(np.int64), r.astype(np.int64)


def _engine(basis, settings) -> TwoCenterTables:
    if isinstance(basis, TwoCenterTables):
        return basis
    return TwoCenterTables(load_bases(basis), settings)


def _metadata(tables: TwoCenterTables) -> dict:
    files = {el: {"file": b.filename, "sha256": b.sha256, "format": b.source}
             for el, b in tables.basis.items()}
    return {"overlap": {
        "method": "two-centre numerical atomic orbitals (interfaces.nao.twocenter)",
        "basis_files": files,
        "shell_orders": {el: list(b.shell_order) for el, b in tables.basis.items()},
        "settings": dataclasses.asdict(tables.settings),
    }}


def _compute(atoms: Atoms, tables: TwoCenterTables, r_cut, gradient: bool, nonlocal_=None):
    symbols = atoms.get_chemical_symbols()
    missing = sorted(set(symbols) - set(tables.basis))
    if missing:
        raise ValueError(f"no radial basis for elements {missing}")
    cutoffs = {el: b.cutoff for el, b in tables.basis.items()}
    edge_index, shift = overlap_edges(atoms, cutoffs, r_cut)
    if nonlocal_ is not None:  # add projector pairs not yet present (S = 0 there)
        nl_index, nl_shift = nonlocal_pairs(atoms, tables, nonlocal_, only_new=False)
        edge_index, shift = _sorted_edges(atoms, *_unique_edges(
            np.concatenate([edge_index[0], nl_index[0]]),
            np.concatenate([edge_index[1], nl_index[1]]),
            np.concatenate([shift, nl_shift]), len(atoms)))
    used = sorted(set(symbols))
    hs = HSData(atoms.copy(), {el: tables.basis[el].shells for el in used}, edge_index, shift,
                source_code="nao", metadata=_metadata(tables))
    s = np.zeros(hs.n_values)
    ds = np.zeros((3, hs.n_values)) if gradient else None
    vec = hs.edge_vectors()
    sym = np.array(symbols)
    dist = np.linalg.norm(vec, axis=1)  # [n_edges]
    for group in hs.shape_groups():  # contiguous: edges are sorted by element pair
        el_a, el_b = sym[hs.edge_index[:, group[0]]]
        group = group[dist[group] < cutoffs[el_a] + cutoffs[el_b]]  # S = 0 beyond
        for lo in range(0, len(group), _CHUNK):
            g = group[lo:lo + _CHUNK]
            span = hs.block_index(g).ravel()
            out = tables.blocks(el_a, el_b, vec[g], gradient=gradient)
            if gradient:
                s[span] = out[0].ravel()
                ds[:, span] = -out[1].reshape(3, -1)
            else:
                s[span] = out.ravel()
    return hs.replace(s=s), ds


def overlap(atoms: Atoms, basis, r_cut: float | None = None,
            settings: TwoCenterSettings | None = None, include_nonlocal: bool = False,
            projector_cutoffs: Mapping[str, float] | None = None) -> HSData:
    """Overlap S(R) of ``atoms`` from numerical radial basis files.

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom); periodic directions follow ``atoms.pbc``.
    basis : RadialBasis, path, sequence or mapping of them, or TwoCenterTables
        Radial basis per element (see :func:`load_bases`); pass a prebuilt
        :class:`~interfaces.nao.twocenter.TwoCenterTables` to reuse its tables.
    r_cut : float, optional
        Keep every pair with |d| < r_cut (Angstrom) instead of |d| < rc_i + rc_j (S is zero
        beyond the cutoff sum; use this to add e.g. non-local projector pairs).
    settings : TwoCenterSettings, optional
        Numerical parameters of the tables.
    include_nonlocal : bool
        Also add the H-only blocks of atom pairs sharing a non-local projector
        (:func:`nonlocal_pairs`), with zero S, so that a graph built from this HSData
        covers every block of a SIESTA/ABACUS H.
    projector_cutoffs : mapping of str to float, optional
        Projector radii (Angstrom) per element where the basis files have none (ABACUS).

    Returns
    -------
    HSData
        S only (``h`` is None), internal orbital convention, basis hashes in
        ``metadata["overlap"]``.
    """
    nl = (projector_cutoffs or {}) if include_nonlocal else None
    hs, _ = _compute(atoms, _engine(basis, settings), r_cut, gradient=False, nonlocal_=nl)
    return hs


def overlap_gradient(atoms: Atoms, basis, r_cut: float | None = None,
                     settings: TwoCenterSettings | None = None) -> OverlapGradient:
    """Overlap S(R) and its orbital-gradient blocks D from numerical radial basis files.

    Parameters
    ----------
    atoms, basis, r_cut, settings
        As for :func:`overlap`.

    Returns
    -------
    OverlapGradient
        ``overlap`` as :func:`overlap` returns it and ``values`` (3, n_values) in
        1/Angstrom: ``<d phi_{i mu} / d tau_i^a, 0 | phi_{j nu}, R>`` (bra centre moved;
        :mod:`interfaces.overlap_gradient`), on-site blocks included.
    """
    hs, ds = _compute(atoms, _engine(basis, settings), r_cut, gradient=True)
    return OverlapGradient(overlap=hs, values=ds)  # ds: [3, n_values]
