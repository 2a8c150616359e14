"""Images as users have them: image files (through Pillow), pixel arrays of any size, and the
tiles a model codes.

Pillow reads and writes the file formats: it is the maintained, ubiquitous library for PNG,
PGM/PPM, TIFF and BMP (and WebP lossless, one of the classical streams, imagecodecs.py), and it
decodes these formats exactly: what we restore is the pixel data, not the file's bytes.

Pixels are uint8 arrays [N, H, W, C] everywhere in this layer: N images of H x W pixels with C
channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA). A model codes items of a fixed shape
(c, P, Q), so an image of any size is cut into P x Q tiles (``to_tiles``): the right and bottom
edges are padded by repeating the last row and column (cheap to code: the padding continues
the image), and each channel is its own grey tile when the model has one channel. The padding
is not stored; ``from_tiles`` crops it again from the image size in the file.
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DataError, NotCodedAsImage

# Our name of a file format -> (Pillow's format name, the suffixes it has)
FILE_FORMATS = {
    "png": ("PNG", (".png",)),
    "pnm": ("PPM", (".pgm", ".ppm", ".pnm", ".pbm")),
    "tiff": ("TIFF", (".tif", ".tiff")),
    "bmp": ("BMP", (".bmp",)),
}
PILLOW_TO_FORMAT = {pillow: ours for ours, (pillow, _) in FILE_FORMATS.items()}
# Pillow mode of the pixels -> channels. "1" is bilevel (values 0/1: the binary model's data).
MODES = {"1": 1, "L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
MODE_FOR_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@dataclass
class ImageFile:
    """One image file: its pixels [1, H, W, C], the name it is written back under, its format
    (a FILE_FORMATS key) and Pillow mode (a MODES key)."""
    name: str
    pixels: np.ndarray
    file_format: str
    mode: str


def _pillow():
    try:
        from PIL import Image
    except ImportError:  # a dependency: only a broken installation lands here
        raise DataError("reading image files needs Pillow: pip install pillow") from None
    return Image


def is_image(raw: bytes) -> bool:
    """Whether Pillow recognises ``raw`` as an image of any format (cheap: the header only)."""
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(raw)):
                return True
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for non-images
        return False


def read_image(raw: bytes, name: str) -> ImageFile:
    """The pixels of an image file's bytes. Refused, each with a one-line DataError: formats we
    cannot write back exactly (JPEG and other lossy or animated formats), several pages or
    frames, and pixel types other than 8-bit grey, grey + alpha, RGB, RGBA, bilevel or a palette
    (a palette image comes back as RGB, or RGBA where it has transparency: the same colours)."""
    Image = _pillow()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
            fmt = PILLOW_TO_FORMAT.get(img.format)
            if fmt is None:
                raise NotCodedAsImage(f"{name}: {img.format} files are not supported (PNG, PGM/PPM, TIFF and BMP "
                                "are; bfn-codec restores pixels exactly, so convert it to PNG first)")
            if getattr(img, "n_frames", 1) > 1:
                raise NotCodedAsImage(f"{name}: the file holds {img.n_frames} images (pages or frames); "
                                "bfn-codec codes files of one image")
            img.load()
    except DataError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DataError(f"{name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - a corrupt file: Pillow raises OSError, SyntaxError, ValueError...
        raise DataError(f"{name}: not a readable image ({type(e).__name__}: {e})") from None
    mode = img.mode
    if mode in ("P", "PA"):
        mode = "RGBA" if ("transparency" in img.info or mode == "PA") else "RGB"
        img = img.convert(mode)
    if mode not in MODES:
        raise NotCodedAsImage(f"{name}: {img.mode} images are not supported (8-bit grey, grey + alpha, RGB, RGBA, "
                        "bilevel or palette images are)")
    pixels = np.asarray(img)
    pixels = pixels.astype(np.uint8) if mode == "1" else np.ascontiguousarray(pixels, dtype=np.uint8)
    pixels = pixels.reshape(1, img.height, img.width, MODES[mode])
    try:  # decompress must be able to write the file back: found out now, on one pixel
        write_image(pixels[0, :1, :1], mode, fmt)
    except (OSError, ValueError, KeyError, DataError) as e:
        raise NotCodedAsImage(f"{name}: {FILE_FORMATS[fmt][0]} files of {mode} pixels cannot be written back "
                        f"({e}); convert it to PNG first") from None
    return ImageFile(name, pixels, fmt, mode)


def read_folder(path: str) -> tuple[list, list]:
    """(every image file under the folder ``path`` as ImageFile, named by its path relative to
    the folder with / separators, in sorted order of those names; [(name, why)] of the other
    files, which are skipped). A DataError if there is no image."""
    root = Path(path)
    names = []
    for directory, subdirs, filenames in os.walk(root):
        subdirs.sort()
        names.extend((Path(directory) / f).relative_to(root).as_posix() for f in filenames)
    files, skipped = [], []
    for name in sorted(names):
        full = root / name
        if full.is_symlink() or not full.is_file():
            skipped.append((name, "not a regular file"))
            continue
        try:
            raw = full.read_bytes()
        except OSError as e:
            skipped.append((name, f"cannot read it: {e.strerror or e}"))
            continue
        if not is_image(raw):
            skipped.append((name, "not an image"))
            continue
        try:
            files.append(read_image(raw, name))
        except DataError as e:
            skipped.append((name, str(e).removeprefix(f"{name}: ")))
    if not files:
        raise DataError(f"{path}: no image files in the folder" + (f" ({len(skipped)} other files)" if skipped else ""))
    return files, skipped


def pillow_image(pixels: np.ndarray, mode: str):
    """A Pillow image of one image's pixels [H, W, C] in ``mode``."""
    Image = _pillow()
    H, W, C = pixels.shape
    if mode == "1":  # Pillow's raw "1" rows are bit-packed, most significant bit first
        return Image.frombytes("1", (W, H), np.packbits(pixels[..., 0] != 0, axis=1).tobytes())
    if MODES[mode] != C:
        raise ValueError(f"mode {mode} needs {MODES[mode]} channels, the pixels have {C}")
    return Image.fromarray(np.ascontiguousarray(pixels[..., 0] if C == 1 else pixels), mode)


def write_image(pixels: np.ndarray, mode: str, file_format: str) -> bytes:
    """The bytes of an image file holding ``pixels`` [H, W, C]; its pixel data is exactly ``pixels``.
    TIFF files are written with LZW compression, PNG at Pillow's default level."""
    img = pillow_image(pixels, mode)
    pillow_format = FILE_FORMATS[file_format][0]
    options = {"compression": "tiff_lzw"} if file_format == "tiff" else {}
    if file_format == "bmp" and mode in ("LA",):
        raise DataError("BMP files cannot hold grey + alpha images")
    buf = io.BytesIO()
    img.save(buf, format=pillow_format, **options)
    return buf.getvalue()


def format_for_suffix(path: str) -> str | None:
    """The FILE_FORMATS key whose suffixes include ``path``'s, or None."""
    lower = path.lower()
    for fmt, (_, suffixes) in FILE_FORMATS.items():
        if lower.endswith(suffixes):
            return fmt
    return None


# ----- arrays ----------------------------------------------------------------------------------
ARRAY_LAYOUTS = ("HW", "NHW", "NCHW", "HWC", "NHWC", "IDX")


def array_layout(array: np.ndarray) -> str:
    """How a uint8 array's axes are read: (H, W); (N, H, W), unless the last axis has 3 or 4
    entries and the first two more than 4, which is one colour image (H, W, C); (N, C, H, W),
    unless axis 1 has more than 4 entries and the last axis 1-4, which is (N, H, W, C)."""
    if array.ndim == 2:
        return "HW"
    if array.ndim == 3:
        return "HWC" if array.shape[-1] in (3, 4) and min(array.shape[:2]) > 4 else "NHW"
    if array.ndim == 4:
        return "NHWC" if array.shape[1] > 4 and 1 <= array.shape[-1] <= 4 else "NCHW"
    raise DataError(f"expected an array of shape (H, W), (H, W, C), (N, H, W), (N, H, W, C) or "
                    f"(N, C, H, W), got {array.shape}")


def nhwc_shape(shape: tuple, layout: str) -> tuple:
    """The [N, H, W, C] shape of an array of ``shape`` read in ``layout`` (ValueError if the rank
    does not fit the layout)."""
    rank = {"HW": 2, "NHW": 3, "IDX": 3, "HWC": 3}.get(layout, 4)
    if len(shape) != rank:
        raise ValueError(f"layout {layout} needs {rank} axes, the shape is {shape}")
    if layout == "HW":
        return (1, *shape, 1)
    if layout in ("NHW", "IDX"):
        return (*shape, 1)
    if layout == "HWC":
        return (1, *shape)
    if layout == "NCHW":
        return (shape[0], shape[2], shape[3], shape[1])
    return tuple(shape)


def to_nhwc(array: np.ndarray, layout: str) -> np.ndarray:
    """The array as images [N, H, W, C]."""
    if layout == "HW":
        return array[None, :, :, None]
    if layout in ("NHW", "IDX"):
        return array[..., None]
    if layout == "HWC":
        return array[None]
    if layout == "NCHW":
        return array.transpose(0, 2, 3, 1)
    return array


def from_nhwc(images: np.ndarray, layout: str) -> np.ndarray:
    """``to_nhwc``'s inverse (C-contiguous)."""
    if layout == "HW":
        out = images[0, :, :, 0]
    elif layout in ("NHW", "IDX"):
        out = images[..., 0]
    elif layout == "HWC":
        out = images[0]
    elif layout == "NCHW":
        out = images.transpose(0, 3, 1, 2)
    else:
        out = images
    return np.ascontiguousarray(out)


# ----- tiles -----------------------------------------------------------------------------------
def tile_grid(height: int, width: int, patch: tuple) -> tuple[int, int]:
    """Tiles down and across for an image of height x width and a model's item shape (c, P, Q)."""
    return -(-height // patch[1]), -(-width // patch[2])


def tiles_per_image(channels: int, height: int, width: int, patch: tuple) -> int:
    rows, cols = tile_grid(height, width, patch)
    return rows * cols * (channels if patch[0] == 1 else 1)


def check_patch(channels: int, patch: tuple, model_name: str) -> None:
    if patch[0] not in (1, channels):
        raise DataError(f"model {model_name} codes items of {patch[0]} channels; the images have "
                        f"{channels} (a one-channel model codes each channel as a grey image)")


def to_tiles(images: np.ndarray, patch: tuple) -> np.ndarray:
    """Images [N, H, W, C] -> tiles [T, c, P, Q] for a model of item shape (c, P, Q): each image
    (each of its channels when c = 1) padded at the right and bottom by repeating its edge to
    whole tiles, tiles in raster order, images one after the other."""
    N, H, W, C = images.shape
    c, P, Q = patch
    planes = images.transpose(0, 3, 1, 2)  # [N, C, H, W]
    if c == 1:
        planes = planes.reshape(N * C, 1, H, W)
    rows, cols = tile_grid(H, W, patch)
    padded = np.pad(planes, ((0, 0), (0, 0), (0, rows * P - H), (0, cols * Q - W)), mode="edge")
    tiles = padded.reshape(len(planes), c, rows, P, cols, Q).transpose(0, 2, 4, 1, 3, 5)
    return np.ascontiguousarray(tiles.reshape(-1, c, P, Q))


def from_tiles(tiles: np.ndarray, shape: tuple, patch: tuple) -> np.ndarray:
    """``to_tiles``'s inverse: tiles [T, c, P, Q] -> images [N, H, W, C] of ``shape``."""
    N, H, W, C = shape
    c, P, Q = patch
    rows, cols = tile_grid(H, W, patch)
    planes = N * C if c == 1 else N
    if tiles.shape != (planes * rows * cols, c, P, Q):
        raise DataError(f"{tiles.shape[0]} tiles of {tiles.shape[1:]} do not make {N} images of {H}x{W}x{C}")
    padded = tiles.reshape(planes, rows, cols, c, P, Q).transpose(0, 3, 1, 4, 2, 5)
    padded = padded.reshape(planes, c, rows * P, cols * Q)[:, :, :H, :W]
    return np.ascontiguousarray(padded.reshape(N, C, H, W).transpose(0, 2, 3, 1))
