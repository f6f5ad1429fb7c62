"""Record-level parsers of SIESTA ``.HSX`` (versions 0, 1, 2) and ``.TSHS`` (version 1).

Each parser returns a :class:`RawSiesta` holding the quantities exactly as stored
(Ry, Bohr, orbital-level sparse rows); :mod:`interfaces.siesta.reader` turns them into HSData.
Layouts: ``docs/formats.md`` sections 1.1-1.3 and 1.6; TSHS v1 as found in the
samples' bytes: ``version | na_u no_u no_s nspin nnz | nsc | cell, xa | Gamma TSGamma onlyS |
kscell kdispl | Ef Qtot Temp | istep ia1 | lasto(0:na_u) | numh | listh rows | S rows |
nspin x H rows | isc_off (unless Gamma)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from interfaces._fortran import RecordReader

__all__ = ["RawSiesta", "parse", "default_isc_off"]


@dataclass
class RawSiesta:
    """SIESTA quantities as stored (Ry, Bohr, 0-based where noted)."""

    path: Path
    kind: str
    no_u: int
    nspin: int
    numh: np.ndarray  # [no_u]
    col: np.ndarray  # [nnz] 0-based supercell column
    vals: np.ndarray  # [nspin, nnz] Ry
    s: np.ndarray  # [nnz]
    isc_off: np.ndarray | None = None  # [n_s, 3]
    xij: np.ndarray | None = None  # [nnz, 3] Bohr
    unit_col: np.ndarray | None = None  # [nnz] 0-based unit-cell column (v0)
    cell: np.ndarray | None = None  # [3, 3] Bohr, rows = vectors
    xa: np.ndarray | None = None  # [na, 3] Bohr
    isa: np.ndarray | None = None  # [na] 0-based species
    lasto: np.ndarray | None = None  # [na + 1] with leading 0
    labels: list | None = None
    zval: np.ndarray | None = None
    nlz: list | None = None  # per species (no, 3) int arrays of (n, l, zeta)
    numbers: np.ndarray | None = None  # [na]
    ef_ry: float = math.nan
    qtot: float = math.nan
    temp_ry: float = math.nan
    extra: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- parsing
def _check_sizes(rr: RecordReader, **dims) -> None:
    for name, v in dims.items():
        if v < 1 or v > len(rr.data):
            raise rr.fail(f"implausible {name} = {v}")
    if dims.get("nspin", 1) not in (1, 2, 4, 8):
        raise rr.fail(f"unsupported nspin = {dims['nspin']}")


def _rows(rr: RecordReader, numh: np.ndarray, nspin: int, dtype) -> tuple[np.ndarray, ...]:
    """Read the listh rows, nspin x H rows and S rows (HSX order: H then S)."""
    col = rr.rows(numh, "<i4").astype(np.int64) - 1
    vals = rr.rows(np.tile(numh, nspin), dtype).astype(np.float64).reshape(nspin, -1)
    s = rr.rows(numh, dtype).astype(np.float64)
    return col, vals, s


def _species_records(rr: RecordReader, nspecies: int) -> tuple[list, np.ndarray, np.ndarray]:
    spec_t = np.dtype([("label", "S20"), ("zval", "<f8"), ("no", "<i4")])
    spec = rr.array(spec_t, nspecies)
    labels = [bytes(x).decode("ascii", "replace").strip() for x in spec["label"]]
    if np.any(spec["no"] < 1):
        raise rr.fail("species with no orbitals")
    return labels, spec["zval"].astype(float), spec["no"].astype(np.int64)


def _parse_hsx12(rr: RecordReader, version: int) -> RawSiesta:
    is_dp = bool(rr.array("<i4", 1)[0])
    na_u, no_u, nspin, nspecies, *nsc = (int(x) for x in rr.array("<i4", 7))
    _check_sizes(rr, na_u=na_u, no_u=no_u, nspin=nspin, nspecies=nspecies, nsc=min(nsc))
    n_s = int(np.prod(nsc))
    head = rr.array("<f8", 12)
    geo = rr.record()
    if len(geo) != 12 * n_s + 32 * na_u:
        raise rr.fail(f"geometry record has {len(geo)} bytes, expected {12 * n_s + 32 * na_u}")
    isc_off = np.frombuffer(geo, "<i4", 3 * n_s).reshape(n_s, 3).astype(np.int64)
    xa = np.frombuffer(geo, "<f8", 3 * na_u, 12 * n_s).reshape(na_u, 3)
    tail = np.frombuffer(geo, "<i4", 2 * na_u, 12 * n_s + 24 * na_u).astype(np.int64)
    if np.any(np.abs(isc_off) > np.array(nsc) // 2):
        raise rr.fail("supercell offsets isc_off outside the nsc range")
    labels, zval, no = _species_records(rr, nspecies)
    nlz = [rr.array("<i4", 3 * n).reshape(n, 3).astype(np.int64) for n in no]
    extra = {}
    if version == 2:
        kc = rr.record()
        if len(kc) != 60:
            raise rr.fail(f"k-grid record has {len(kc)} bytes, expected 60")
        extra["kcell"] = np.frombuffer(kc, "<i4", 9).reshape(3, 3).tolist()
        extra["kdispl"] = np.frombuffer(kc, "<f8", 3, 36).tolist()
    numh = rr.array("<i4", no_u).astype(np.int64)
    col, vals, s = _rows(rr, numh, nspin, "<f8" if is_dp else "<f4")
    rr.expect_end()
    return RawSiesta(rr.path, f"HSX v{version}", no_u, nspin, numh, col, vals, s, isc_off=isc_off,
                cell=head[:9].reshape(3, 3), xa=xa, isa=tail[:na_u] - 1,
                lasto=np.concatenate([[0], tail[na_u:]]), labels=labels, zval=zval, nlz=nlz,
                ef_ry=float(head[9]), qtot=float(head[10]), temp_ry=float(head[11]),
                extra=dict(extra, is_dp=is_dp, nsc=list(nsc)))


def _parse_hsx0(rr: RecordReader) -> RawSiesta:
    no_u, no_s, nspin, maxnh = (int(x) for x in rr.array("<i4", 4))
    _check_sizes(rr, no_u=no_u, no_s=no_s, nspin=nspin, maxnh=maxnh)
    gamma = bool(rr.array("<i4", 1)[0])
    indxuo = None if gamma else rr.array("<i4", no_s).astype(np.int64) - 1
    numh = rr.array("<i4", no_u).astype(np.int64)
    if numh.sum() != maxnh:
        raise rr.fail(f"sum(numh) = {numh.sum()} differs from maxnh = {maxnh}")
    col, vals, s = _rows(rr, numh, nspin, "<f4")
    qtot, temp = rr.array("<f8", 2)
    xij = None if gamma else rr.rows(numh, "<f4", 3).astype(np.float64).reshape(-1, 3)
    raw = RawSiesta(rr.path, "HSX v0", no_u, nspin, numh, col, vals, s, xij=xij,
               qtot=float(qtot), temp_ry=float(temp), extra={"gamma": gamma})
    if np.any((col < 0) | (col >= no_s)):
        raise rr.fail("column index outside 1..no_s")
    raw.unit_col = col % no_u if gamma else indxuo[col]
    if gamma:
        raw.isc_off = np.zeros((1, 3), dtype=np.int64)
        raw.col = col % no_u
    if not rr.at_end():  # SIESTA 4.1 appends the species and orbital tables
        nspecies = int(rr.array("<i4", 1)[0])
        _check_sizes(rr, nspecies=nspecies)
        raw.labels, raw.zval, no = _species_records(rr, nspecies)
        per_orbital = rr.peek_size() == 12  # SIESTA 4.1: one record per orbital
        counts = np.ones(int(no.sum()), np.int64) if per_orbital else no
        flat = rr.rows(counts, "<i4", 3).reshape(-1, 3).astype(np.int64)
        raw.nlz = np.split(flat, np.cumsum(no)[:-1])
        na_u = int(rr.array("<i4", 1)[0])
        _check_sizes(rr, na_u=na_u)
        raw.isa = rr.array("<i4", na_u).astype(np.int64) - 1
        iaorb = rr.array("<i4", 2 * no_u).reshape(no_u, 2)[:, 0].astype(np.int64)
        raw.lasto = np.concatenate([[0], np.searchsorted(iaorb, np.arange(1, na_u + 1), "right")])
    rr.expect_end()
    return raw


def default_isc_off(nsc: np.ndarray) -> np.ndarray:
    """Return the static supercell order (as sisl assumes): x fastest, 0, 1, .., -1 per axis."""
    idx = np.arange(int(np.prod(nsc)))
    digits = np.stack([idx % nsc[0], (idx // nsc[0]) % nsc[1], idx // (nsc[0] * nsc[1])], 1)
    return np.where(digits > nsc // 2, digits - nsc, digits).astype(np.int64)


def _parse_tshs(rr: RecordReader) -> RawSiesta:
    if rr.peek_size() == 20:
        return _parse_tshs0(rr)
    version = int(rr.array("<i4", 1)[0])
    if version != 1:
        raise rr.fail(f"unsupported TSHS version {version} (versions 0 and 1 are read)")
    na_u, no_u, no_s, nspin, nnz = (int(x) for x in rr.array("<i4", 5))
    _check_sizes(rr, na_u=na_u, no_u=no_u, no_s=no_s, nspin=nspin, nnz=nnz)
    nsc = rr.array("<i4", 3).astype(np.int64)
    if nsc.min() < 1 or no_s != no_u * int(np.prod(nsc)):
        raise rr.fail("nsc disagrees with no_s / no_u")
    geo = rr.array("<f8", 9 + 3 * na_u)
    gamma, _ts_gamma, only_s = (bool(x) for x in rr.array("<i4", 3))
    rr.record()  # kscell(3, 3) int, kdispl(3) real8
    ef, qtot, temp = rr.array("<f8", 3)
    rr.array("<i4", 2)  # istep, ia1
    lasto = rr.array("<i4", na_u + 1).astype(np.int64)
    numh = rr.array("<i4", no_u).astype(np.int64)
    if numh.sum() != nnz:
        raise rr.fail("sum(numh) disagrees with the header")
    col = rr.rows(numh, "<i4").astype(np.int64) - 1
    s = rr.rows(numh, "<f8").astype(np.float64)
    vals = (np.zeros((nspin, nnz)) if only_s else
            rr.rows(np.tile(numh, nspin), "<f8").reshape(nspin, -1))
    isc_off = (default_isc_off(nsc) if gamma else
               rr.array("<i4", 3 * int(np.prod(nsc))).reshape(-1, 3).astype(np.int64))
    rr.expect_end()
    return RawSiesta(rr.path, "TSHS v1", no_u, nspin, numh, col, vals, s, isc_off=isc_off,
                     cell=geo[:9].reshape(3, 3), xa=geo[9:].reshape(na_u, 3), lasto=lasto,
                     ef_ry=float(ef), qtot=float(qtot), temp_ry=float(temp),
                     extra={"only_s": only_s, "nsc": nsc.tolist()})


def _parse_tshs0(rr: RecordReader) -> RawSiesta:
    """Old (SIESTA <= 4.0) TSHS: double precision, xij-based like HSX v0."""
    na_u, no_u, no_s, nspin, nnz = (int(x) for x in rr.array("<i4", 5))
    _check_sizes(rr, na_u=na_u, no_u=no_u, no_s=no_s, nspin=nspin, nnz=nnz)
    xa = rr.array("<f8", 3 * na_u).reshape(na_u, 3)
    numbers = rr.array("<i4", na_u).astype(np.int64)
    cell = rr.array("<f8", 9).reshape(3, 3)
    gamma, only_s, _ts_gamma = (bool(rr.array("<i4", 1)[0]) for _ in range(3))
    rr.array("<i4", 9)  # kscell
    rr.array("<f8", 3)  # kdispl
    rr.array("<i4", 2)  # istep, ia1
    lasto = rr.array("<i4", na_u + 1).astype(np.int64)
    indxuo = None if gamma else rr.array("<i4", no_s).astype(np.int64) - 1
    numh = rr.array("<i4", no_u).astype(np.int64)
    if numh.sum() != nnz:
        raise rr.fail("sum(numh) disagrees with the header")
    qtot, temp = rr.array("<f8", 2)
    ef = rr.array("<f8", 1)[0]
    col = rr.rows(numh, "<i4").astype(np.int64) - 1
    s = rr.rows(numh, "<f8").astype(np.float64)
    vals = (np.zeros((nspin, nnz)) if only_s else
            rr.rows(np.tile(numh, nspin), "<f8").reshape(nspin, -1))
    xij = None if gamma else rr.rows(numh, "<f8", 3).reshape(-1, 3)
    rr.expect_end()
    if np.any((col < 0) | (col >= no_s)):
        raise rr.fail("column index outside 1..no_s")
    raw = RawSiesta(rr.path, "TSHS v0", no_u, nspin, numh, col, vals, s, xij=xij, cell=cell,
                    xa=xa, lasto=lasto, numbers=numbers, ef_ry=float(ef), qtot=float(qtot),
                    temp_ry=float(temp), extra={"only_s": only_s, "gamma": gamma})
    raw.unit_col = col % no_u if gamma else indxuo[col]
    if gamma:
        raw.isc_off, raw.col = np.zeros((1, 3), dtype=np.int64), col % no_u
    return raw


def parse(path: Path) -> RawSiesta:
    """Parse an HSX (version from the first record) or a ``*.TSHS`` file (by name)."""
    rr = RecordReader(path)
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    if name.upper().endswith(".TSHS"):
        return _parse_tshs(rr)
    first = rr.peek_size()
    if first == 16:
        return _parse_hsx0(rr)
    if first != 4:
        raise rr.fail(f"first record of {first} bytes: not an HSX file")
    version = int(rr.array("<i4", 1)[0])
    if version not in (1, 2):
        raise rr.fail(f"unsupported HSX version {version}")
    return _parse_hsx12(rr, version)
