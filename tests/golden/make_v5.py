"""Write the golden files of format version 5 (images of any size and image files; run once,
never rewrite them: tests/test_images.py decodes them, and re-encodes the BFN one to the same
bytes).

    python3 tests/golden/make_v5.py
"""
import os

import numpy as np
import torch

import bfn_codec

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "bfn_codec", "samples", "fmnist-test-256.npy")
# an array of one 112x130 grey image: 4 x 5 tiles through the chain (portable arithmetic)
BFN_NAME, BFN_SETTINGS = "v5-array-fmnist-bfn", {"model": "fmnist", "steps": 6, "mode": "bfn", "portable": 6}
# three image files of a folder, classical streams (mode fallback): grey PNG, RGB BMP, RGBA TIFF
FILES_NAME = "v5-files-classical"
# 24 small binarised image files (bilevel PNGs) whose tiles share the pool, through the chain
POOL_NAME, POOL_SETTINGS = "v5-files-pool", {"model": "fmnist-binary", "steps": 6, "mode": "bfn", "portable": 6}


def bfn_data() -> np.ndarray:
    tiles = np.load(SAMPLE)[100:120].reshape(4, 5, 28, 28)
    return np.ascontiguousarray(tiles.transpose(0, 2, 1, 3).reshape(112, 140)[:, :130])


def files_data():
    from bfn_codec.images import ImageFile

    s = np.load(SAMPLE)
    grey = s[0:4].reshape(2, 2, 28, 28).transpose(0, 2, 1, 3).reshape(56, 56)[:50, :41]
    rgb = np.stack([s[4], s[5][::-1], s[6][:, ::-1]], -1)[:17, :23]
    rgba = np.stack([s[7], s[8], s[9], 255 - s[10]], -1)[:9, :28]
    return [ImageFile("a/grey.png", grey[None, ..., None], "png", "L"),
            ImageFile("b.bmp", rgb[None], "bmp", "RGB"), ImageFile("c.tiff", rgba[None], "tiff", "RGBA")]


def pool_data():
    from bfn_codec.data import binarise
    from bfn_codec.images import ImageFile

    s = binarise(np.load(SAMPLE)[120:144])
    return [ImageFile(f"{i:02d}.png", s[i][None, :, :20 + i % 9, None], "png", "1") for i in range(24)]


def write_once(path, write):
    if os.path.exists(path):
        raise SystemExit(f"{path} exists: golden files are never rewritten")
    write(path)


if __name__ == "__main__":
    torch.set_num_threads(1)
    from bfn_codec.api import compress_images

    x = bfn_data()
    blob = bfn_codec.compress(x, **BFN_SETTINGS)
    write_once(os.path.join(HERE, BFN_NAME + ".bfn"), lambda p: open(p, "wb").write(blob))
    write_once(os.path.join(HERE, BFN_NAME + ".npy"), lambda p: np.save(p, x))
    files = files_data()
    blob, _ = compress_images(files, mode="fallback", folder=True)
    write_once(os.path.join(HERE, FILES_NAME + ".bfn"), lambda p: open(p, "wb").write(blob))
    blob, _ = compress_images(pool_data(), folder=True, **POOL_SETTINGS)
    write_once(os.path.join(HERE, POOL_NAME + ".bfn"), lambda p: open(p, "wb").write(blob))
    print(BFN_NAME, FILES_NAME, POOL_NAME, "written")
