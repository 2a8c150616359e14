"""The yardsticks users compare a compressor with: the same bytes through xz and zstd.

xz is Python's lzma module (always there); zstd is the ``zstandard`` package, optional: where it
is not installed, ``zstd_bytes`` returns None and callers leave the column out.
"""
from __future__ import annotations

import lzma


def xz_bytes(data: bytes) -> bytes:
    """``xz -9e``: the .xz container, preset 9 with the extreme flag."""
    return lzma.compress(data, format=lzma.FORMAT_XZ, preset=9 | lzma.PRESET_EXTREME)


def zstd_bytes(data: bytes, level: int = 19) -> bytes | None:
    """``zstd -19`` (a single frame with the content size), or None without ``zstandard``."""
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard.ZstdCompressor(level=level).compress(data)


def classical_sizes(data: bytes) -> dict:
    """{"xz": bytes, "zstd": bytes or None} for ``data``, each checked to decode back to it."""
    xz = xz_bytes(data)
    if lzma.decompress(xz) != data:  # pragma: no cover - a broken lzma build
        raise RuntimeError("xz round trip failed")
    sizes = {"xz": len(xz), "zstd": None}
    zs = zstd_bytes(data)
    if zs is not None:
        import zstandard

        if zstandard.ZstdDecompressor().decompress(zs) != data:  # pragma: no cover
            raise RuntimeError("zstd round trip failed")
        sizes["zstd"] = len(zs)
    return sizes
