"""Container format version 6: one file's bytes (docs/format.md, "Version 6").

Any file that is not an array or an image goes here: text, source code, PDFs, binaries. The
bytes are held by one of three streams, whichever is smallest in auto mode:

* ``stored``: the bytes themselves (so no file grows by more than the header, 20-odd bytes
  plus its name);
* ``lzma2``: raw LZMA2 of the bytes (seed.py's filter chain, preset 9e);
* ``bfn``: a complete version-3 (or chunked version-4) file of the bytes' windows under an
  alphabet (below): the BFN chain of a byte model, with its own LZMA2 seed.

Alphabets (how bytes become the items of a data type; a stored or LZMA2 stream records 0):
0, ``bytes8``: 256-byte windows of 8 binary variables per byte in bytestream.py's layout, the
last window padded with zero bytes; 1, ``text8``: 256-character windows of one K = 27 variable
per character (space, "a".."z": only files of those bytes) in text8.py's layout, the last
window padded with spaces.

Layout: magic, version 6, flags (0), the alphabet code, the file name (varint length and UTF-8;
empty for standard input), the length in bytes (varint), the stream code, the stream's length
(varint), an 8-byte prefix of ``bytes_checksum`` (SHA-256 of the length, the bytes and the
name), the stream, and a CRC-32 of everything before it. The checksum makes a wrong decode of
any stream an error, never data.
"""
from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass

from .container import MAGIC, FormatError, _Reader, _varint
from .imageset import MAX_NAME_BYTES, check_name

BYTEFILE_VERSION = 6
STREAM_CODES = {0: "stored", 1: "lzma2", 2: "bfn"}
STREAM_NUMBERS = {v: k for k, v in STREAM_CODES.items()}
ALPHABET_CODES = {0: "bytes8", 1: "text8"}
ALPHABET_NUMBERS = {v: k for k, v in ALPHABET_CODES.items()}
HASH_BYTES = 8
MAX_LENGTH = 1 << 48


@dataclass
class ByteFile:
    name: str  # the input's file name ("" for standard input)
    length: int  # bytes
    stream: str  # STREAM_CODES
    stream_length: int
    data_hash: bytes
    alphabet: str = "bytes8"
    offset: int = 0  # where the stream starts (set by read_bytefile)


def name_problem(name: str) -> str | None:
    """What is wrong with a stored name (None: nothing, or no name): a plain file name, no
    folders (the version-5 rules, and no '/'), so decompress writes it only next to the .bfn."""
    if not name:
        return None
    if "/" in name:
        return "not a plain file name"
    return check_name(name)


def bytes_checksum(data: bytes, name: str) -> bytes:
    return hashlib.sha256(struct.pack("<Q", len(data)) + bytes(data) + b"\0" + name.encode("utf-8")).digest()


def is_bytefile(blob) -> bool:
    return len(blob) >= 5 and bytes(blob[:4]) == MAGIC and blob[4] == BYTEFILE_VERSION


def write_bytefile(index: ByteFile, stream: bytes) -> bytes:
    if len(stream) != index.stream_length:
        raise ValueError("the stream's length does not match the index")
    if name_problem(index.name):
        raise ValueError(f"file name {index.name!r}: {name_problem(index.name)}")
    name = index.name.encode("utf-8")
    body = (MAGIC + bytes([BYTEFILE_VERSION, 0, ALPHABET_NUMBERS[index.alphabet]]) + _varint(len(name)) + name
            + _varint(index.length) + bytes([STREAM_NUMBERS[index.stream]]) + _varint(len(stream))
            + index.data_hash[:HASH_BYTES] + bytes(stream))
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def read_bytefile(blob) -> ByteFile:
    """The index of a version-6 file, every field checked against the limits and the file size."""
    blob = bytes(blob)
    if not is_bytefile(blob):
        raise FormatError("not a bfn-codec byte file (format version 6)")
    end = len(blob) - 4
    if end < 7:
        raise FormatError("file truncated (shorter than the fixed header)")
    if zlib.crc32(blob[:end]) & 0xFFFFFFFF != struct.unpack_from("<I", blob, end)[0]:
        raise FormatError("file is corrupt (CRC-32 mismatch)")
    if blob[5] != 0:
        raise FormatError(f"unknown byte-file flags 0x{blob[5]:02x}")
    if blob[6] not in ALPHABET_CODES:
        raise FormatError(f"unknown alphabet code {blob[6]}")
    r = _Reader(blob, 7, end)
    size = r.varint("file name", MAX_NAME_BYTES)
    try:
        name = r.raw(size, "file name").decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("the file name is not UTF-8") from None
    if name_problem(name):
        raise FormatError(f"stored file name {name[:80]!r} is refused: {name_problem(name)}")
    length = r.varint("length", MAX_LENGTH)
    stream = r.take("<B", "stream")
    if stream not in STREAM_CODES:
        raise FormatError(f"unknown stream code {stream}")
    stream_length = r.varint("stream length", MAX_LENGTH)
    data_hash = r.raw(HASH_BYTES, "checksum")
    index = ByteFile(name, length, STREAM_CODES[stream], stream_length, data_hash,
                     ALPHABET_CODES[blob[6]], r.pos)
    if r.pos + stream_length != end:
        raise FormatError(f"the stream takes {stream_length} bytes, the file holds {end - r.pos}")
    if index.stream == "stored" and stream_length != length:
        raise FormatError(f"a stored stream of {stream_length} bytes for {length} bytes")
    return index


def stream_bytes(blob, index: ByteFile) -> bytes:
    return bytes(blob[index.offset:index.offset + index.stream_length])
