"""Container format v2 (documented in docs/format.md): header, ANS words, checksums.

Every field is validated against sane limits and against the file size before anything is
allocated from it, so a hostile file ends in a ``FormatError`` naming what is wrong.
"""
from __future__ import annotations

import hashlib
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

MAGIC = b"BFN\x1a"
VERSION = 2  # 2: adds the time-grid power after r
MAX_HEADER = 1 << 16
MAX_ITEMS = 1 << 32
MAX_DIMS = 1 << 24  # variables per item
MAX_STEPS = 10_000
# The codec settings a file may carry: the encoder refuses anything outside these, so it never
# writes a file the decoder would reject (codec_settings_problem, used by both sides).
R_RANGE = (0.1, 64.0)  # grid ratio r: delta_i = sigma_i / r
GRID_POWER_RANGE = (0.125, 8.0)  # time grid t_i = (i/n)^p
MAX_BATCH = 4096  # items per lockstep batch (bounds the decoder's memory)
MAX_BATCHES = 1 << 20  # batches per file (the schedule is expanded in memory)
# A batch of B items needs [B, D, K] float64 tables (output probabilities, posteriors): at most
# this many entries (512 MiB each), so a hostile header cannot make the decoder allocate more.
# The encoder caps its batches to the same bound.
MAX_TABLE_ENTRIES = 1 << 26
# LZMA2 expands at most ~6,900:1 (measured: 10^8 zero bytes -> 14,617 bytes with our filters),
# so a seed of s bytes cannot hold more than this many raw bytes: checked before decompressing.
SEED_MAX_RATIO = 8192
DATA_TYPES = {1: "discrete", 2: "discretised"}
DATA_TYPE_CODES = {v: k for k, v in DATA_TYPES.items()}
LAYOUTS = {0: "NHW", 1: "HW", 2: "NCHW", 3: "IDX"}  # IDX: (N, H, W) read from an IDX file
SEED_CODECS = {0: "lzma"}


class FormatError(Exception):
    """The input is not a valid bfn-codec file, or it does not decode to the data it claims."""


def codec_settings_problem(steps, r, grid_power) -> str | None:
    """What is wrong with (n, r, p) for a file, or None: the one rule the encoder's ValueError
    and the reader's FormatError share."""
    if not (isinstance(steps, (int, np.integer)) and 1 <= steps <= MAX_STEPS):
        return f"invalid number of steps n={steps} (1..{MAX_STEPS})"
    if not (math.isfinite(r) and R_RANGE[0] <= r <= R_RANGE[1]):
        return f"invalid grid ratio r={r} ({R_RANGE[0]:g}..{R_RANGE[1]:g})"
    if not (math.isfinite(grid_power) and GRID_POWER_RANGE[0] <= grid_power <= GRID_POWER_RANGE[1]):
        return f"invalid time-grid power {grid_power} ({GRID_POWER_RANGE[0]:g}..{GRID_POWER_RANGE[1]:g})"
    return None


@dataclass
class Header:
    data_type: str
    K: int
    schedule_param: float  # beta(1) for discrete data, sigma_1 for discretised data
    item_shape: tuple  # (C, H, W)
    count: int  # number of items
    layout: str  # how the user's array was shaped: NHW, HW or NCHW
    steps: int
    r: float
    seed_items: int  # items coded by the fallback coder (the bottom of the ANS stack)
    seed_bytes: int  # length of the fallback stream inside the ANS words
    seed_codec: str
    batches: list = field(default_factory=list)  # lockstep batch sizes, in encoding order
    model_id: str = ""
    model_sha256: bytes = b"\0" * 32
    fingerprint: str = ""
    data_sha256: bytes = b"\0" * 32
    num_words: int = 0
    grid_power: float = 1.0  # time grid t_i = (i/n)^grid_power (1: the paper's uniform grid)

    @property
    def dims(self) -> int:
        return int(np.prod(self.item_shape))


def _rle(values):
    out = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out


def _varint(value: int) -> bytes:
    """Unsigned LEB128."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _pack_str(s: str) -> bytes:
    b = s.encode("utf-8")
    if len(b) > 255:
        raise ValueError("string field too long")
    return struct.pack("<B", len(b)) + b


def write(header: Header, words: np.ndarray) -> bytes:
    h = bytearray()
    h += struct.pack("<BHd", DATA_TYPE_CODES[header.data_type], header.K, header.schedule_param)
    h += struct.pack("<B", len(header.item_shape)) + struct.pack(f"<{len(header.item_shape)}I", *header.item_shape)
    h += struct.pack("<QB", header.count, {v: k for k, v in LAYOUTS.items()}[header.layout])
    h += struct.pack("<Idd", header.steps, header.r, header.grid_power)
    h += struct.pack("<QQB", header.seed_items, header.seed_bytes, {v: k for k, v in SEED_CODECS.items()}[header.seed_codec])
    runs = _rle(header.batches)
    h += struct.pack("<I", len(runs)) + b"".join(_varint(v) + _varint(c) for v, c in runs)
    h += _pack_str(header.model_id) + header.model_sha256
    h += _pack_str(header.fingerprint) + header.data_sha256
    h += struct.pack("<Q", len(words))
    if len(h) > MAX_HEADER:
        raise ValueError("header too large")
    body = MAGIC + struct.pack("<HHI", VERSION, 0, len(h)) + bytes(h) + np.asarray(words, dtype="<u4").tobytes()
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


class _Reader:
    def __init__(self, buf: bytes, start: int, end: int):
        self.buf, self.pos, self.end = buf, start, end

    def take(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        if self.pos + size > self.end:
            raise FormatError(f"header truncated while reading {what}")
        vals = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return vals if len(vals) > 1 else vals[0]

    def raw(self, size: int, what: str) -> bytes:
        if self.pos + size > self.end:
            raise FormatError(f"header truncated while reading {what}")
        b = bytes(self.buf[self.pos:self.pos + size])
        self.pos += size
        return b

    def varint(self, what: str) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take("<B", what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 35:
                raise FormatError(f"{what}: number too large")

    def string(self, what: str) -> str:
        n = self.take("<B", what)
        try:
            return self.raw(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{what} is not valid UTF-8") from None


def read(blob: bytes) -> tuple[Header, np.ndarray]:
    """Parse and validate a container; returns the header and the ANS words."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise FormatError("expected bytes")
    blob = bytes(blob)
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise FormatError("not a bfn-codec file (bad magic bytes)")
    if len(blob) < 16:
        raise FormatError("file truncated (shorter than the fixed header)")
    version, flags, hlen = struct.unpack_from("<HHI", blob, 4)
    if version != VERSION:
        raise FormatError(f"unsupported format version {version} (this build reads version {VERSION})")
    if flags != 0:
        raise FormatError(f"unknown format flags 0x{flags:04x}")
    if hlen > MAX_HEADER:
        raise FormatError(f"header length {hlen} exceeds the limit of {MAX_HEADER} bytes")
    if 12 + hlen + 4 > len(blob):
        raise FormatError(f"file truncated: header length {hlen} runs past the end of the file")
    crc_stored = struct.unpack_from("<I", blob, len(blob) - 4)[0]
    r = _Reader(blob, 12, 12 + hlen)
    code, K, param = r.take("<BHd", "data type")
    if code not in DATA_TYPES:
        raise FormatError(f"unknown data type code {code}")
    if K < 2:
        raise FormatError(f"invalid number of classes K={K}")
    if not (np.isfinite(param) and param > 0):
        raise FormatError(f"invalid schedule parameter {param}")
    ndim = r.take("<B", "item shape")
    if ndim != 3:
        raise FormatError(f"item shape must have 3 dimensions, header says {ndim}")
    shape = tuple(r.take(f"<{ndim}I", "item shape"))
    if any(s == 0 for s in shape) or math.prod(shape) > MAX_DIMS:  # Python ints: no overflow
        raise FormatError(f"invalid item shape {shape}")
    count, layout = r.take("<QB", "item count")
    if count > MAX_ITEMS:
        raise FormatError(f"item count {count} exceeds the limit {MAX_ITEMS}")
    if layout not in LAYOUTS:
        raise FormatError(f"unknown array layout code {layout}")
    if LAYOUTS[layout] != "NCHW" and shape[0] != 1:
        raise FormatError(f"layout {LAYOUTS[layout]} needs one channel, the item shape is {shape}")
    if LAYOUTS[layout] == "HW" and count != 1:
        raise FormatError(f"layout HW holds one item, the header says {count}")
    steps, rr, grid_power = r.take("<Idd", "steps")
    problem = codec_settings_problem(steps, rr, grid_power)
    if problem:
        raise FormatError(problem)
    seed_items, seed_bytes, seed_codec = r.take("<QQB", "seed")
    if seed_codec not in SEED_CODECS:
        raise FormatError(f"unknown seed codec {seed_codec}")
    if seed_items > count:
        raise FormatError(f"seed covers {seed_items} items but the file holds {count}")
    if seed_bytes > len(blob):
        raise FormatError(f"seed length {seed_bytes} exceeds the file size")
    seed_raw = seed_items * math.prod(shape)
    seed_raw = (seed_raw + 7) // 8 if K == 2 else seed_raw  # K = 2: bit-packed
    if seed_raw > SEED_MAX_RATIO * seed_bytes + 1024:
        raise FormatError(f"a seed of {seed_bytes} bytes cannot hold {seed_items} items")
    nruns = r.take("<I", "batch schedule")
    if nruns * 2 > hlen:
        raise FormatError(f"batch schedule length {nruns} runs past the header")
    batches, total, nbatches = [], 0, 0
    runs = []
    for _ in range(nruns):
        size, rep = r.varint("batch schedule"), r.varint("batch schedule")
        if size == 0 or rep == 0:
            raise FormatError("batch schedule has an empty batch")
        if size > MAX_BATCH:
            raise FormatError(f"batch of {size} items exceeds the limit of {MAX_BATCH}")
        if size * math.prod(shape) * K > MAX_TABLE_ENTRIES:
            raise FormatError(f"batch of {size} items needs tables of {size * math.prod(shape) * K} "
                              f"entries, over the limit of {MAX_TABLE_ENTRIES}")
        total += size * rep
        nbatches += rep
        if nbatches > MAX_BATCHES:
            raise FormatError(f"batch schedule has more than {MAX_BATCHES} batches")
        if total > count:
            raise FormatError("batch schedule covers more items than the file holds")
        runs.append((size, rep))
    if total + seed_items != count:
        raise FormatError(f"batches ({total}) and seed ({seed_items}) do not add up to {count} items")
    for size, rep in runs:
        batches.extend([size] * rep)
    model_id = r.string("model id")
    model_sha = r.raw(32, "model checksum")
    fingerprint = r.string("fingerprint")
    data_sha = r.raw(32, "data checksum")
    num_words = r.take("<Q", "word count")
    if r.pos != 12 + hlen:
        raise FormatError("header length does not match its fields")
    payload = 12 + hlen
    if payload + 4 * num_words + 4 != len(blob):
        raise FormatError(f"file size {len(blob)} does not match the header ({num_words} words): "
                          "truncated or trailing garbage")
    if zlib.crc32(blob[:-4]) & 0xFFFFFFFF != crc_stored:
        raise FormatError("file is corrupt (CRC-32 mismatch)")
    if 4 * num_words < seed_bytes:
        raise FormatError("seed is longer than the coded stream")
    words = np.frombuffer(blob, dtype="<u4", count=num_words, offset=payload).astype(np.uint32)
    header = Header(DATA_TYPES[code], K, param, shape, count, LAYOUTS[layout], steps, rr,
                    seed_items, seed_bytes, SEED_CODECS[seed_codec], batches, model_id, model_sha,
                    fingerprint, data_sha, num_words, grid_power)
    return header, words


def data_checksum(items: np.ndarray, layout: str) -> bytes:
    """SHA-256 over the layout code, the array shape and the items (uint8, C order), so that
    neither the values nor the shape of what decompress returns can change unnoticed."""
    items = np.ascontiguousarray(items, dtype=np.uint8)
    code = {v: k for k, v in LAYOUTS.items()}[layout]
    head = struct.pack("<B", code) + struct.pack(f"<{items.ndim}Q", *items.shape)
    return hashlib.sha256(head + items.tobytes()).digest()
