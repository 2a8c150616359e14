"""Container format version 5: a set of images (docs/format.md, "Version 5").

It holds either the image files of one file or folder (kind "files": each entry one file, with
its name, file format and pixel mode, so that decompress writes the same files back), or one
uint8 array whose images are not the model's item shape (kind "array": one entry, the array's
shape and layout, so that decompress returns the same array). Each entry is N images of
H x W x C pixels in one stream:

* ``bfn``: a complete version-3 file (container.py) of the images' tiles (images.to_tiles for
  the item shape in that file's header): the BFN chain, or its LZMA2 fallback;
* ``png`` / ``webp``: a classical lossless picture of the N images stacked vertically
  (classical.py);
* ``pool`` (image files only): the entry's tiles are the next ones of the file's pool, one BFN
  stream of the tiles of every pooled entry in entry order, so that small images share one
  chain and one seed instead of paying a seed each.

Layout: magic, version 5, flags (bit 0: kind array, bit 1: the input was a folder, bit 2: a
pool), for an array its layout code and shape, the entry count, per entry its fields (below),
the pool's length if there is one, then the pool and the streams one after the other, and a
CRC-32 of everything before it. Each entry carries an 8-byte prefix of ``pixels_checksum`` of
its pixels and of what else it says (``entry_context``: name, format, mode; an array's layout
and shape), so a wrong decode of any stream, or a wrong field, is an error, never data.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

from .container import MAGIC, FormatError, _Reader, _varint
from .images import ARRAY_LAYOUTS, FILE_FORMATS, MODES, nhwc_shape

IMAGESET_VERSION = 5
FLAG_ARRAY, FLAG_FOLDER, FLAG_POOL = 1, 2, 4
STREAM_CODES = {0: "bfn", 1: "png", 2: "webp", 3: "pool"}
STREAM_NUMBERS = {v: k for k, v in STREAM_CODES.items()}
FORMAT_CODES = dict(enumerate(FILE_FORMATS))
FORMAT_NUMBERS = {v: k for k, v in FORMAT_CODES.items()}
MODE_CODES = dict(enumerate(MODES))
MODE_NUMBERS = {v: k for k, v in MODE_CODES.items()}
LAYOUT_CODES = dict(enumerate(ARRAY_LAYOUTS))
LAYOUT_NUMBERS = {v: k for k, v in LAYOUT_CODES.items()}
PIXELS_HASH_BYTES = 8
MAX_ENTRIES = 1 << 20
MAX_NAME_BYTES = 4096
MAX_SIDE = 1 << 20
MAX_PIXELS = 1 << 36  # values in one entry (N H W C): 64 GB, beyond any machine this runs on


@dataclass
class Entry:
    """N images of height x width x channels in one stream of ``length`` bytes."""
    count: int
    height: int
    width: int
    channels: int
    stream: str
    length: int
    pixels_hash: bytes
    name: str = ""  # kind "files": the file's path relative to the input (a folder) or its name
    file_format: str = ""  # kind "files": a images.FILE_FORMATS key
    mode: str = ""  # kind "files": the Pillow mode written back (images.MODES)
    offset: int = 0  # where the stream starts in the file (set by read_imageset)

    @property
    def shape(self) -> tuple:
        return (self.count, self.height, self.width, self.channels)


@dataclass
class ImageSet:
    kind: str  # "files" or "array"
    entries: list = field(default_factory=list)
    folder: bool = False  # kind "files": the input was a folder (decompress writes a folder)
    layout: str = ""  # kind "array": images.ARRAY_LAYOUTS
    array_shape: tuple = ()  # kind "array": the user's array shape
    # kind "files": the pool, one BFN stream (a version-3 or -4 file) of the tiles of every
    # entry whose stream is "pool", in entry order: small images share one chain (and its seed)
    pool_length: int = 0
    pool_offset: int = 0  # set by read_imageset


def pixels_checksum(images: np.ndarray, context: bytes = b"") -> bytes:
    """SHA-256 over the shape [N, H, W, C], the pixels (C order) and ``context``
    (``entry_context``: what else decompress returns for them)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    return hashlib.sha256(struct.pack("<4Q", *images.shape) + images.tobytes() + context).digest()


def entry_context(image_set: ImageSet, entry: Entry) -> bytes:
    """Everything besides the pixels that decompress gives back for an entry, so that its
    checksum covers it too: for image files the name, format, mode and whether they were a
    folder; for an array its layout and shape."""
    if image_set.kind == "array":
        fields = ["array", image_set.layout, ",".join(map(str, image_set.array_shape))]
    else:
        fields = ["files", "folder" if image_set.folder else "file", entry.name, entry.file_format, entry.mode]
    return "\0".join(fields).encode("utf-8")


def is_imageset(blob) -> bool:
    return len(blob) >= 5 and bytes(blob[:4]) == MAGIC and blob[4] == IMAGESET_VERSION


def check_name(name: str) -> str | None:
    """What is wrong with a stored file name, or None: a relative path of plain components
    (never absolute, never '..'), so decompressing a hostile file cannot write outside its folder."""
    if not name or len(name.encode("utf-8")) > MAX_NAME_BYTES:
        return "empty or too long"
    if "\0" in name or "\\" in name or name.startswith("/"):
        return "not a relative path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' component"
    return None


def write_imageset(image_set: ImageSet, streams: list, pool: bytes = b"") -> bytes:
    """The file: ``streams`` one per entry (b"" for pooled entries), ``pool`` the pooled entries'
    BFN stream (b"": none)."""
    if len(streams) != len(image_set.entries):
        raise ValueError("one stream per entry")
    array = image_set.kind == "array"
    pooled = any(e.stream == "pool" for e in image_set.entries)
    if pooled != bool(pool) or (pooled and array):
        raise ValueError("a pool needs pooled entries of image files, and pooled entries a pool")
    flags = (FLAG_ARRAY if array else 0) | (FLAG_FOLDER if image_set.folder else 0) | (FLAG_POOL if pooled else 0)
    h = bytearray(MAGIC + bytes([IMAGESET_VERSION, flags]))
    if array:
        h += _varint(LAYOUT_NUMBERS[image_set.layout]) + _varint(len(image_set.array_shape))
        h += b"".join(_varint(s) for s in image_set.array_shape)
    h += _varint(len(image_set.entries))
    for e, data in zip(image_set.entries, streams):
        if len(data) != e.length:
            raise ValueError("the entry's length does not match its stream")
        if not array:
            problem = check_name(e.name)
            if problem:
                raise ValueError(f"file name {e.name!r}: {problem}")
            name = e.name.encode("utf-8")
            h += _varint(len(name)) + name + bytes([FORMAT_NUMBERS[e.file_format], MODE_NUMBERS[e.mode]])
        h += b"".join(_varint(v) for v in e.shape) + bytes([STREAM_NUMBERS[e.stream]]) + _varint(e.length)
        h += e.pixels_hash[:PIXELS_HASH_BYTES]
    if pooled:
        h += _varint(len(pool))
    body = bytes(h) + bytes(pool) + b"".join(bytes(s) for s in streams)
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def read_imageset(blob) -> ImageSet:
    """The index of a version-5 file, each entry's ``offset`` set; every field checked against
    the limits and the file size (the streams are checked when they are decoded)."""
    blob = bytes(blob)
    if not is_imageset(blob):
        raise FormatError("not a bfn-codec image set (format version 5)")
    end = len(blob) - 4
    if end < 6:
        raise FormatError("file truncated (shorter than the fixed header)")
    if zlib.crc32(blob[:end]) & 0xFFFFFFFF != struct.unpack_from("<I", blob, end)[0]:
        raise FormatError("file is corrupt (CRC-32 mismatch)")
    flags = blob[5]
    if flags & ~(FLAG_ARRAY | FLAG_FOLDER | FLAG_POOL) or (flags & FLAG_ARRAY and flags & (FLAG_FOLDER | FLAG_POOL)):
        raise FormatError(f"unknown image-set flags 0x{flags:02x}")
    array = bool(flags & FLAG_ARRAY)
    r = _Reader(blob, 6, end)
    image_set = ImageSet("array" if array else "files", folder=bool(flags & FLAG_FOLDER))
    if array:
        code = r.varint("array layout", 256)
        if code not in LAYOUT_CODES:
            raise FormatError(f"unknown array layout code {code}")
        image_set.layout = LAYOUT_CODES[code]
        ndim = r.varint("array rank", 5)
        image_set.array_shape = tuple(r.varint("array shape", MAX_PIXELS) for _ in range(ndim))
    count = r.varint("entry count", MAX_ENTRIES + 1)
    if count > MAX_ENTRIES or (array and count != 1) or count == 0:
        raise FormatError(f"invalid number of entries {count}")
    for _ in range(count):
        e = Entry(0, 0, 0, 0, "", 0, b"")
        if not array:
            size = r.varint("file name", MAX_NAME_BYTES + 1)
            try:
                e.name = r.raw(size, "file name").decode("utf-8")
            except UnicodeDecodeError:
                raise FormatError("a file name is not UTF-8") from None
            problem = check_name(e.name)
            if problem:
                raise FormatError(f"stored file name {e.name[:80]!r} is refused: {problem}")
            fmt, mode = r.take("<BB", "file format")
            if fmt not in FORMAT_CODES or mode not in MODE_CODES:
                raise FormatError(f"unknown file format {fmt} or pixel mode {mode}")
            e.file_format, e.mode = FORMAT_CODES[fmt], MODE_CODES[mode]
        e.count = r.varint("image count", MAX_PIXELS)
        e.height, e.width = r.varint("height", MAX_SIDE + 1), r.varint("width", MAX_SIDE + 1)
        e.channels = r.varint("channels", 5)
        if not (1 <= e.count and 1 <= e.height <= MAX_SIDE and 1 <= e.width <= MAX_SIDE and 1 <= e.channels <= 4):
            raise FormatError(f"invalid image shape {e.shape}")
        if e.count * e.height * e.width * e.channels > MAX_PIXELS:
            raise FormatError(f"images of shape {e.shape} exceed the limit of {MAX_PIXELS} values")
        if not array and (e.count != 1 or MODES[e.mode] != e.channels):
            raise FormatError(f"file entry {e.name[:80]!r}: shape {e.shape} does not fit mode {e.mode}")
        stream = r.take("<B", "stream")
        if stream not in STREAM_CODES:
            raise FormatError(f"unknown stream code {stream}")
        e.stream = STREAM_CODES[stream]
        e.length = r.varint("stream length", 1 << 48)
        if e.stream == "pool" and (e.length or not flags & FLAG_POOL):
            raise FormatError("a pooled entry with a stream of its own, or without a pool")
        e.pixels_hash = r.raw(PIXELS_HASH_BYTES, "pixel checksum")
        image_set.entries.append(e)
    if array:
        e = image_set.entries[0]
        try:
            expected = nhwc_shape(image_set.array_shape, image_set.layout)
        except ValueError:
            expected = None
        if expected != e.shape:
            raise FormatError(f"array of shape {image_set.array_shape} ({image_set.layout}) does not hold "
                              f"images of shape {e.shape}")
    if flags & FLAG_POOL:
        if not any(e.stream == "pool" for e in image_set.entries):
            raise FormatError("a pool without pooled entries")
        image_set.pool_length = r.varint("pool length", 1 << 48)
        if image_set.pool_length == 0:
            raise FormatError("an empty pool")
    image_set.pool_offset = r.pos
    offset = r.pos + image_set.pool_length
    for e in image_set.entries:
        e.offset = offset
        offset += e.length
    if offset != end:
        raise FormatError(f"the streams take {offset - r.pos} bytes, the file holds {end - r.pos}")
    return image_set


def pool_bytes(blob, image_set: ImageSet) -> bytes:
    return bytes(blob[image_set.pool_offset:image_set.pool_offset + image_set.pool_length])


def stream_bytes(blob, entry: Entry) -> bytes:
    return bytes(blob[entry.offset:entry.offset + entry.length])
