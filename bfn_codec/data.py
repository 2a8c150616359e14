"""Data sets: Fashion-MNIST from IDX files (8-bit and statically binarised) and .npy uint8 arrays.

Every data set is returned as a uint8 array [N, C, H, W] of outcome indices (pixel values 0..255
for 8-bit data, 0/1 for binarised data) together with its BFN data type.

Fashion-MNIST comes from the Debian package ``dataset-fashion-mnist``
(/usr/share/datasets/fashion-mnist/*.gz); another directory can be given with ``--data-dir`` or
the environment variable BFN_FMNIST_DIR.
"""
from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError  # noqa: F401 - raised here, and imported from here by the layers above

DEFAULT_FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
VALIDATION_SEED = 2147483647  # the official code's split seed
IDX_MAX_ITEMS = 10_000_000


@dataclass
class Dataset:
    name: str
    images: np.ndarray  # uint8 [N, C, H, W] outcome indices
    data_type: str  # "discrete" or "discretised"
    K: int


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes, validating its header."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror or e}") from None
    return parse_idx(raw, str(path))


def gunzip(raw: bytes, name: str) -> bytes:
    """``raw`` itself, or its decompression if it is a gzip stream."""
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as e:
        raise DataError(f"{name}: corrupt gzip stream ({e})") from None


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """The array in the bytes of an IDX file (optionally gzip-compressed) of unsigned bytes."""
    raw = gunzip(raw, name)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    if raw[2] != 0x08:
        raise DataError(f"{name}: only unsigned-byte IDX files are supported (type 0x{raw[2]:02x})")
    ndim = raw[3]
    if not 1 <= ndim <= 4 or len(raw) < 4 + 4 * ndim:
        raise DataError(f"{name}: bad IDX header ({ndim} dimensions)")
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    count = int(np.prod(dims, dtype=np.int64))
    if dims[0] > IDX_MAX_ITEMS or len(raw) != 4 + 4 * ndim + count:
        raise DataError(f"{name}: IDX header says {dims} but the file holds "
                        f"{len(raw) - 4 - 4 * ndim} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims).copy()


def fmnist_dir(data_dir=None) -> Path:
    return Path(data_dir or os.environ.get("BFN_FMNIST_DIR") or DEFAULT_FMNIST_DIR)


def load_fmnist(split: str = "test", data_dir=None) -> np.ndarray:
    """Fashion-MNIST images as uint8 [N, 28, 28]."""
    if split not in FMNIST_FILES:
        raise DataError(f"unknown split {split!r} (train or test)")
    d = fmnist_dir(data_dir)
    for name in (FMNIST_FILES[split] + ".gz", FMNIST_FILES[split]):
        if (d / name).is_file():
            return read_idx(d / name)
    raise DataError(f"Fashion-MNIST not found in {d}: install it with "
                    "'apt-get install -y dataset-fashion-mnist', or point BFN_FMNIST_DIR "
                    "(or --data-dir) at a directory holding the IDX files")


def sample_images() -> np.ndarray:
    """The 256 Fashion-MNIST test images bundled with the package (uint8 [256, 28, 28]): the
    demo's and the examples' data, there without the data set installed."""
    return np.load(Path(__file__).parent / "samples" / "fmnist-test-256.npy")


def binarise(images: np.ndarray) -> np.ndarray:
    """Static binarisation: pixel >= 128 -> 1."""
    return (images >= 128).astype(np.uint8)


def as_items(array) -> tuple[np.ndarray, str]:
    """uint8 [N, H, W], [H, W] or [N, C, H, W] -> (items [N, C, H, W], the layout it came in:
    "NHW", "HW" or "NCHW"), the one conversion every input goes through."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"bfn-codec codes uint8 arrays, got dtype {array.dtype}")
    if array.ndim not in (2, 3, 4):
        raise DataError(f"expected an array of shape (N, H, W), (H, W) or (N, C, H, W), got {array.shape}")
    if 0 in array.shape[-2:] or (array.ndim == 4 and array.shape[1] == 0):
        raise DataError(f"items of shape {array.shape[1:] if array.ndim > 2 else array.shape} hold no values")
    if array.ndim == 2:
        return array[None, None], "HW"
    if array.ndim == 3:
        return array[:, None], "NHW"
    return array, "NCHW"


def load_npy(path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read {path} as .npy: {e}") from None
    return array


def patches(images: np.ndarray, size: int) -> np.ndarray:
    """Every whole size x size patch of images [N, H, W, C] on a grid from the top left, as
    items [M, C, size, size] (images smaller than a patch give none)."""
    out = []
    for image in images:
        rows, cols = image.shape[0] // size, image.shape[1] // size
        if rows and cols:
            grid = image[:rows * size, :cols * size].reshape(rows, size, cols, size, -1)
            out.append(grid.transpose(0, 2, 4, 1, 3).reshape(rows * cols, -1, size, size))
    if not out:
        raise DataError(f"no image holds a whole {size}x{size} patch")
    return np.ascontiguousarray(np.concatenate(out))


def _split_patch(spec: str) -> tuple[str, int | None]:
    """``PATH@P`` -> (PATH, P); ``PATH`` -> (PATH, None)."""
    path, at, size = spec.rpartition("@")
    if at and size.isdigit() and int(size) > 0:
        return path, int(size)
    return spec, None


def folder_images(path: str) -> list[np.ndarray]:
    """The pixels [H, W, C] of every image file under the folder ``path`` (inputs.read_folder:
    sorted names, other files skipped), all with one channel count."""
    from .images import read_folder

    files, _ = read_folder(path)
    channels = sorted({f.pixels.shape[-1] for f in files})
    if len(channels) > 1:
        raise DataError(f"{path}: the images have {' and '.join(map(str, channels))} channels; a model codes "
                        "one kind (convert them, or train on a folder of each)")
    return [f.pixels[0] for f in files]


def load_dataset(spec: str, split: str = "train", data_dir=None) -> Dataset:
    """``fmnist``, ``fmnist-binary``, ``npy:PATH`` (a uint8 array of any images.array_layout
    shape), ``images:DIR`` (every image file in a folder; values <= 1 mean binary data) or
    ``bytes:PATH`` (the bytes of a file or of every file in a folder, as binary windows) or
    ``text8:PATH`` (the same files in text8 style, as windows of K = 27 characters).
    ``@P`` after the path cuts every image into whole P x P patches (images:DIR needs it unless
    all its images have one size).

    For npy and image data ``split`` selects the deterministic train/validation split
    (``test`` = all)."""
    if spec in ("fmnist", "fmnist-binary"):
        images = load_fmnist(split, data_dir)[:, None]
        if spec == "fmnist-binary":
            return Dataset(f"{spec}:{split}", binarise(images), "discrete", 2)
        return Dataset(f"{spec}:{split}", images, "discretised", 256)
    if spec.startswith(("npy:", "images:")):
        from .images import array_layout, to_nhwc

        path, size = _split_patch(spec.split(":", 1)[1])
        if spec.startswith("npy:"):
            array = load_npy(path)
            if array.dtype != np.uint8:
                raise DataError(f"{path}: expected a uint8 array, got {array.dtype}")
            nhwc = [to_nhwc(array, array_layout(array))]
        else:
            nhwc = [image[None] for image in folder_images(path)]
        if size is not None:
            images = _concat_patches(nhwc, size)
        elif len({x.shape[1:] for x in nhwc}) > 1:
            raise DataError(f"{path}: the images have several sizes: add @P to train on P x P patches "
                            f"(e.g. {spec}@32)")
        else:
            images = np.ascontiguousarray(np.concatenate(nhwc).transpose(0, 3, 1, 2))
        binary = images.max(initial=0) <= 1
        if split in ("train", "validation"):
            train_idx, val_idx = validation_split(len(images))
            images = images[train_idx if split == "train" else val_idx]
        return Dataset(f"{spec}:{split}", images, "discrete" if binary else "discretised",
                       2 if binary else 256)
    if spec.startswith("bytes:"):
        items = corpus_items(spec.split(":", 1)[1])
        if split in ("train", "validation"):
            train_idx, val_idx = validation_split(len(items))
            items = items[train_idx if split == "train" else val_idx]
        return Dataset(f"{spec}:{split}", items, "discrete", 2)
    if spec.startswith("text8:"):
        from .text8 import K

        items = corpus_items(spec.split(":", 1)[1], text8=True)
        if split in ("train", "validation"):
            train_idx, val_idx = validation_split(len(items))
            items = items[train_idx if split == "train" else val_idx]
        return Dataset(f"{spec}:{split}", items, "discrete", K)
    raise DataError(f"unknown dataset {spec!r} (expected fmnist, fmnist-binary, npy:PATH, images:DIR, "
                    "bytes:PATH or text8:PATH)")


def corpus_items(path: str, text8: bool = False) -> np.ndarray:
    """``bytes:PATH``: every whole 256-byte window (bytestream.py) of the file PATH, or of every
    file under the folder PATH (sorted names, each file on its own), at a stride of half a window.
    ``text8``: each file normalised to text8 style first, windows of characters (text8.py)."""
    from . import bytestream, text8 as text8_items
    from .bytestream import WINDOW

    def windows(data: bytes, stride: int):
        if text8:
            return text8_items.corpus_items(text8_items.normalise(data), stride)
        return bytestream.corpus_items(data, stride)

    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    parts = []
    for f in files:
        try:
            parts.append(windows(f.read_bytes(), stride=WINDOW // 2))
        except OSError as e:
            raise DataError(f"cannot read {f}: {e.strerror or e}") from None
    items = np.concatenate(parts) if parts else np.zeros((0,), dtype=np.uint8)
    if not len(items):
        raise DataError(f"{path}: no file holds a whole window of {WINDOW} {'characters' if text8 else 'bytes'}")
    return items


def _concat_patches(nhwc: list, size: int) -> np.ndarray:
    parts = [patches(x, size) for x in nhwc if min(x.shape[1:3]) >= size]
    if not parts:
        raise DataError(f"no image holds a whole {size}x{size} patch")
    return np.concatenate(parts)


def validation_split(n: int, fraction: float = 0.01):
    """Deterministic split: a fixed permutation, the last ``fraction`` (at least 1) held out."""
    perm = np.random.default_rng(VALIDATION_SEED).permutation(n)
    n_val = max(1, int(round(n * fraction))) if n > 1 else 0
    return np.sort(perm[: n - n_val]), np.sort(perm[n - n_val:])


def train_validation(spec: str, data_dir=None):
    """(train, validation) data sets; for Fashion-MNIST the validation part comes from train."""
    if spec.startswith(("npy:", "images:")):
        return load_dataset(spec, "train", data_dir), load_dataset(spec, "validation", data_dir)
    full = load_dataset(spec, "train", data_dir)
    tr, va = validation_split(len(full.images))
    return (Dataset(full.name, full.images[tr], full.data_type, full.K),
            Dataset(full.name.replace("train", "validation"), full.images[va], full.data_type, full.K))
