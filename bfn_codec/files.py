"""File I/O for the CLI: input formats (.npy, IDX, gzip'd IDX, stdin) and atomic output."""
from __future__ import annotations

import io
import os
import shutil
import signal
import stat
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

from .data import DataError, gunzip, parse_idx

NPY_MAGIC = b"\x93NUMPY"


def read_input_bytes(path: str) -> bytes:
    if path == "-":
        if sys.stdin.isatty():
            raise DataError("refusing to read binary data from a terminal (redirect a file or pipe into -)")
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise DataError(f"{path} is a directory") from None
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None


def parse_array(raw: bytes, name: str):
    """Bytes of a .npy or IDX (optionally gzip) file -> (uint8 array, layout or None)."""
    raw = gunzip(raw, name)
    if raw[:6] == NPY_MAGIC:
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{name}: not a readable .npy file ({e})") from None
        if array.dtype != np.uint8:
            raise DataError(f"{name}: expected a uint8 array, got {array.dtype}")
        if array.ndim not in (2, 3, 4):
            raise DataError(f"{name}: expected shape (H, W), (H, W, C), (N, H, W), (N, H, W, C) or "
                            f"(N, C, H, W), got {array.shape}")
        return np.ascontiguousarray(array), None
    if len(raw) >= 4 and raw[:3] == b"\x00\x00\x08":
        array = parse_idx(raw, name)
        if array.ndim != 3:
            raise DataError(f"{name}: IDX file must hold a 3-D array of images, has {array.ndim} dimensions")
        return array, "IDX"
    raise DataError(f"{name}: unrecognised input (expected a .npy uint8 array or a Fashion-MNIST IDX file)")


def array_to_bytes(array: np.ndarray, layout: str) -> bytes:
    if layout == "IDX":
        return b"\x00\x00\x08\x03" + struct.pack(">III", *array.shape) + array.tobytes()
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class Output:
    """Where one result goes: a file written atomically, or standard output (``-``).

    Everything that can be checked is checked when it is made, before any work: the output is
    not the input (same path or same inode; refused even with ``force``, since the input would
    be gone before its replacement is complete), an existing file is replaced only with
    ``force``, binary data goes to a terminal only with ``force``, and the directory takes a
    new file: the temporary file the result is later renamed from is created right away. So a
    long run never ends in "cannot write". ``commit`` gives the file the input's permission
    bits and modification time (a new file's defaults for standard input), like xz and zstd.
    Used as a context manager, an exception or interrupt removes the temporary file."""

    def __init__(self, path: str, force: bool, like: str | None = None, what: str = "binary data"):
        self.path, self.force, self.like, self.tmp, self.fd = path, force, like, None, None
        if path == "-":
            if sys.stdout.isatty() and not force:
                raise DataError(f"refusing to write {what} to a terminal (use -o FILE, a pipe, or -f)")
            return
        target = Path(path)
        if like and like != "-" and _same_file(like, path):
            raise DataError(f"{path}: the output would overwrite the input (refused, with or without -f)")
        if target.is_dir():
            raise DataError(f"{path} is a directory")
        if target.exists() and not force:
            raise DataError(f"{path} already exists; use -f to overwrite")
        directory = target.parent if str(target.parent) else Path(".")
        if not directory.is_dir():
            raise DataError(f"cannot write {path}: directory {directory} does not exist")
        try:
            self.fd, self.tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        except OSError as e:
            raise DataError(f"cannot write {path}: {e.strerror or e}") from None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.discard()

    def discard(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            self.tmp = None

    def commit(self, data: bytes) -> None:
        if self.path == "-":
            try:
                sys.stdout.buffer.write(data)
                sys.stdout.buffer.flush()
            except BrokenPipeError:
                raise DataError("standard output was closed (broken pipe)") from None
            return
        old = {}
        try:
            with os.fdopen(self.fd, "wb") as f:
                self.fd = None  # the file object owns it now
                f.write(data)
                f.flush()
                if self.like and self.like != "-":
                    st = os.stat(self.like)
                    os.fchmod(f.fileno(), stat.S_IMODE(st.st_mode))
                else:
                    umask = os.umask(0)
                    os.umask(umask)
                    os.fchmod(f.fileno(), 0o666 & ~umask)
                os.fsync(f.fileno())
            if self.like and self.like != "-":
                os.utime(self.tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
            # A signal between here and the rename must not leave the temporary file behind.
            for sig in (signal.SIGINT, signal.SIGTERM):
                old[sig] = signal.signal(sig, signal.SIG_IGN)
            if Path(self.path).exists() and not self.force:
                raise DataError(f"{self.path} already exists; use -f to overwrite")
            os.replace(self.tmp, self.path)
            self.tmp = None
        except OSError as e:
            raise DataError(f"cannot write {self.path}: {e.strerror or e}") from None
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            self.discard()


def _same_file(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def write_output_atomic(path: str, data: bytes, force: bool, like: str | None = None) -> None:
    """Write ``data`` to ``path`` (or standard output for ``-``) through ``Output``."""
    with Output(path, force, like) as out:
        out.commit(data)


def write_folder(path: str, files, force: bool) -> None:
    """Write ``files`` ([(relative name, bytes)], names checked by imageset.check_name) into the
    folder ``path``. A new folder is built under a temporary name beside it and renamed when
    complete, so an interrupted run leaves nothing; an existing folder only with ``force``, and
    then each file is replaced atomically (other files in it are left alone)."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise DataError(f"{path} exists and is not a folder")
    if target.exists():
        if not force:
            raise DataError(f"{path} already exists; use -f to write into it")
        for name, data in files:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            write_output_atomic(str(target / name), data, force=True)
        return
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise DataError(f"cannot write {path}: directory {parent} does not exist")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        for name, data in files:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if target.exists():
            raise DataError(f"{path} already exists; use -f to write into it")
        os.rename(tmp, target)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def install_cleanup_on_term():
    """Turn SIGTERM into KeyboardInterrupt so that temporary files are removed on kill."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread
        pass
