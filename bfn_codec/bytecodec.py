"""Any file's bytes through a byte model, beside LZMA2 and the stored bytes (container version 6).

The bytes become windows (bytestream.py); a byte model codes them as one version-3 file (its
chain and LZMA2 seed, api.compress_with_stats), and auto mode keeps the smallest of that, raw
LZMA2 of the bytes and the bytes themselves. Before running the chain (n + 1 network calls per
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

from . import bytestream
from .bytefile import ByteFile, bytes_checksum, read_bytefile, stream_bytes, write_bytefile
from .container import FormatError
from .seed import LZMA_FILTERS

PROBE_WINDOWS = 16  # windows the model's estimate is computed on
PROBE_MARGIN = 0.98  # the chain is run when its estimate is below this fraction of the classical size


@dataclass
class Coding:
    encode_items: Callable  # (items [N, 8, 4, 64], model) -> (version-3/4 file, stats)
    decode_items: Callable  # version-3/4 file -> items
    model: Callable  # () -> the byte model (loaded on first use), or None when there is none
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
    """The version-6 file of ``data`` and its statistics (stream, candidate sizes, probe)."""
    data = bytes(data)
    candidates = {"stored": data}
    stats: dict = {"mode": "bytes", "length": len(data)}
    if data and coding.mode != "bfn":
        candidates["lzma2"] = lzma2(data)
    model = coding.model() if data and coding.mode != "fallback" else None
    if model is not None:
        items = bytestream.to_items(data)
        run = coding.mode == "bfn"
        if not run:
            best = min(len(c) for c in candidates.values())
            if coding.estimate_bits is None:
                run = True
            else:
                sample = probe_windows(items)
                per_window = float(np.mean(coding.estimate_bits(sample, model)))
                estimate = per_window * len(items) / 8
                stats["probe"] = {"windows": len(sample), "estimate_bytes": round(estimate),
                                  "classical_bytes": best}
                run = estimate < PROBE_MARGIN * best
        if run:
            blob, item_stats = coding.encode_items(items, model)
            candidates["bfn"] = blob
            stats["items"] = item_stats
            stats["model"] = model.name
    if coding.mode == "bfn" and "bfn" not in candidates and data:
        raise ValueError("mode bfn needs a byte model, and none is installed: pass one with --model")
    stream = "bfn" if coding.mode == "bfn" and data else min(candidates, key=lambda k: len(candidates[k]))
    stats["stream"] = stream
    stats["candidates"] = {k: len(v) for k, v in candidates.items()}
    index = ByteFile(name, len(data), stream, len(candidates[stream]), bytes_checksum(data, name)[:8])
    return write_bytefile(index, candidates[stream]), stats


def decompress(blob, coding_decode: Callable) -> tuple[str, bytes]:
    """(name, bytes) of a version-6 file, checked against its checksum."""
    index = read_bytefile(blob)
    stream = stream_bytes(blob, index)
    if index.stream == "stored":
        data = stream
    elif index.stream == "lzma2":
        data = unlzma2(stream, index.length)
    else:
        items = np.asarray(coding_decode(stream))
        if items.ndim != 4 or items.shape[1:] != bytestream.ITEM_SHAPE or \
                len(items) != bytestream.windows_needed(index.length):
            raise FormatError(f"the BFN stream holds items of shape {items.shape}, not the "
                              f"{bytestream.windows_needed(index.length)} windows of {index.length} bytes")
        data = bytestream.from_items(items, index.length)
    if bytes_checksum(data, index.name)[:len(index.data_hash)] != index.data_hash:
        raise FormatError("decoded bytes do not match the stored checksum: the file is corrupt")
    return index.name, data
