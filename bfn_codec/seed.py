"""The fallback coder: raw LZMA2 of the item bytes (bit-packed for binary data). It codes the
first items of a chain-mode file, whose bytes become the bottom of the ANS stack (the seed: real
data, not random bits, so the first pops of the chain cost nothing extra; docs/design.md), and
every item of a fallback-mode file."""
from __future__ import annotations

import lzma
import math

import numpy as np

from .container import FormatError
from .progress import Progress

LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
LZMA_PROGRESS_BYTES = 4 << 20  # inputs from this size on get a progress bar for their LZMA2 stream


def seed_bytes(items: np.ndarray, K: int, progress: bool = False) -> bytes:
    raw = np.packbits(items.reshape(-1)).tobytes() if K == 2 else items.tobytes()
    if not progress or len(raw) < LZMA_PROGRESS_BYTES:
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    # Fed in chunks for a progress bar (about 1.4 MB/s here, so seconds on large inputs); the
    # stream is the same bytes as the one-shot call's (liblzma does not depend on the chunking).
    chunk, out = max(1, LZMA_PROGRESS_BYTES >> 2), []
    encoder = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    with Progress(len(raw), "lzma2 fallback", "bytes") as bar:
        for start in range(0, len(raw), chunk):
            out.append(encoder.compress(raw[start:start + chunk]))
            bar.update(len(raw[start:start + chunk]))
    return b"".join(out) + encoder.flush()


def seed_items(data: bytes, count: int, shape, K: int) -> np.ndarray:
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
        raw = dec.decompress(data, max_length=count * math.prod(shape) + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"corrupt seed stream ({e})") from None
    D = count * math.prod(shape)
    if K == 2:
        bits = np.unpackbits(np.frombuffer(raw, np.uint8))
        if len(raw) != (D + 7) // 8:
            raise FormatError("seed stream has the wrong length")
        return bits[:D].reshape(count, *shape)
    if len(raw) != D:
        raise FormatError("seed stream has the wrong length")
    return np.frombuffer(raw, np.uint8).reshape(count, *shape).copy()


def words(data: bytes) -> np.ndarray:
    return np.frombuffer(data + b"\0" * (-len(data) % 4), dtype="<u4").astype(np.uint32)
