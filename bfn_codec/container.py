"""Container format (documented in docs/format.md): header, payload, checksums.

Version 3 is written: varints throughout, so the fixed cost of a file is a few dozen bytes
(a fallback-mode file, which needs no model, carries no model or environment at all).
Version 2 files (0.1.0) are still read.

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

# The codec settings a file may carry: the encoder refuses anything outside these, so it never
# writes a file the decoder would reject (codec_settings_problem, used by both sides).
from .limits import GRID_POWER_RANGE, MAX_STEPS, R_RANGE  # noqa: F401 - part of the format

MAGIC = b"BFN\x1a"
VERSION = 3  # 3: compact varint header; 2: adds the time-grid power after r; 1: first files
ARCHIVE_VERSION = 4  # an index over independent version-3 files of consecutive items (chunks)
READ_VERSIONS = (2, 3, 4)
MAX_CHUNKS = 1 << 20
MAX_HEADER = 1 << 16  # version 2's header-length limit
MAX_ITEMS = 1 << 32
MAX_DIMS = 1 << 24  # variables per item
MAX_K = (1 << 16) - 1
MAX_THREADS = 1024
# r and p are stored as integers in units of 1/SETTING_UNIT (r = 2 is 2048: two varint bytes,
# where a float64 takes eight); the encoder rounds to this grid before coding (quantise_setting),
# so encoder and decoder use the same value.
SETTING_UNIT = 1024
MAX_BATCH = 4096  # items per lockstep batch (bounds the decoder's memory)
MAX_BATCHES = 1 << 20  # batches per file (the schedule is expanded in memory)
# A batch of B items needs [B, D, K] float64 tables (output probabilities, posteriors): at most
# this many entries (512 MiB each), so a hostile header cannot make the decoder allocate more.
# The encoder caps its batches to the same bound.
MAX_TABLE_ENTRIES = 1 << 26
# LZMA2 expands at most ~6,900:1 (measured: 10^8 zero bytes -> 14,617 bytes with our filters),
# so a seed of s bytes cannot hold more than this many raw bytes: checked before decompressing.
SEED_MAX_RATIO = 8192
MODEL_HASH_BYTES = 8  # a prefix of the weights' SHA-256: tells models apart, not a security seal
DATA_HASH_BYTES = 8  # a prefix of data_checksum: a wrong decode passes with probability 2^-64
ENV_DIGEST_BYTES = 4
DATA_TYPES = {1: "discrete", 2: "discretised"}
DATA_TYPE_CODES = {v: k for k, v in DATA_TYPES.items()}
LAYOUTS = {0: "NHW", 1: "HW", 2: "NCHW", 3: "IDX"}  # IDX: (N, H, W) read from an IDX file
LAYOUT_CODES = {v: k for k, v in LAYOUTS.items()}
SEED_CODECS = {0: "lzma"}
# version 3 flags byte: bits 0-1 data type, bits 2-4 layout, bit 5 chain mode, bit 6 model name,
# bit 7 the trajectory cost (chain mode only)
FLAG_CHAIN, FLAG_NAME, FLAG_TRAJECTORY = 1 << 5, 1 << 6, 1 << 7


class FormatError(Exception):
    """The input is not a valid bfn-codec file, or it does not decode to the data it claims."""


def quantise_setting(value: float) -> float:
    """The nearest value a file can carry for r or p (a multiple of 1/SETTING_UNIT)."""
    value = float(value)
    return round(value * SETTING_UNIT) / SETTING_UNIT if math.isfinite(value) else value


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


def environment_digest(environment: str) -> bytes:
    """The 4 bytes a version-3 file keeps of the encoder's environment description."""
    return hashlib.sha256(environment.encode("utf-8")).digest()[:ENV_DIGEST_BYTES]


@dataclass
class Header:
    """What a file says about its contents. Fallback-mode files (no batches) use only the
    first group of fields: they decode without a model."""
    data_type: str
    K: int
    item_shape: tuple  # (C, H, W)
    count: int  # number of items
    layout: str  # how the user's array was shaped: NHW, HW, NCHW or IDX
    data_hash: bytes = b""  # a prefix of data_checksum (8 bytes; 32 in version 2)
    seed_items: int = 0  # items coded by the fallback coder (the bottom of the ANS stack)
    seed_bytes: int = 0  # length of the fallback stream
    seed_codec: str = "lzma"
    # chain mode only
    batches: list = field(default_factory=list)  # lockstep batch sizes, in encoding order
    steps: int = 0
    r: float = 0.0
    grid_power: float = 0.0  # time grid t_i = (i/n)^grid_power (1: the paper's uniform grid)
    model_hash: bytes = b""  # a prefix of the weights' SHA-256 (8 bytes; 32 in version 2)
    model_id: str = ""  # the model's name; version 3 writes it only for models not bundled
    coder_revision: int = 0
    threads: int = 1  # torch threads of the encoder: float32 results depend on it
    environment_digest: bytes = b""  # environment_digest() of the encoder's environment
    environment: str = ""  # the environment in words (version 2 files only)
    # The encoder's estimate, in whole bits, of the ideal code length (L^r + the L^n terms) of
    # the message trajectories it coded, for the chain items only (None: not recorded, as in
    # files written before it was added). ``info`` compares the chain's achieved bits with it.
    trajectory_bits: int | None = None
    version: int = VERSION

    @property
    def dims(self) -> int:
        return math.prod(self.item_shape)

    @property
    def mode(self) -> str:
        return "bfn" if self.batches else "fallback"


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
    if value < 0:
        raise ValueError("varints are unsigned")
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


def write(header: Header, payload: bytes) -> bytes:
    """A version-3 file: ``payload`` is the raw LZMA2 seed in fallback mode (no batches), the
    ANS words (little-endian u32) in chain mode."""
    chain = bool(header.batches)
    flags = DATA_TYPE_CODES[header.data_type] | LAYOUT_CODES[header.layout] << 2
    flags |= (FLAG_CHAIN if chain else 0) | (FLAG_NAME if chain and header.model_id else 0)
    flags |= FLAG_TRAJECTORY if chain and header.trajectory_bits is not None else 0
    h = bytearray(MAGIC + bytes([VERSION, flags]))
    h += _varint(header.K) + b"".join(_varint(s) for s in header.item_shape) + _varint(header.count)
    if chain:
        h += _varint(header.steps) + _varint(round(header.r * SETTING_UNIT))
        h += _varint(round(header.grid_power * SETTING_UNIT))
        h += _varint(header.seed_items) + _varint(header.seed_bytes)
        runs = _rle(header.batches)
        h += _varint(len(runs)) + b"".join(_varint(v) + _varint(c) for v, c in runs)
        h += header.model_hash[:MODEL_HASH_BYTES].ljust(MODEL_HASH_BYTES, b"\0")
        if header.model_id:
            h += _pack_str(header.model_id)
        h += _varint(header.coder_revision) + _varint(header.threads)
        h += header.environment_digest[:ENV_DIGEST_BYTES].ljust(ENV_DIGEST_BYTES, b"\0")
        if header.trajectory_bits is not None:
            h += _varint(header.trajectory_bits)
    h += header.data_hash[:DATA_HASH_BYTES].ljust(DATA_HASH_BYTES, b"\0")
    body = bytes(h) + bytes(payload)
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

    def varint(self, what: str, limit: int = 1 << 64) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take("<B", what)
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 63:
                raise FormatError(f"{what}: number too large")
        if value > limit:
            raise FormatError(f"{what}: {value} exceeds the limit of {limit}")
        return value

    def string(self, what: str) -> str:
        n = self.take("<B", what)
        try:
            return self.raw(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError(f"{what} is not valid UTF-8") from None


def read(blob: bytes) -> tuple[Header, bytes]:
    """Parse and validate a container; returns the header and the payload (the raw seed in a
    version-3 fallback file, ANS words otherwise)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise FormatError("expected bytes")
    blob = bytes(blob)
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise FormatError("not a bfn-codec file (bad magic bytes)")
    if len(blob) < 6:
        raise FormatError("file truncated (shorter than the fixed header)")
    if blob[4] == 2:
        return _read_v2(blob)
    if blob[4] == ARCHIVE_VERSION:
        raise FormatError("this is a chunked file (format version 4): read it with read_archive")
    if blob[4] != VERSION:
        raise FormatError(f"unsupported format version {blob[4]} (this build reads versions "
                          f"{', '.join(map(str, READ_VERSIONS))})")
    return _read_v3(blob)


def _check_item_fields(K, shape, count, layout_code):
    if K < 2 or K > MAX_K:
        raise FormatError(f"invalid number of classes K={K}")
    if any(s == 0 for s in shape) or math.prod(shape) > MAX_DIMS:  # Python ints: no overflow
        raise FormatError(f"invalid item shape {shape}")
    if count > MAX_ITEMS:
        raise FormatError(f"item count {count} exceeds the limit {MAX_ITEMS}")
    if layout_code not in LAYOUTS:
        raise FormatError(f"unknown array layout code {layout_code}")
    layout = LAYOUTS[layout_code]
    if layout != "NCHW" and shape[0] != 1:
        raise FormatError(f"layout {layout} needs one channel, the item shape is {shape}")
    if layout == "HW" and count != 1:
        raise FormatError(f"layout HW holds one item, the header says {count}")
    return layout


def _check_seed_size(seed_items, seed_bytes, shape, K):
    raw = seed_items * math.prod(shape)
    raw = (raw + 7) // 8 if K == 2 else raw  # K = 2: bit-packed
    if raw > SEED_MAX_RATIO * seed_bytes + 1024:
        raise FormatError(f"a seed of {seed_bytes} bytes cannot hold {seed_items} items")


def _read_schedule(r: _Reader, count: int, seed_items: int, shape, K, nruns: int) -> list:
    batches, total, nbatches, runs = [], 0, 0, []
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
    return batches


def _check_crc(blob: bytes):
    if zlib.crc32(blob[:-4]) & 0xFFFFFFFF != struct.unpack_from("<I", blob, len(blob) - 4)[0]:
        raise FormatError("file is corrupt (CRC-32 mismatch)")


def _read_v3(blob: bytes) -> tuple[Header, bytes]:
    end = len(blob) - 4  # the CRC-32 closes the file
    if end < 6:
        raise FormatError("file truncated (shorter than the fixed header)")
    flags = blob[5]
    code, layout_code, chain = flags & 3, (flags >> 2) & 7, bool(flags & FLAG_CHAIN)
    if code not in DATA_TYPES:
        raise FormatError(f"unknown data type code {code}")
    if flags & (FLAG_NAME | FLAG_TRAJECTORY) and not chain:
        raise FormatError(f"unknown format flags 0x{flags:02x} (a chain-mode field in a fallback file)")
    r = _Reader(blob, 6, end)
    K = r.varint("number of classes", MAX_K)
    shape = tuple(r.varint("item shape", MAX_DIMS) for _ in range(3))
    count = r.varint("item count", MAX_ITEMS + 1)
    layout = _check_item_fields(K, shape, count, layout_code)
    h = Header(DATA_TYPES[code], K, shape, count, layout, version=3)
    if chain:
        h.steps = r.varint("steps", MAX_STEPS + 1)
        h.r = r.varint("grid ratio", 1 << 32) / SETTING_UNIT
        h.grid_power = r.varint("time-grid power", 1 << 32) / SETTING_UNIT
        problem = codec_settings_problem(h.steps, h.r, h.grid_power)
        if problem:
            raise FormatError(problem)
        h.seed_items = r.varint("seed", MAX_ITEMS + 1)
        h.seed_bytes = r.varint("seed", 1 << 48)
        if h.seed_items > count:
            raise FormatError(f"seed covers {h.seed_items} items but the file holds {count}")
        if h.seed_bytes > len(blob):
            raise FormatError(f"seed length {h.seed_bytes} exceeds the file size")
        _check_seed_size(h.seed_items, h.seed_bytes, shape, K)
        nruns = r.varint("batch schedule", len(blob))
        if 2 * nruns > end - r.pos:  # each run takes at least two bytes
            raise FormatError(f"batch schedule length {nruns} runs past the header")
        h.batches = _read_schedule(r, count, h.seed_items, shape, K, nruns)
        h.model_hash = r.raw(MODEL_HASH_BYTES, "model checksum")
        if flags & FLAG_NAME:
            h.model_id = r.string("model name")
            if not h.model_id:
                raise FormatError("empty model name")
        h.coder_revision = r.varint("coder revision", 1 << 16)
        h.threads = r.varint("thread count", 1 << 32)
        if not 1 <= h.threads <= MAX_THREADS:
            raise FormatError(f"bad thread count {h.threads}")
        h.environment_digest = r.raw(ENV_DIGEST_BYTES, "environment")
        if flags & FLAG_TRAJECTORY:
            # a generous bound (64 bits per value per step and item): more is not from an encoder
            h.trajectory_bits = r.varint("trajectory cost", 64 * count * math.prod(shape) * (h.steps + 1))
    h.data_hash = r.raw(DATA_HASH_BYTES, "data checksum")
    payload = blob[r.pos:end]
    if chain:
        if len(payload) % 4:
            raise FormatError(f"file size {len(blob)} does not match the header (the coded stream "
                              "is not whole words): truncated or trailing garbage")
        if len(payload) < h.seed_bytes:
            raise FormatError("seed is longer than the coded stream")
    else:
        h.seed_items, h.seed_bytes = count, len(payload)
        _check_seed_size(count, len(payload), shape, K)
    _check_crc(blob)
    return h, payload


def _read_v2(blob: bytes) -> tuple[Header, bytes]:
    """Version 2 (0.1.0): fixed-width fields, full SHA-256 sums and the environment in words.
    Its payload is always ANS words (in fallback mode: the sealed seed)."""
    if len(blob) < 16:
        raise FormatError("file truncated (shorter than the fixed header)")
    version, flags, hlen = struct.unpack_from("<HHI", blob, 4)
    if version != 2:
        raise FormatError(f"unsupported format version {version}")
    if flags != 0:
        raise FormatError(f"unknown format flags 0x{flags:04x}")
    if hlen > MAX_HEADER:
        raise FormatError(f"header length {hlen} exceeds the limit of {MAX_HEADER} bytes")
    if 12 + hlen + 4 > len(blob):
        raise FormatError(f"file truncated: header length {hlen} runs past the end of the file")
    r = _Reader(blob, 12, 12 + hlen)
    code, K, param = r.take("<BHd", "data type")
    if code not in DATA_TYPES:
        raise FormatError(f"unknown data type code {code}")
    if not (np.isfinite(param) and param > 0):
        raise FormatError(f"invalid schedule parameter {param}")
    ndim = r.take("<B", "item shape")
    if ndim != 3:
        raise FormatError(f"item shape must have 3 dimensions, header says {ndim}")
    shape = tuple(r.take(f"<{ndim}I", "item shape"))
    count, layout_code = r.take("<QB", "item count")
    layout = _check_item_fields(K, shape, count, layout_code)
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
    _check_seed_size(seed_items, seed_bytes, shape, K)
    nruns = r.take("<I", "batch schedule")
    if nruns * 2 > hlen:
        raise FormatError(f"batch schedule length {nruns} runs past the header")
    batches = _read_schedule(r, count, seed_items, shape, K, nruns)
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
    _check_crc(blob)
    if 4 * num_words < seed_bytes:
        raise FormatError("seed is longer than the coded stream")
    environment, threads, revision = _split_fingerprint(fingerprint)
    header = Header(DATA_TYPES[code], K, shape, count, layout, data_hash=data_sha, seed_items=seed_items,
                    seed_bytes=seed_bytes, seed_codec=SEED_CODECS[seed_codec], batches=batches,
                    steps=steps, r=rr, grid_power=grid_power, model_hash=model_sha, model_id=model_id,
                    coder_revision=revision, threads=threads, environment=environment,
                    environment_digest=environment_digest(environment), version=2)
    return header, blob[payload:payload + 4 * num_words]


def _split_fingerprint(fp: str) -> tuple[str, int, int]:
    """A version-2 fingerprint -> (environment without the thread count, threads, coder revision).
    Files of 0.1.0's first coder carry no ``coder=`` field: revision 1."""
    threads, revision, rest = 1, 1, []
    for part in fp.split(";"):
        key, _, value = part.partition("=")
        if key in ("threads", "coder"):
            try:
                number = int(value)
            except ValueError:
                raise FormatError(f"bad {key} field in fingerprint {fp!r}") from None
            if key == "threads":
                threads = number
                continue
            revision = number
        rest.append(part)
    if not 1 <= threads <= MAX_THREADS:
        raise FormatError(f"bad thread count {threads} in fingerprint")
    return ";".join(rest), threads, revision


def data_checksum(items: np.ndarray, layout: str) -> bytes:
    """SHA-256 over the layout code, the array shape and the items (uint8, C order), so that
    neither the values nor the shape of what decompress returns can change unnoticed."""
    items = np.ascontiguousarray(items, dtype=np.uint8)
    code = LAYOUT_CODES[layout]
    head = struct.pack("<B", code) + struct.pack(f"<{items.ndim}Q", *items.shape)
    return hashlib.sha256(head + items.tobytes()).digest()


# ----- version 4: chunked files ------------------------------------------------------------------
@dataclass
class Chunk:
    """One chunk of a version-4 file: items [first, first + count), a complete version-3 file
    at bytes [offset, offset + length) of the archive."""
    first: int
    count: int
    offset: int
    length: int


@dataclass
class Archive:
    """The index of a version-4 file (``read_archive``): what the whole array is, and where each
    chunk lies. The chunks carry everything else (model, settings, their own checksums)."""
    item_shape: tuple
    count: int
    layout: str
    data_hash: bytes
    chunks: list
    size: int  # bytes of the whole file

    @property
    def header_bytes(self) -> int:
        return self.chunks[0].offset if self.chunks else self.size


def is_archive(blob) -> bool:
    return len(blob) >= 5 and bytes(blob[:4]) == MAGIC and blob[4] == ARCHIVE_VERSION


def write_archive(item_shape, count: int, layout: str, data_hash: bytes, chunks: list) -> bytes:
    """A version-4 file over ``chunks`` [(item count, version-3 file bytes)] of consecutive items.
    The index closes with its own CRC-32, so it can be trusted before any chunk is read (random
    access reads the index and one chunk); each chunk has its own CRC and data checksum, and
    ``data_hash`` covers the whole array."""
    h = bytearray(MAGIC + bytes([ARCHIVE_VERSION, LAYOUT_CODES[layout] << 2]))
    h += b"".join(_varint(s) for s in item_shape) + _varint(count) + _varint(len(chunks))
    h += b"".join(_varint(n) + _varint(len(b)) for n, b in chunks)
    h += data_hash[:DATA_HASH_BYTES].ljust(DATA_HASH_BYTES, b"\0")
    h += struct.pack("<I", zlib.crc32(bytes(h)) & 0xFFFFFFFF)
    return bytes(h) + b"".join(b for _, b in chunks)


def read_archive(blob) -> Archive:
    """Parse and check a version-4 index (not the chunks: ``chunk_bytes`` and ``read`` do that)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise FormatError("expected bytes")
    if not is_archive(blob):
        raise FormatError("not a chunked bfn-codec file")
    if len(blob) < 6:
        raise FormatError("file truncated (shorter than the fixed header)")
    flags = blob[5]
    if flags & ~(7 << 2):
        raise FormatError(f"unknown format flags 0x{flags:02x}")
    r = _Reader(blob, 6, len(blob))
    shape = tuple(r.varint("item shape", MAX_DIMS) for _ in range(3))
    count = r.varint("item count", MAX_ITEMS + 1)
    layout = _check_item_fields(2, shape, count, (flags >> 2) & 7)
    if layout == "HW":
        raise FormatError("a chunked file holds several items, not layout HW")
    nchunks = r.varint("chunk count", MAX_CHUNKS)
    if nchunks == 0 or 2 * nchunks > len(blob) - r.pos:  # each index entry takes at least two bytes
        raise FormatError(f"chunk index of {nchunks} entries does not fit the file")
    sizes = [(r.varint("chunk index", MAX_ITEMS), r.varint("chunk index", len(blob))) for _ in range(nchunks)]
    data_hash = r.raw(DATA_HASH_BYTES, "data checksum")
    crc = r.take("<I", "index checksum")
    if zlib.crc32(bytes(blob[:r.pos - 4])) & 0xFFFFFFFF != crc:
        raise FormatError("file is corrupt (CRC-32 mismatch in the chunk index)")
    chunks, first, offset = [], 0, r.pos
    for n, length in sizes:
        if n == 0 or length == 0:
            raise FormatError("chunk index has an empty chunk")
        chunks.append(Chunk(first, n, offset, length))
        first, offset = first + n, offset + length
    if first != count:
        raise FormatError(f"chunks hold {first} items, the index says {count}")
    if offset != len(blob):
        raise FormatError(f"file size {len(blob)} does not match the chunk index ({offset} bytes): "
                          "truncated or trailing garbage")
    return Archive(shape, count, layout, data_hash, chunks, len(blob))


def chunk_bytes(blob, archive: Archive, index: int) -> bytes:
    """The version-3 file of chunk ``index``, checked against the index (item count, shape)."""
    if not 0 <= index < len(archive.chunks):
        raise ValueError(f"chunk {index} out of range (the file has {len(archive.chunks)} chunks, "
                         f"0..{len(archive.chunks) - 1})")
    c = archive.chunks[index]
    part = bytes(blob[c.offset:c.offset + c.length])
    if part[:4] != MAGIC or len(part) < 5 or part[4] != VERSION:
        raise FormatError(f"chunk {index} is not a version-3 bfn-codec file")
    header, _ = read(part)
    if header.count != c.count or header.item_shape != archive.item_shape:
        raise FormatError(f"chunk {index} holds {header.count} items of shape {header.item_shape}, "
                          f"the index says {c.count} of {archive.item_shape}")
    return part
