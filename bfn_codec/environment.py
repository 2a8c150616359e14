"""What a decoder must share with the encoder to reproduce its probabilities: the coder's
arithmetic revision, the package versions, the device, the thread count, deterministic kernels.
A chain-mode file records the revision, the thread count and a digest of the rest
(docs/format.md, 'Environment')."""
from __future__ import annotations

import contextlib

import numpy as np
import torch


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


# Revision of the coder's arithmetic (tables, posteriors, grids). Any change that alters a
# single probability makes older files undecodable, so files record it.
# 1: exact bin-mass posteriors (0.1.0, first files); 2: Sheppard-corrected posteriors and the
# one-pass discretised table; 3: discretised tails with erfc instead of ndtr (ndtr(-z) was 0
# beyond z ~ 9 in float64); 4: receiver weights of discretised data on a window of bins
# (coder.WINDOW_Z); 5: supports of +-5 instead of +-10 std (coder.DEFAULT_TAIL).
CODER_REVISION = 5
# 6: the portable arithmetic (portable.py): the integer network and exact functions, the same
# probabilities on every machine; its decoder needs no matching environment, and it is kept
# unchanged in every later release (tests/golden holds files that prove it).
PORTABLE_REVISION = 6


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
