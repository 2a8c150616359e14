"""What a decoder must share with the encoder to reproduce its probabilities: the coder's
arithmetic revision, the package versions, the device, the thread count, deterministic kernels.
A chain-mode file records the revision, the thread count and a digest of the rest
(docs/format.md, 'Arithmetic revisions and the environment'); revision 6 files record them
for information only."""
from __future__ import annotations

import contextlib

import numpy as np
import torch

from .revisions import CODER_REVISION, PORTABLE_REVISION, PORTABLE_REVISIONS  # noqa: F401 - re-exported


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def environment(device: str = "cpu") -> str:
    """What must match for a decoder to reproduce the encoder's probabilities bit for bit, apart
    from the thread count (stored on its own: the decoder runs with the encoder's count, since
    float32 results change with it; measured: batch 1 and 7 differ between 1 and 2 threads).
    A file keeps only its digest (container.environment_digest)."""
    return (f"coder={CODER_REVISION};torch={torch.__version__};constriction={_version('constriction')};"
            f"numpy={np.__version__};device={torch.device(device).type};dtype=float32;det=1")


@contextlib.contextmanager
def deterministic(threads: int | None = None):
    """Settings under which network outputs are reproducible (docs/design.md §12)."""
    prev = (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32, torch.get_num_threads())
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0])
        torch.set_float32_matmul_precision(prev[1])
        torch.backends.cudnn.benchmark = prev[2]
        torch.backends.cudnn.allow_tf32 = prev[3]
        torch.backends.cuda.matmul.allow_tf32 = prev[4]
        torch.set_num_threads(prev[5])
