"""The classical lossless image streams the BFN stream competes with, per image (imagecodec.py).

PNG (Pillow, ``optimize``: zlib level 9 and the best filter per row) and WebP lossless (Pillow's
libwebp at its slowest, strongest setting: ``method=6``, ``quality=100``; ``exact`` keeps the
colour under fully transparent pixels). Both decode exactly by their specifications, in any
later release of any decoder, so they need no model and no portable arithmetic. A set of N
images of the same size is coded as one picture of the N images stacked vertically.
"""
from __future__ import annotations

import io

import numpy as np

from .container import FormatError
from .images import MODE_FOR_CHANNELS, _pillow, pillow_image

STREAMS = ("png", "webp")
WEBP_MAX_SIDE = 16383  # the WebP format's limit


def _stacked(images: np.ndarray) -> np.ndarray:
    N, H, W, C = images.shape
    return images.reshape(N * H, W, C)


def encode(images: np.ndarray, stream: str, binary: bool) -> bytes | None:
    """Images [N, H, W, C] as one ``stream`` (png or webp), or None where that stream cannot hold
    them (WebP: two channels, or a side over 16,383 pixels). ``binary``: values are 0/1."""
    picture = _stacked(images)
    C = picture.shape[-1]
    buf = io.BytesIO()
    if stream == "png":
        mode = "1" if binary and C == 1 else MODE_FOR_CHANNELS[C]
        pillow_image(picture, mode).save(buf, format="PNG", optimize=True)
        return buf.getvalue()
    if stream == "webp":
        if C == 2 or max(picture.shape[:2]) > WEBP_MAX_SIDE:
            return None
        img = pillow_image(picture, MODE_FOR_CHANNELS[C])
        if C == 1:
            img = img.convert("RGB")  # WebP has no grey pictures: R = G = B, taken apart on decode
        img.save(buf, format="WEBP", lossless=True, quality=100, method=6, exact=True)
        return buf.getvalue()
    raise ValueError(f"unknown classical stream {stream!r}")


def decode(data: bytes, stream: str, shape: tuple) -> np.ndarray:
    """``encode``'s inverse: images [N, H, W, C] of ``shape``; a FormatError if ``data`` is not a
    picture of that size."""
    Image = _pillow()
    N, H, W, C = shape
    try:
        img = Image.open(io.BytesIO(data))
        expected = {"png": "PNG", "webp": "WEBP"}[stream]
        if img.format != expected:
            raise FormatError(f"the {stream} stream holds a {img.format} picture")
        if img.size != (W, N * H):
            raise FormatError(f"the {stream} stream holds a {img.size[0]}x{img.size[1]} picture, "
                              f"the index says {W}x{N * H}")
        img.load()
    except FormatError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt stream: Pillow raises OSError, SyntaxError...
        raise FormatError(f"corrupt {stream} stream ({type(e).__name__}: {e})") from None
    pixels = np.asarray(img)
    if img.mode == "1":
        pixels = pixels.astype(np.uint8)
    pixels = pixels.reshape(N * H, W, -1)
    if stream == "webp" and C in (1, 3) and pixels.shape[-1] == 4:
        pixels = pixels[..., :3]
    if C == 1 and pixels.shape[-1] == 3:
        pixels = pixels[..., :1]
    if pixels.shape[-1] != C:
        raise FormatError(f"the {stream} stream holds {pixels.shape[-1]} channels, the index says {C}")
    return np.ascontiguousarray(pixels, dtype=np.uint8).reshape(N, H, W, C)
