"""text8-style text as items of the discrete data type with K = 27: windows of 256 characters.

The paper's text experiment (Graves et al. 2023, §6.3) models text8: lower-case English with the
27 characters "a".."z" and space, in sequences of 256 characters, each one discrete variable
with K = 27 classes. This module maps text to that alphabet and back:

* ``normalise``: any text to text8 style: ASCII letters lower-cased, every other byte (digits,
  punctuation, newlines, non-ASCII) a space, runs of spaces collapsed to one, no leading or
  trailing space. (text8 itself also spells digits out as words; we drop them.) This is lossy
  and only used to build training and evaluation text; the codec codes exactly what it is given.
* ``is_text8``: bytes the K = 27 model can code exactly (only "a".."z" and space).
* ``to_items`` / ``from_items``: 256 characters per item, class 0 = space, 1..26 = "a".."z", laid
  out on a 4 x 64 grid exactly as bytestream.py lays out bytes (every 2 x 2 block holds 4
  consecutive characters, so the U-Net's first unshuffle sees neighbours). The last window is
  padded with spaces; the true length travels in the container.
"""
from __future__ import annotations

import numpy as np

from .bytestream import POSITIONS, WINDOW, on_grid, padded_windows, window_starts

K = 27
ALPHABET = b" abcdefghijklmnopqrstuvwxyz"  # class k is ALPHABET[k]
ITEM_SHAPE = (1, 4, 64)

_CLASS = np.full(256, 255, dtype=np.uint8)  # byte -> class (255: not in the alphabet)
_CLASS[np.frombuffer(ALPHABET, np.uint8)] = np.arange(K, dtype=np.uint8)
_BYTE = np.frombuffer(ALPHABET, np.uint8)

# normalise: upper-case letters to lower case, everything outside a-z to a space
_FOLD = np.full(256, ord(" "), dtype=np.uint8)
_FOLD[ord("a"):ord("z") + 1] = np.arange(ord("a"), ord("z") + 1)
_FOLD[ord("A"):ord("Z") + 1] = np.arange(ord("a"), ord("z") + 1)


def normalise(data: bytes) -> bytes:
    """``data`` in text8 style (see the module's docstring)."""
    folded = _FOLD[np.frombuffer(data, dtype=np.uint8)]
    space = folded == ord(" ")
    keep = ~space.copy()
    keep[1:] |= space[1:] & ~space[:-1]  # the first space of every run
    out = folded[keep].tobytes()
    return out.strip(b" ")


def is_text8(data: bytes) -> bool:
    """True when every byte of ``data`` is "a".."z" or a space (and there is at least one)."""
    raw = np.frombuffer(data, dtype=np.uint8)
    return raw.size > 0 and bool(np.all(_CLASS[raw] != 255))


def to_items(data: bytes) -> np.ndarray:
    """The characters as uint8 classes in items [N, 1, 4, 64] (N = ceil(len / 256); the last one
    padded with spaces). Raises ValueError on a byte outside the alphabet."""
    raw = np.frombuffer(data, dtype=np.uint8)
    classes = _CLASS[raw]
    if classes.size and classes.max() == 255:
        bad = int(raw[np.argmax(classes == 255)])
        raise ValueError(f"byte {bad:#04x} is not in the text8 alphabet (a-z and space)")
    windows = padded_windows(classes)  # class 0 (space) pads the last window
    return on_grid(windows).reshape(len(windows), *ITEM_SHAPE)


def from_items(items: np.ndarray, length: int) -> bytes:
    """The first ``length`` characters of the windows ``items`` [N, 1, 4, 64]."""
    items = np.asarray(items)
    if items.ndim != 4 or items.shape[1:] != ITEM_SHAPE:
        raise ValueError(f"text8 windows have shape (N, {', '.join(map(str, ITEM_SHAPE))}), got {items.shape}")
    if not 0 <= length <= items.shape[0] * WINDOW:
        raise ValueError(f"{items.shape[0]} windows hold at most {items.shape[0] * WINDOW} characters, not {length}")
    if items.size and (items.min() < 0 or items.max() >= K):
        raise ValueError(f"text8 classes run from 0 to {K - 1}")
    classes = items.reshape(len(items), WINDOW)[:, POSITIONS]
    return _BYTE[classes.astype(np.int64).reshape(-1)[:length]].tobytes()


def corpus_items(text: bytes, stride: int = WINDOW) -> np.ndarray:
    """Training items: every whole window of the already normalised ``text`` starting at
    multiples of ``stride``."""
    return to_items(window_starts(np.frombuffer(text, dtype=np.uint8), stride).tobytes())
