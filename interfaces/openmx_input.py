"""OpenMX input text: the species of the input embedded in a ``.scfout``, and ``.dat`` inputs.

Basis strings such as ``Fe6.0S-s2p2d1`` give the shells of a species; the element of a
species is read from its pseudopotential name (third column, e.g. ``Fe_PBE19S``), falling
back to the species name. :mod:`interfaces.openmx` reads and writes the binary records.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from interfaces.atomic import write_bytes
from interfaces.errors import FormatError

__all__ = ["shells_of", "basis_string", "parse_species", "species_defs", "input_lines",
           "write_input"]

_LETTERS = "spdfgh"
_NOBLE = (0, 2, 10, 18, 36, 54, 86, 118)


# ----------------------------------------------------------------------------- reading
def _block(lines: list[str], name: str) -> list[list[str]]:
    start, out = None, []
    for k, line in enumerate(lines):
        tok = line.split()
        if not tok:
            continue
        if start is None and tok[0].lower() == "<" + name.lower():
            start = k
        elif start is not None and tok[0].lower() == name.lower() + ">":
            return out
        elif start is not None:
            out.append(tok)
    raise FormatError("input", f"the embedded input has no complete <{name} block")


def shells_of(basis: str) -> list[int]:
    """Shells in file order of an OpenMX basis string: ``"C6.0-s2p2d1"`` -> [0, 0, 1, 1, 2]."""
    spec = basis.rsplit("-", 1)[-1]
    pairs = re.findall(r"([spdfgh])(\d+)", spec)
    if not pairs or "".join(a + b for a, b in pairs) != spec:
        raise ValueError(f"cannot parse the OpenMX basis string {basis!r}")
    return [_LETTERS.index(a) for a, b in pairs for _ in range(int(b))]


def _element(species: str, vps: str) -> str:
    for name in (vps, species):
        m = re.match(r"([A-Z][a-z]?)", name)
        if m and m.group(1) in atomic_numbers and m.group(1) != "X":
            return m.group(1)
        if m and m.group(1)[:1] in atomic_numbers:
            return m.group(1)[:1]
    raise ValueError(f"cannot tell the element of species {species!r} ({vps!r})")


def parse_species(lines: list[str], path, atomnum: int) -> tuple[dict, list[str]]:
    """Species of the input text embedded in a ``.scfout``.

    Parameters
    ----------
    lines : list of str
        The embedded input, one line each.
    path : path-like
        The file, named in errors.
    atomnum : int
        Atoms announced by the header.

    Returns
    -------
    info : dict
        ``{species: (element, shells in file order, basis string, VPS name)}``.
    atom_species : list of str
        The species of each atom.

    Raises
    ------
    FormatError
        If the species or coordinate blocks are missing, incomplete or inconsistent.
    """
    try:
        spec = {t[0]: (t[1], t[2] if len(t) > 2 else t[0]) for t in
                _block(lines, "Definition.of.Atomic.Species")}
        coords = _block(lines, "Atoms.SpeciesAndCoordinates")
        atom_species = [t[1] for t in coords]
        if len(atom_species) != atomnum:
            raise ValueError(f"the input lists {len(atom_species)} atoms, the header {atomnum}")
        info = {name: (_element(name, vps), shells_of(basis), basis, vps)
                for name, (basis, vps) in spec.items()}
        missing = set(atom_species) - set(info)
        if missing:
            raise ValueError(f"atoms use undefined species {sorted(missing)}")
    except (ValueError, IndexError, FormatError) as exc:
        raise FormatError(path, f"embedded input: {getattr(exc, 'reason', exc)}") from exc
    return info, atom_species


# ----------------------------------------------------------------------------- writing
def basis_string(el: str, shells, cutoff: float = 7.0) -> str:
    """OpenMX basis string: ``basis_string("C", (0, 0, 1, 1, 2))`` -> ``"C7.0-s2p2d1"``."""
    counts = Counter(int(lv) for lv in shells)
    if max(counts, default=0) > 3:
        raise ValueError("OpenMX bases are tabulated for l <= 3")
    return f"{el}{cutoff:.1f}-" + "".join(f"{_LETTERS[lv]}{counts[lv]}" for lv in sorted(counts))


def species_defs(hs_basis: dict, meta: dict) -> dict[str, tuple[str, str]]:
    """Species definitions ``{element: (basis string, VPS name)}`` for writing HSData.

    Parameters
    ----------
    hs_basis : dict
        ``HSData.basis``, ``{element: shells}``.
    meta : dict
        ``{element: [basis string, VPS name]}`` as read (``metadata["openmx_species"]``);
        kept where it matches the shells, else a default basis string and ``El_PBE19``.

    Returns
    -------
    dict
    """
    defs = {}
    for el, shells in hs_basis.items():
        basis_str, vps = (meta.get(el) or [None, None])[:2]
        try:
            ok = basis_str is not None and sorted(shells_of(basis_str)) == sorted(shells)
        except ValueError:
            ok = False
        defs[el] = (basis_str, vps) if ok else (basis_string(el, shells), f"{el}_PBE19")
    return defs


def _default_valence(el: str) -> float:
    z = atomic_numbers[el]
    return float(z - max(n for n in _NOBLE if n < z))


def input_lines(atoms: Atoms, defs: dict, spin: str, valence: dict | None) -> list[str]:
    """Lines of an OpenMX input (species, coordinates and cell in Angstrom, ``HS.fileout on``).

    Parameters
    ----------
    atoms : ase.Atoms
        Structure.
    defs : dict
        ``{element: (basis string, VPS name)}``.
    spin : {"none", "collinear", "spinor"}
        Selects ``scf.SpinPolarization`` / ``scf.SpinOrbit.Coupling``.
    valence : dict or None
        Valence electrons per element (default: beyond the previous noble gas).

    Returns
    -------
    list of str
    """
    valence = valence or {}
    pol = {"none": "off", "collinear": "on", "spinor": "nc"}[spin]
    lines = ["System.Name  ase_deeph", "DATA.PATH  ../DFT_DATA19",
             f"Species.Number  {len(defs)}", "<Definition.of.Atomic.Species"]
    lines += [f" {el:4s} {b:18s} {v}" for el, (b, v) in defs.items()]
    lines += ["Definition.of.Atomic.Species>", f"Atoms.Number  {len(atoms)}",
              "Atoms.SpeciesAndCoordinates.Unit  Ang", "<Atoms.SpeciesAndCoordinates"]
    for k, (sym, pos) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)):
        half = 0.5 * float(valence.get(sym, _default_valence(sym)))
        lines.append(f" {k + 1:5d} {sym:4s} {pos[0]:20.14f} {pos[1]:20.14f} {pos[2]:20.14f}"
                     f" {half:8.4f} {half:8.4f}")
    lines += ["Atoms.SpeciesAndCoordinates>", "Atoms.UnitVectors.Unit  Ang", "<Atoms.UnitVectors"]
    lines += [f" {a[0]:20.14f} {a[1]:20.14f} {a[2]:20.14f}" for a in np.asarray(atoms.cell)]
    lines += ["Atoms.UnitVectors>", f"scf.SpinPolarization  {pol}",
              f"scf.SpinOrbit.Coupling  {'on' if spin == 'spinor' else 'off'}",
              "scf.EigenvalueSolver  band", "HS.fileout  on"]
    return lines


def write_input(atoms: Atoms, species_basis: dict, path: str | os.PathLike, *,
                spin: str = "none", valence: dict | None = None,
                extra: list[str] | None = None) -> None:
    """Write an OpenMX ``.dat`` input (``HS.fileout on``, coordinates in Angstrom).

    Parameters
    ----------
    atoms : ase.Atoms
        Structure (Angstrom).
    species_basis : dict
        Per element either an OpenMX basis string (``"C6.0-s2p2d1"``), a tuple of shell
        angular momenta (cutoff 7.0 Bohr is used), or a pair (basis string, VPS name).
    path : path-like
        Output file (written atomically).
    spin : {"none", "collinear", "spinor"}
        Selects ``scf.SpinPolarization`` / ``scf.SpinOrbit.Coupling``.
    valence : dict, optional
        Valence electrons of each pseudopotential (initial occupations are half of it per
        spin). Default: electrons beyond the previous noble gas, which is wrong for
        semicore pseudopotentials; pass it explicitly for those.
    extra : list of str, optional
        More input lines (k-grid, cutoff energy...).
    """
    defs = {}
    for el, spec in species_basis.items():
        if isinstance(spec, str):
            defs[el] = (spec, f"{el}_PBE19")
        elif len(spec) == 2 and isinstance(spec[0], str):
            defs[el] = (spec[0], spec[1])
        else:
            defs[el] = (basis_string(el, spec), f"{el}_PBE19")
    lines = input_lines(atoms, defs, spin, valence) + list(extra or [])
    write_bytes(Path(path), ("\n".join(lines) + "\n").encode())
