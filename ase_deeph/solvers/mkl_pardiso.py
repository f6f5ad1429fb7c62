"""MKL PARDISO through ctypes: symmetric/Hermitian indefinite LDL^T with inertia.

A small direct wrapper of ``pardiso`` in MKL's single dynamic library (``libmkl_rt``,
from the ``mkl`` wheel of the ``ase-deeph[large]`` extra), written for the large-cell
solvers (issue 15) where ``pypardiso`` falls short: it is real-only, copies and hashes the
matrix on every call and has no single-precision factors. Here:

* real symmetric (``mtype=-2``) and complex Hermitian (``mtype=-4``) indefinite
  matrices, Bunch-Kaufman LDL^T after a METIS nested-dissection ordering. MKL reports the
  inertia for real matrices only (``negatives`` is None for complex ones): measured on
  the 244-atom twisted bilayer at K, Bunch-Kaufman gives no count, and 1x1 pivots (which
  do give one) factorise so unstably that the count was 1,112 instead of 488 and the
  solves' residual 857;
* the upper triangle in CSR with 32-bit indices, handed to MKL without another copy;
* optional single-precision factors (``iparm[27] = 1``; matrix and right-hand sides in
  float32 / complex64);
* the inertia (``iparm[21]``, ``iparm[22]``), the count of perturbed pivots
  (``iparm[13]``) and the factor's size (``iparm[17]`` entries, ``iparm[15] + iparm[16]``
  kB) after the factorisation.

The library is found as ``pypardiso`` finds it: ``ASE_DEEPH_MKL_RT``, then
``ctypes.util.find_library("mkl_rt")``, then a search below ``sys.prefix``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import sys
import tempfile

import numpy as np
import scipy.sparse as sp

from interfaces.hsdata import value_dtype
from interfaces.memory import available_mb

__all__ = ["MKLPardiso", "SingularMatrix", "load_mkl", "mkl_available"]

#: MKL PARDISO's error codes (its reference manual)
ERRORS = {-1: "input inconsistent", -2: "not enough memory", -3: "reordering problem",
          -4: "zero pivot (numerical factorisation or iterative refinement)",
          -5: "unclassified internal error", -6: "reordering failed",
          -7: "diagonal matrix is singular", -8: "32-bit integer overflow",
          -9: "not enough memory for the out-of-core mode (raise "
              "MKL_PARDISO_OOC_MAX_CORE_SIZE, in MB)",
          -10: "cannot open the out-of-core files (MKL_PARDISO_OOC_PATH must be a "
               "writable folder ending in a separator)",
          -11: "read/write error with the out-of-core files (disk full?)"}
SINGULAR = (-4, -7)  # the matrix, not the run, is at fault: E sits on a level


class SingularMatrix(RuntimeError):
    """PARDISO found the matrix (numerically) singular."""


_LIB: list = []
_USER_OOC_PATH = bool(os.environ.get("MKL_PARDISO_OOC_PATH"))
_USER_OOC_CORE = bool(os.environ.get("MKL_PARDISO_OOC_MAX_CORE_SIZE"))


def load_mkl():
    """``ctypes`` handle of ``libmkl_rt`` (cached); raise OSError when it is not installed."""
    if _LIB:
        return _LIB[0]
    candidates = [os.environ.get("ASE_DEEPH_MKL_RT"), ctypes.util.find_library("mkl_rt")]
    candidates += sorted(glob.glob(f"{sys.prefix}/[Ll]ib*/**/*mkl_rt*", recursive=True), key=len)
    for path in filter(None, candidates):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.pardiso.restype = None
        _LIB.append(lib)
        return lib
    raise OSError("MKL's libmkl_rt was not found: pip install 'ase-deeph[large]' (or set "
                  "ASE_DEEPH_MKL_RT to its path)")


def mkl_available() -> bool:
    """Return True when ``libmkl_rt`` loads here."""
    try:
        load_mkl()
    except OSError:
        return False
    return True


def _iparm(single: bool) -> np.ndarray:
    iparm = np.zeros(64, dtype=np.int32)
    iparm[0] = 1  # values below are supplied, not defaults
    iparm[1] = 2  # METIS nested dissection
    iparm[7] = 0  # no iterative refinement steps beyond the default
    iparm[9] = 8  # pivot perturbation 1e-8 (symmetric indefinite default)
    iparm[10] = 0  # no scaling; no weighted matching (iparm[12]) for symmetric matrices
    iparm[17] = -1  # report the number of entries in the factor
    iparm[20] = 1  # Bunch-Kaufman 1x1 and 2x2 pivots
    iparm[27] = 1 if single else 0
    iparm[34] = 1  # zero-based indices
    return iparm


class MKLPardiso:
    """One factorisation of a real symmetric or complex Hermitian indefinite matrix.

    Parameters
    ----------
    upper : scipy.sparse.csr_matrix
        Upper triangle (diagonal included, every diagonal entry stored) of ``A``, sorted
        indices; float64/complex128 (or float32/complex64 with ``single``).
    single : bool
        Single-precision factor (half the memory; check the count against double).
    out_of_core : bool
        Keep the factor in files (``iparm[59] = 2``) under ``MKL_PARDISO_OOC_PATH``
        (default a new temporary folder, removed with the factor; the value must be a
        directory ending in the separator: a directory plus a file prefix failed with
        error -10, measured), with at most ``MKL_PARDISO_OOC_MAX_CORE_SIZE`` MB in
        memory. Unless that is set, it is chosen after the analysis: the factor's needs,
        capped at 60 % of the available memory, never below the permanent part + 1 GB
        (MKL's own default, 2000 MB, failed with error -9 on the 11,164-atom cell).

    Attributes
    ----------
    negatives, positives : int or None
        Inertia of ``A`` read from the factor (None for complex matrices).
    perturbed : int
        Pivots PARDISO replaced by +-1e-8 ||A|| (their sign, and so the count, is then
        unreliable: A is nearly singular).
    factor_entries : int
        Entries of the L factor.
    memory_kb : int
        PARDISO's permanent plus factorisation memory, kB.
    """

    def __init__(self, upper: sp.csr_matrix, single: bool = False, out_of_core: bool = False):
        self._lib = load_mkl()
        self._ooc_dir = None
        if out_of_core and not _USER_OOC_PATH:  # a folder of its own, removed on release
            self._ooc_dir = tempfile.mkdtemp(prefix="ase_deeph_pardiso_")
            os.environ["MKL_PARDISO_OOC_PATH"] = self._ooc_dir + os.sep
        complex_ = np.iscomplexobj(upper.data)
        dtype = value_dtype(complex_, single)
        self.dtype = np.dtype(dtype)
        self._a = np.ascontiguousarray(upper.data, dtype=dtype)
        self._ia = np.ascontiguousarray(upper.indptr, dtype=np.int32)
        self._ja = np.ascontiguousarray(upper.indices, dtype=np.int32)
        self.n = upper.shape[0]
        self._mtype = -4 if complex_ else -2
        self._pt = np.zeros(64, dtype=np.int64)
        self._iparm = _iparm(single)
        self._iparm[59] = 2 if out_of_core else 0
        self._live = True  # a failed phase still frees what was allocated
        none = np.zeros(0, dtype=dtype)
        self._call(11, none, none, 1)  # ordering and symbolic factorisation
        if out_of_core and not _USER_OOC_CORE:
            os.environ["MKL_PARDISO_OOC_MAX_CORE_SIZE"] = str(self._ooc_core_mb())
        self._call(22, none, none, 1)  # numerical factorisation
        it = self._iparm
        self.perturbed = int(it[13])
        self.positives = None if complex_ else int(it[21])
        self.negatives = None if complex_ else int(it[22])
        self.factor_entries = int(it[17])
        self.memory_kb = int(it[15]) + int(it[16])

    def _ooc_core_mb(self) -> int:
        """Return the memory (MB) given to the out-of-core factorisation.

        MKL's 2000 MB default fails (error -9) when the permanent part alone is larger
        (3.8 GB on the 11,164-atom cell): take what the whole factor needs, at most 60 %
        of the available memory.
        """
        it = self._iparm  # after the analysis: permanent and factorisation memory, kB
        need_mb = (int(it[15]) + int(it[16])) // 1024
        floor_mb = int(it[15]) // 1024 + 1000
        return max(2000, floor_mb, min(need_mb, int(0.6 * available_mb())))

    def _call(self, phase: int, b: np.ndarray, x: np.ndarray, nrhs: int) -> None:
        err = ctypes.c_int32(0)
        i32 = ctypes.POINTER(ctypes.c_int32)
        self._lib.pardiso(
            self._pt.ctypes.data_as(ctypes.POINTER(ctypes.c_int64)),
            ctypes.byref(ctypes.c_int32(1)), ctypes.byref(ctypes.c_int32(1)),
            ctypes.byref(ctypes.c_int32(self._mtype)), ctypes.byref(ctypes.c_int32(phase)),
            ctypes.byref(ctypes.c_int32(self.n)), self._a.ctypes.data_as(ctypes.c_void_p),
            self._ia.ctypes.data_as(i32), self._ja.ctypes.data_as(i32), None,
            ctypes.byref(ctypes.c_int32(nrhs)), self._iparm.ctypes.data_as(i32),
            ctypes.byref(ctypes.c_int32(0)), b.ctypes.data_as(ctypes.c_void_p),
            x.ctypes.data_as(ctypes.c_void_p), ctypes.byref(err))
        if err.value != 0:
            if phase != -1:
                self.release()
            if err.value in SINGULAR:
                raise SingularMatrix(f"MKL PARDISO phase {phase}: {ERRORS[err.value]}")
            ooc = f" (out-of-core files in {self._ooc_dir})" if self._ooc_dir else ""
            raise RuntimeError(f"MKL PARDISO phase {phase} failed with error {err.value}: "
                               f"{ERRORS.get(err.value, 'undocumented')}{ooc}")

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``x`` with ``A x = b``; b of shape (n,) or (n, m), in the factor's precision."""
        b = np.asarray(b)
        if np.iscomplexobj(b) and self.dtype.kind == "f":
            return self.solve(b.real) + 1j * self.solve(b.imag)
        out_dtype = np.result_type(b.dtype, self.dtype)
        rhs = np.asfortranarray(b, dtype=self.dtype)
        x = np.zeros_like(rhs)
        self._call(33, rhs, x, 1 if b.ndim == 1 else b.shape[1])
        return x.astype(out_dtype, copy=False)

    def release(self) -> None:
        """Free the factor (phase -1); the object cannot solve afterwards."""
        if self._live:
            self._live = False
            dummy = np.zeros(0, dtype=self.dtype)
            self._call(-1, dummy, dummy, 1)
        if self._ooc_dir is not None:
            shutil.rmtree(self._ooc_dir, ignore_errors=True)
            self._ooc_dir = None

    def __del__(self):
        try:
            self.release()
        except Exception:  # interpreter shutdown: the library may be gone
            pass
