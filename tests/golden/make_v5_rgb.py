"""Write the golden file of the bundled colour model (format version 5, portable arithmetic; run
once, never rewrite it: tests/test_images.py decodes it and re-encodes its data to the same bytes).

    python3 tests/golden/make_v5_rgb.py
"""
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# one 45x70 RGB image file: 2 x 3 tiles of the model's 32x32 items (edges padded), through the
# chain with the model picked by the image's three channels
RGB_NAME, RGB_SETTINGS = "v5-rgb-photo-rgb", {"steps": 4, "mode": "bfn", "portable": 6}


def rgb_data():
    """A colour image of gradients, edges and a pseudo-random texture, from integer arithmetic
    alone (the texture keeps the LZMA2 seed from holding every tile: the chain must run)."""
    from bfn_codec.images import ImageFile

    y, x = np.mgrid[0:45, 0:70]
    noise = (x * 7919 + y * 104729 + (x * y) * 31) % 23
    r = (3 * x + 2 * y + noise) % 256
    g = (128 + 96 * ((x // 9 + y // 7) % 2) + noise * 2) % 256
    b = np.where((x - 35) ** 2 + (y - 22) ** 2 < 15 ** 2, 230 - y, 40 + x) + noise
    pixels = np.stack([r, g, b], -1).astype(np.uint8)
    return [ImageFile("photo.png", pixels[None], "png", "RGB")]


if __name__ == "__main__":
    torch.set_num_threads(1)
    from make_v5 import write_once

    from bfn_codec.api import compress_images

    blob, _ = compress_images(rgb_data(), **RGB_SETTINGS)
    write_once(os.path.join(HERE, RGB_NAME + ".bfn"), lambda p: open(p, "wb").write(blob))
    print(RGB_NAME, "written")
