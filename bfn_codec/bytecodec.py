"""Any file's bytes through a byte model, beside LZMA2 and the stored bytes (container version 6).

The bytes become windows under an alphabet (``ALPHABETS``): ``bytes8`` takes any bytes
(bytestream.py, 8 binary variables per byte), ``text8`` only text of "a".."z" and spaces
(text8.py, one K = 27 variable per character). A model of the alphabet codes the windows as one
version-3 file (its chain and LZMA2 seed, api.compress_with_stats), and auto mode keeps the
smallest of the BFN streams of every alphabet that takes the file and has a model, raw LZMA2 of
the bytes and the bytes themselves. Before running the chain (n + 1 network calls per
window), the model's own code length L^n + L^r is estimated on a sample of windows: when that
estimate is not below the classical stream, the chain is not run (random or already compressed
bytes cost their LZMA2 or stored size, not minutes of network time).

This module knows nothing of how items are coded: the caller passes ``Coding`` (api.py builds
it), as for images (imagecodec.py).
"""
from __future__ import annotations

import lzma
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import bytestream, text8
from .bytefile import ByteFile, bytes_checksum, read_bytefile, stream_bytes, write_bytefile
from .container import FormatError
from .seed import LZMA_FILTERS

PROBE_WINDOWS = 16  # windows the model's estimate is computed on
PROBE_MARGIN = 0.98  # the chain is run when its estimate is below this fraction of the classical size


@dataclass(frozen=True)
class Alphabet:
    """How bytes become the items of a data type (bytefile.ALPHABET_CODES names them)."""

    name: str
    item_shape: tuple
    K: int  # classes per variable (discrete data)
    accepts: Callable[[bytes], bool]  # can these bytes be coded exactly?
    to_items: Callable[[bytes], np.ndarray]
    from_items: Callable[[np.ndarray, int], bytes]
    unit: str  # what one position of a window holds


# In the order auto mode tries them: the narrower alphabet first (its model, when it takes a
# file at all, knows more about it, and its stream then sets the bar the next must beat).
ALPHABETS = {
    "text8": Alphabet("text8", text8.ITEM_SHAPE, text8.K, text8.is_text8, text8.to_items, text8.from_items,
                      "character"),
    "bytes8": Alphabet("bytes8", bytestream.ITEM_SHAPE, 2, lambda data: True, bytestream.to_items,
                       bytestream.from_items, "byte"),
}


def alphabet_of(model) -> str | None:
    """The alphabet whose windows ``model`` codes (by its item shape and classes), or None."""
    for a in ALPHABETS.values():
        if tuple(model.shape) == a.item_shape and model.flow.data_type == "discrete" and model.flow.K == a.K:
            return a.name
    return None


@dataclass
class Coding:
    encode_items: Callable  # (items, model) -> (version-3/4 file, stats)
    decode_items: Callable  # version-3/4 file -> items
    model: Callable  # (alphabet name) -> its model (loaded on first use), or None when there is none
    mode: str  # "auto", "bfn" or "fallback"
    estimate_bits: Callable | None = None  # (items, model) -> L^n + L^r in bits per item, or None


def lzma2(data: bytes) -> bytes:
    return lzma.compress(data, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)


def unlzma2(stream: bytes, length: int) -> bytes:
    try:
        data = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS).decompress(
            stream, max_length=length + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"corrupt LZMA2 stream ({e})") from None
    if len(data) != length:
        raise FormatError(f"the LZMA2 stream holds {len(data)} bytes, the header says {length}")
    return data


def probe_windows(items: np.ndarray) -> np.ndarray:
    """Up to PROBE_WINDOWS windows spread evenly over the file (the same ones on every run)."""
    if len(items) <= PROBE_WINDOWS:
        return items
    return items[np.linspace(0, len(items) - 1, PROBE_WINDOWS).round().astype(int)]


def compress(data: bytes, name: str, coding: Coding) -> tuple[bytes, dict]:
    """The version-6 file of ``data`` and its statistics (stream, candidate sizes, probes).

    Mode bfn codes with the first alphabet that takes the file and has a model; auto mode
    probes each such alphabet in turn and runs its chain only when the estimate is below the
    smallest stream so far."""
    data = bytes(data)
    candidates = {"stored": data}
    alphabet_used = {}  # BFN candidates: "bfn:ALPHABET" -> alphabet
    stats: dict = {"mode": "bytes", "length": len(data), "probes": {}}
    if data and coding.mode != "bfn":
        candidates["lzma2"] = lzma2(data)
    chosen_bfn = None
    for alphabet in ALPHABETS.values() if data and coding.mode != "fallback" else ():
        if not alphabet.accepts(data):
            continue
        model = coding.model(alphabet.name)
        if model is None:
            continue
        items = alphabet.to_items(data)
        run = coding.mode == "bfn"
        if not run:
            best = min(len(c) for c in candidates.values())
            if coding.estimate_bits is None:
                run = True
            else:
                sample = probe_windows(items)
                per_window = float(np.mean(coding.estimate_bits(sample, model)))
                estimate = per_window * len(items) / 8
                stats["probes"][alphabet.name] = {"windows": len(sample), "estimate_bytes": round(estimate),
                                                  "classical_bytes": best, "model": model.name}
                run = estimate < PROBE_MARGIN * best
        if run:
            blob, item_stats = coding.encode_items(items, model)
            key = f"bfn:{alphabet.name}"
            candidates[key] = blob
            alphabet_used[key] = alphabet.name
            stats.setdefault("bfn", {})[alphabet.name] = {"model": model.name, "items": item_stats}
        if coding.mode == "bfn" and f"bfn:{alphabet.name}" in candidates:
            chosen_bfn = f"bfn:{alphabet.name}"
            break
    if coding.mode == "bfn" and chosen_bfn is None and data:
        raise ValueError("mode bfn needs a model for this file's bytes, and none is installed or given "
                         "(a text8 model codes only a-z and spaces): pass one with --model")
    key = chosen_bfn if chosen_bfn else min(candidates, key=lambda k: len(candidates[k]))
    stream = "bfn" if key.startswith("bfn:") else key
    stats["stream"] = stream
    if stream == "bfn":
        stats["alphabet"] = alphabet_used[key]
        stats["model"] = stats["bfn"][alphabet_used[key]]["model"]
        stats["items"] = stats["bfn"][alphabet_used[key]]["items"]
    stats["candidates"] = {k: len(v) for k, v in candidates.items()}
    index = ByteFile(name, len(data), stream, len(candidates[key]), bytes_checksum(data, name)[:8],
                     alphabet_used.get(key, "bytes8"))
    return write_bytefile(index, candidates[key]), stats


def decompress(blob, coding_decode: Callable) -> tuple[str, bytes]:
    """(name, bytes) of a version-6 file, checked against its checksum."""
    index = read_bytefile(blob)
    stream = stream_bytes(blob, index)
    if index.stream == "stored":
        data = stream
    elif index.stream == "lzma2":
        data = unlzma2(stream, index.length)
    else:
        alphabet = ALPHABETS[index.alphabet]
        items = np.asarray(coding_decode(stream))
        needed = bytestream.windows_needed(index.length)
        if items.ndim != 4 or items.shape[1:] != alphabet.item_shape or len(items) != needed:
            raise FormatError(f"the BFN stream holds items of shape {items.shape}, not the {needed} "
                              f"{alphabet.name} windows of {index.length} bytes")
        if items.size and items.max() >= alphabet.K:
            raise FormatError(f"the BFN stream holds classes beyond the {alphabet.name} alphabet")
        data = alphabet.from_items(items, index.length)
    if bytes_checksum(data, index.name)[:len(index.data_hash)] != index.data_hash:
        raise FormatError("decoded bytes do not match the stored checksum: the file is corrupt")
    return index.name, data
