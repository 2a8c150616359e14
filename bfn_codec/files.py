"""File I/O for the CLI: input formats (.npy, IDX, gzip'd IDX, stdin) and atomic output."""
from __future__ import annotations

import gzip
import io
import os
import signal
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from .data import DataError

NPY_MAGIC = b"\x93NUMPY"


def read_input_bytes(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a directory") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def parse_array(raw: bytes, name: str):
    """Bytes of a .npy or IDX (optionally gzip) file -> (uint8 array, layout or None)."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise DataError(f"{name}: corrupt gzip stream ({e})") from None
    if raw[:6] == NPY_MAGIC:
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{name}: not a readable .npy file ({e})") from None
        if array.dtype != np.uint8:
            raise DataError(f"{name}: expected a uint8 array, got {array.dtype}")
        if array.ndim not in (2, 3):
            raise DataError(f"{name}: expected shape (N, H, W) or (H, W), got {array.shape}")
        return np.ascontiguousarray(array), None
    if len(raw) >= 4 and raw[:3] == b"\x00\x00\x08":
        ndim = raw[3]
        if ndim != 3 or len(raw) < 16:
            raise DataError(f"{name}: IDX file must hold a 3-D array of images, has {ndim} dimensions")
        dims = struct.unpack(">III", raw[4:16])
        if len(raw) != 16 + dims[0] * dims[1] * dims[2]:
            raise DataError(f"{name}: IDX header says {dims} but the file holds {len(raw) - 16} data bytes")
        return np.frombuffer(raw, np.uint8, offset=16).reshape(dims).copy(), "IDX"
    raise DataError(f"{name}: unrecognised input (expected a .npy uint8 array or a Fashion-MNIST IDX file)")


def array_to_bytes(array: np.ndarray, layout: str) -> bytes:
    if layout == "IDX":
        return b"\x00\x00\x08\x03" + struct.pack(">III", *array.shape) + array.tobytes()
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def write_output_atomic(path: str, data: bytes, force: bool) -> None:
    """Write to a temporary file beside ``path`` and rename it into place; an existing file is
    replaced only with ``force``; an interrupted run leaves no partial output."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    if target.exists() and not force:
        raise DataError(f"{path} already exists; use -f to overwrite")
    if target.is_dir():
        raise DataError(f"{path} is a directory")
    directory = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    old = {}
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # A signal between here and the rename must not leave the temporary file behind.
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, signal.SIG_IGN)
        if target.exists() and not force:
            raise DataError(f"{path} already exists; use -f to overwrite")
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def install_cleanup_on_term():
    """Turn SIGTERM into KeyboardInterrupt so that temporary files are removed on kill."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        pass
