"""Parsing and writing of ABACUS CSR matrix text (old <= 3.9 and new >= 3.10 layouts).

Everything here works on plain text and numpy arrays in ABACUS units (Ry) and in ABACUS
orbital order; :mod:`interfaces.abacus.reader` converts to :class:`HSData`. Layouts follow
``docs/formats.md`` sections 3.2-3.4. Every parse error raises
:class:`interfaces.errors.FormatError` naming the file.

CSR files are parsed without a Python loop per matrix element: the numeric body of a file
is converted by one ``np.fromstring`` call, then walked once per R block.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from interfaces.abacus.text import element_of
from interfaces.errors import FormatError

__all__ = ["CsrMatrix", "parse_csr", "format_csr", "numbers"]


@dataclass(frozen=True)
class CsrMatrix:
    """One ABACUS CSR file (one ionic step) as coordinate lists.

    Attributes
    ----------
    dim : int
        Matrix dimension (orbitals, or 2 x orbitals for nspin = 4).
    shift : ndarray, shape (nnz, 3), int64
        Lattice vector R of each stored element.
    row, col : ndarray, shape (nnz,), int64
        0-based row and column of each element.
    val : ndarray, shape (nnz,)
        Values (float64, or complex128 for "(re,im)" files), in the file's units.
    n_shifts : int
        Number of R blocks declared in the file (empty ones included).
    layout : {"old", "new"}
        Old (<= 3.9) or new (>= 3.10) text layout.
    step : int or None
        Ionic step of the data read (the last one in the file).
    structure : ase.Atoms or None
        Structure embedded in a new-layout header (species labels as symbols).
    """

    dim: int
    shift: np.ndarray
    row: np.ndarray
    col: np.ndarray
    val: np.ndarray
    n_shifts: int
    layout: str
    step: int | None = None
    structure: Atoms | None = None


def numbers(text: str, path, what: str) -> np.ndarray:
    """Parse whitespace-separated numbers with one C call; FormatError on any bad token."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            out = np.fromstring(text, dtype=np.float64, sep=" ")
        except (ValueError, DeprecationWarning) as exc:
            raise FormatError(path, f"non-numeric token in {what}") from exc
    if not np.all(np.isfinite(out)):
        raise FormatError(path, f"NaN or infinite number in {what}")
    return out


def _as_int(x: np.ndarray, path, what: str) -> np.ndarray:
    if np.any(x != np.round(x)) or np.any(np.abs(x) > 2.0**53):
        raise FormatError(path, f"{what} are not (reasonable) integers")
    return x.astype(np.int64)


# ------------------------------------------------------------------------------ CSR
def parse_csr(text: str, path) -> CsrMatrix:
    """Parse an old- or new-layout ABACUS CSR text (the last ionic step in the file)."""
    if "Matrix Dimension of" in text:
        return _parse_old(text, path)
    if re.search(r"#\s*number of localized basis", text):
        return _parse_new(text, path)
    raise FormatError(path, "not an ABACUS CSR matrix file (no 'Matrix Dimension of' header "
                            "and no '# number of localized basis' header)")


def _parse_old(text: str, path) -> CsrMatrix:
    heads = list(re.finditer(
        r"Matrix Dimension of [^:\n]*:\s*(\S+)\s*\n\s*Matrix number of [^:\n]*:\s*(\S+)", text))
    if not heads:
        raise FormatError(path, "old CSR header lacks 'Matrix number of ...' after the dimension")
    last = heads[-1]
    steps = re.findall(r"STEP:\s*(-?\d+)", text[:last.start()])
    dim, n_r = (_as_int(numbers(g, path, "the header"), path, "header counts")
                for g in last.groups())
    body = text[last.end():]
    return _walk(body, path, int(dim[0]), int(n_r[0]), "old",
                 int(steps[-1]) if steps else None, None)


def _parse_new(text: str, path) -> CsrMatrix:
    steps = list(re.finditer(r"-+\s*Ionic Step\s+(\d+)\s*-+", text))
    step = int(steps[-1].group(1)) if steps else None
    text = text[steps[-1].end():] if steps else text
    head: dict[str, int] = {}
    for key in ("number of spin directions", "spin index", "number of localized basis",
                "number of Bravais lattice vector R"):
        m = re.search(r"(\S+)[ \t]*#[ \t]*" + re.escape(key), text)
        if not m:
            raise FormatError(path, f"new CSR header lacks '# {key}'")
        head[key] = int(_as_int(numbers(m.group(1), path, "the header"), path, key)[0])
        end = m.end()
    rest = text[end:].split("\n", 1)[1] if "\n" in text[end:] else ""
    lines = rest.split("\n")
    k = 0
    struct_lines: list[str] = []
    while k < len(lines) and not lines[k].lstrip().startswith("#"):
        struct_lines.append(lines[k])
        k += 1
    while k < len(lines) and (lines[k].lstrip().startswith("#") or not lines[k].strip()):
        if "CSR values" in lines[k]:
            raise FormatError(path, "CSR values section without an 'Rx Ry Rz nnz' line")
        k += 1
    structure = _parse_embedded_structure(" ".join(struct_lines), path)
    body = re.sub(r"#[^\n]*", " ", "\n".join(lines[k:]))
    return _walk(body, path, head["number of localized basis"],
                 head["number of Bravais lattice vector R"], "new", step, structure)


def _walk(body: str, path, dim: int, n_r: int, layout: str, step, structure) -> CsrMatrix:
    """Walk the numeric body block by block (one Python iteration per R block)."""
    if dim <= 0 or n_r < 0:
        raise FormatError(path, f"bad header: dimension {dim}, {n_r} R blocks")
    is_complex = "(" in body
    if is_complex:
        body = body.translate(str.maketrans("(),", "   "))
    nums = numbers(body, path, "the matrix data")
    per = 2 if is_complex else 1
    pos, chunks = 0, []
    for b in range(n_r):
        if pos + 4 > len(nums):
            raise FormatError(path, f"file ends inside R block {b + 1} of {n_r}")
        r_nnz = _as_int(nums[pos:pos + 4], path, f"R block {b + 1} header")
        pos += 4
        nnz = int(r_nnz[3])
        if nnz < 0 or nnz > dim * dim:
            raise FormatError(path, f"R block {b + 1} declares {nnz} elements for dimension {dim}")
        if nnz == 0:
            continue
        end = pos + per * nnz + nnz + dim + 1
        if end > len(nums):
            raise FormatError(path, f"file ends inside R block {b + 1} of {n_r}")
        vals = nums[pos:pos + per * nnz]
        cols = _as_int(nums[pos + per * nnz:pos + (per + 1) * nnz], path, "column indices")
        ptr = _as_int(nums[pos + (per + 1) * nnz:end], path, "row pointers")
        pos = end
        if ptr[0] != 0 or ptr[-1] != nnz or np.any(np.diff(ptr) < 0):
            raise FormatError(path, f"R block {b + 1}: row pointers inconsistent with nnz = {nnz}")
        if cols.min() < 0 or cols.max() >= dim:
            raise FormatError(path, f"R block {b + 1}: column index outside 0..{dim - 1}")
        if is_complex:
            vals = vals[0::2] + 1j * vals[1::2]
        chunks.append((r_nnz[:3], np.repeat(np.arange(dim), np.diff(ptr)), cols, vals))
    if pos != len(nums):
        raise FormatError(path, f"{len(nums) - pos} numbers after the {n_r} declared R blocks")
    if chunks:
        shift = np.concatenate([np.broadcast_to(c[0], (len(c[2]), 3)) for c in chunks])
        row, col, val = (np.concatenate([c[k] for c in chunks]) for k in (1, 2, 3))
    else:
        shift, row, col = np.zeros((0, 3), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        val = np.zeros(0, np.complex128 if is_complex else np.float64)
    return CsrMatrix(dim, shift.astype(np.int64), row, col, val, n_r, layout, step, structure)


def _parse_embedded_structure(text: str, path) -> Atoms | None:
    """Structure printed in the new-layout header: lat0 (Angstrom), vectors, labels, positions."""
    tokens = text.split()
    if not tokens:
        return None
    if not _is_number(tokens[0]):
        tokens = tokens[1:]  # lattice name, e.g. "user_defined_lattice"
    try:
        lat0 = float(tokens[0])
        cell = np.array(tokens[1:10], dtype=float).reshape(3, 3) * lat0
        k = 10
        labels = []
        while not _is_number(tokens[k]):
            labels.append(tokens[k])
            k += 1
        counts = [int(t) for t in tokens[k:k + len(labels)]]
        k += len(labels)
        kind = tokens[k].lower()
        n = sum(counts)
        coords = np.array(tokens[k + 1:k + 1 + 3 * n], dtype=float).reshape(n, 3)
        if len(tokens) != k + 1 + 3 * n:
            raise ValueError("extra tokens after the positions")
        if not (np.all(np.isfinite(cell)) and np.all(np.isfinite(coords))):
            raise ValueError("NaN or infinite lattice or position")
        symbols = [element_of(lab) for lab, c in zip(labels, counts, strict=True)
                   for _ in range(c)]
    except (ValueError, IndexError, AssertionError) as exc:
        raise FormatError(path, f"cannot parse the embedded structure ({exc})") from exc
    if kind.startswith("direct"):
        return Atoms(symbols, scaled_positions=coords, cell=cell, pbc=True)
    if kind.startswith("cartesian"):
        return Atoms(symbols, positions=coords * lat0, cell=cell, pbc=True)
    raise FormatError(path, f"embedded structure: unknown coordinate type {kind!r}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def format_csr(dim: int, shifts: np.ndarray, blocks: list, layout: str, kind: str = "H",
               spin_index: int = 1, structure_text: str = "") -> str:
    """Format CSR text.

    Parameters
    ----------
    dim : int
        Matrix dimension.
    shifts : ndarray, shape (n_R, 3)
        R vectors in file order.
    blocks : list of (values, cols, rowptr)
        Per R; ``values`` real or complex (complex are written as "(re,im)").
    layout : {"old", "new"}
        Text layout.
    kind : str
        Matrix letter of the header ("H" or "S").
    spin_index : int
        Spin index written in the new-layout header.
    structure_text : str
        Structure lines of the new-layout header.
    """
    if layout == "old":
        out = ["STEP: 0", f"Matrix Dimension of {kind}(R): {dim}",
               f"Matrix number of {kind}(R): {len(shifts)}"]
    else:
        out = [" --- Ionic Step 1 ---", f" # print {kind} matrix in real space {kind}(R)",
               " 1 # number of spin directions", f" {spin_index} # spin index",
               f" {dim} # number of localized basis",
               f" {len(shifts)} # number of Bravais lattice vector R", "", structure_text, "",
               " #" + "-" * 70 + "#", " # CSR Format: per R, 'Rx Ry Rz nnz', then values, "
               "column indices, row pointers", " #" + "-" * 70 + "#", ""]
    for r, (vals, cols, ptr) in zip(shifts, blocks, strict=False):
        out.append(f" {r[0]} {r[1]} {r[2]} {len(vals)}")
        if not len(vals):
            continue
        if np.iscomplexobj(vals):
            inter = np.stack([vals.real, vals.imag], axis=1).reshape(-1)
            vtxt = ("(%.16e,%.16e) " * len(vals)) % tuple(inter.tolist())
        else:
            vtxt = ("%.16e " * len(vals)) % tuple(vals.tolist())
        ctxt = " ".join(map(str, cols.tolist()))
        ptxt = " ".join(map(str, ptr.tolist()))
        if layout == "old":
            out += [vtxt.rstrip(), ctxt, ptxt]
        else:
            out += [" # CSR values", _wrap(vtxt, 8), " # CSR column indices", _wrap(ctxt, 16),
                    " # CSR row pointers", _wrap(ptxt, 16), ""]
    return "\n".join(out) + "\n"


def _wrap(text: str, per_line: int) -> str:
    tokens = text.split()
    return "\n".join(" " + " ".join(tokens[k:k + per_line])
                     for k in range(0, len(tokens), per_line))
