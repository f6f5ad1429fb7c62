"""Shared test configuration: headless plotting and the location of the real DFT samples."""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per test process: the many small eigensolves are faster
# that way, and nothing oversubscribes a small shared machine.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
from pathlib import Path  # noqa: E402

import matplotlib  # noqa: E402
import pytest  # noqa: E402

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Folder of the small shipped test files (``tests/data``)."""
    return DATA


@pytest.fixture(scope="session")
def shared_samples() -> Path:
    """The full real DFT samples beside the repository (``../shared/dft-samples``).

    Overridable with ``ASE_DEEPH_SAMPLES``. Tests that need only what ``tests/data``
    ships must use :func:`data_dir` instead; this fixture skips (with the reason)
    when the folder is absent, as sisl's ``sisl_files`` does.
    """
    default = Path(__file__).parents[2] / "shared" / "dft-samples"
    root = Path(os.environ.get("ASE_DEEPH_SAMPLES", default))
    if not root.is_dir():
        pytest.skip(f"real DFT samples not found at {root} (set ASE_DEEPH_SAMPLES)")
    return root
