"""Any file as items of the binary data type: windows of 256 bytes, 8 binary variables per byte.

A byte has 256 outcomes. Coding it as one K = 256 discrete variable would cost a 255-dimensional
sufficient statistic per byte and step in the coder; coding its 8 bits as 8 binary variables
(K = 2) costs 8 per byte and step and reuses the binary flow, its portable arithmetic and its
golden files unchanged (docs/text.md). The network sees every bit of the window at once, so the
factorisation costs nothing in what the model can express about the joint distribution of a
window: the BFN models the bits jointly through the network, not independently.

Layout of one window (the item shape ``ITEM_SHAPE`` = (8, 4, 64)): channel j holds bit 7 - j of
every byte (most significant first). The 256 bytes sit on the 4 x 64 grid so that every 2 x 2
block holds 4 consecutive bytes (bytes 4b..4b+3 in block b, blocks in raster order, 32 per row):
the U-Net first folds 2 x 2 blocks into channels, and then each position of its trunk holds 4
consecutive bytes and its horizontal neighbours are the 4-byte groups before and after.

The last window of a file is padded with zero bytes; the file's true length travels in the
container, so the padding is dropped on decode.
"""
from __future__ import annotations

import numpy as np

WINDOW = 256  # bytes per item (the paper's text8 sequence length)
BITS = 8
ITEM_SHAPE = (BITS, 4, 64)


def _positions() -> np.ndarray:
    """flat grid index (row * 64 + column) of byte i of a window, i = 0..255."""
    i = np.arange(WINDOW)
    block, k = i // 4, i % 4
    rows = 2 * (block // 32) + k // 2
    cols = 2 * (block % 32) + k % 2
    return rows * ITEM_SHAPE[2] + cols


POSITIONS = _positions()
_SHIFTS = np.arange(BITS - 1, -1, -1, dtype=np.uint8)  # channel j <- bit 7 - j


def windows_needed(length: int) -> int:
    return -(-int(length) // WINDOW)


def padded_windows(values: np.ndarray, pad: int = 0) -> np.ndarray:
    """uint8 ``values`` (one per position) as [N, 256] windows, the last one filled with ``pad``."""
    n = windows_needed(values.size)
    padded = np.full(n * WINDOW, pad, dtype=np.uint8)
    padded[:values.size] = values
    return padded.reshape(n, WINDOW)


def on_grid(windows: np.ndarray) -> np.ndarray:
    """[N, C, 256] values per window position -> [N, C, 4 * 64] in the grid order (POSITIONS)."""
    grid = np.zeros(windows.shape[:-1] + (ITEM_SHAPE[1] * ITEM_SHAPE[2],), dtype=windows.dtype)
    grid[..., POSITIONS] = windows
    return grid


def window_starts(raw: np.ndarray, stride: int) -> np.ndarray:
    """The values of every whole window of ``raw`` starting at multiples of ``stride``, flat."""
    starts = np.arange(0, raw.size - WINDOW + 1, stride)
    return raw[starts[:, None] + np.arange(WINDOW)].reshape(-1)


def to_items(data: bytes | np.ndarray) -> np.ndarray:
    """The bytes as uint8 items [N, 8, 4, 64] of bits (N = ceil(len / 256), the last one padded
    with zero bytes; no bytes: no items)."""
    raw = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) \
        else np.asarray(data, dtype=np.uint8).reshape(-1)
    windows = padded_windows(raw)
    bits = (windows[:, :, None] >> _SHIFTS) & 1  # [N, 256, 8]
    return on_grid(bits.transpose(0, 2, 1)).reshape(len(windows), *ITEM_SHAPE)


def from_items(items: np.ndarray, length: int) -> bytes:
    """The first ``length`` bytes of the windows ``items`` [N, 8, 4, 64] (``to_items`` inverted)."""
    items = np.asarray(items, dtype=np.uint8)
    if items.ndim != 4 or items.shape[1:] != ITEM_SHAPE:
        raise ValueError(f"byte windows have shape (N, {', '.join(map(str, ITEM_SHAPE))}), got {items.shape}")
    if not 0 <= length <= items.shape[0] * WINDOW:
        raise ValueError(f"{items.shape[0]} windows hold at most {items.shape[0] * WINDOW} bytes, not {length}")
    bits = items.reshape(len(items), BITS, WINDOW)[:, :, POSITIONS]  # [N, 8, 256]
    values = (bits.astype(np.uint16) << _SHIFTS[None, :, None]).sum(1).astype(np.uint8)
    return values.reshape(-1)[:length].tobytes()


def corpus_items(data: bytes, stride: int = WINDOW) -> np.ndarray:
    """Training items: every whole window of ``data`` starting at multiples of ``stride``."""
    return to_items(window_starts(np.frombuffer(data, dtype=np.uint8), stride))
