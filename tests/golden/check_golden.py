"""Decode every portable golden file and re-encode its data with the settings it was written with.

One routine for every place that checks portability outside the main test process: the
subprocesses of tests/test_portable.py (other threads, oneDNN ISAs, numpy-only kernels) and the
fresh environments of benchmarks/portable_envs.py (other numpy / torch versions). Both must cover
the same files, so the list lives here, once:

* the array files of coder revisions 6, 7 and 8 (make_rev6.py ... make_rev8_w7a10.py): the
  decoded array and the whole re-encoded stream;
* the byte and text8-style files of format 6 (make_v6.py) and the colour image of format 5
  (make_v5_rgb.py): the decoded bytes / pixels and the payload of their inner BFN stream (the
  inner header records the writer's thread count, for information only).

``check()`` returns {name: [decoded, same_stream]}.
"""
from __future__ import annotations

import os

import numpy as np

import bfn_codec
from bfn_codec import bytefile, imageset
from bfn_codec.api import compress_bytes, compress_images, decompress_images
from bfn_codec.container import read
from bfn_codec.models import load_model, with_calibration
from make_rev6 import FILES
from make_rev7 import FILES as FILES7, settings as settings7
from make_rev8 import FILES as FILES8, settings as settings8
from make_rev8_w7a10 import FILES as FILES8W, settings as settings8w
from make_v5_rgb import RGB_NAME, RGB_SETTINGS, rgb_data
from make_v6 import GOLDEN as V6, golden_data as v6_data

HERE = os.path.dirname(os.path.abspath(__file__))
ARRAY_FILES = sorted(FILES) + sorted(FILES7) + sorted(FILES8) + sorted(FILES8W)
# the format-6 files with a BFN stream (v6-lzma2 and v6-stored hold no probabilities)
BYTE_FILES = sorted(name for name in V6 if V6[name][1]["mode"] == "bfn")
NAMES = ARRAY_FILES + BYTE_FILES + [RGB_NAME]


def writer(blob: bytes, model: str):
    """The bundled model with the integer calibration the file names: a golden file is
    re-encoded with the calibration it was written with, also after the bundled model has moved
    to another one (the zoo keeps earlier calibrations, config.json "integer_earlier")."""
    found = with_calibration(load_model(model), read(blob)[0].model_hash)
    assert found is not None, "the zoo lost the calibration of a golden file"
    return found


def _written_with(name: str) -> dict:
    if name in FILES7:
        return settings7(name)
    if name in FILES8:
        return settings8(name)
    if name in FILES8W:
        return settings8w(name)
    return dict(model=FILES[name][0], mode="bfn", portable=6)


def _blob(name: str) -> bytes:
    with open(os.path.join(HERE, name + ".bfn"), "rb") as f:
        return f.read()


def _array_file(name: str) -> list[bool]:
    blob = _blob(name)
    x = np.load(os.path.join(HERE, name + ".npy"))
    decoded = bool(np.array_equal(bfn_codec.decompress(blob), x))
    spec = _written_with(name)
    spec["model"] = writer(blob, spec["model"])
    return [decoded, read(bfn_codec.compress(x, **spec))[1] == read(blob)[1]]


def _byte_file(name: str) -> list[bool]:
    def payload(b: bytes) -> bytes:
        return read(bytefile.stream_bytes(b, bytefile.read_bytefile(b)))[1]
    blob, data = _blob(name), v6_data(name)
    again = compress_bytes(data, name=V6[name][0], **V6[name][1])[0]
    return [bfn_codec.decompress(blob) == data, payload(again) == payload(blob)]


def _rgb_file() -> list[bool]:
    def payload(b: bytes) -> bytes:
        return read(imageset.stream_bytes(b, imageset.read_imageset(b).entries[0]))[1]
    blob, images = _blob(RGB_NAME), rgb_data()
    decoded = bool(np.array_equal(decompress_images(blob)[1][0].pixels, images[0].pixels))
    return [decoded, payload(compress_images(images, **RGB_SETTINGS)[0]) == payload(blob)]


def check() -> dict[str, list[bool]]:
    out = {name: _array_file(name) for name in ARRAY_FILES}
    out.update({name: _byte_file(name) for name in BYTE_FILES})
    out[RGB_NAME] = _rgb_file()
    return out
