"""Mutations of valid bfn-codec files for the fuzz test (tests/) and harness (benchmarks/fuzz.py)."""
import struct
import zlib

import numpy as np

import bfn_codec
from bfn_codec.container import FormatError
from bfn_codec.models import OracleModel, make_flow


def sample_files():
    """A tiny chain-mode file and a fallback-mode file, with the oracle model that wrote them."""
    flow = make_flow({"data_type": "discrete", "K": 2})
    rng = np.random.default_rng(0)
    pi = rng.dirichlet([0.4, 0.4], size=16)
    model = OracleModel(flow, pi, shape=(1, 4, 4))
    x = (rng.random((60, 4, 4)) < pi[:, 1].reshape(4, 4)).astype(np.uint8)
    chain = bfn_codec.compress(x, model=model, steps=3, mode="bfn")
    fallback = bfn_codec.compress(x[:5], model=model, steps=3, mode="fallback")
    return model, [(chain, x), (fallback, x[:5])]


def discretised_sample_files():
    """A chain-mode file of 8-bit data written with a small discretised network whose receiver
    weights are coded on windows of bins (coder revision 4), with that model."""
    from conftest import tiny_network

    flow = make_flow({"data_type": "discretised", "K": 256, "sigma1": 1e-3})
    model = tiny_network(flow, scale=0.05)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (12, 4, 4)).astype(np.uint8)
    x[:4] = 0
    chain = bfn_codec.compress(x, model=model, steps=6, mode="bfn")
    return model, [(chain, x)]


def portable_sample_files():
    """The same kind of file written with the portable arithmetic (coder revision 6): the small
    network calibrated for integer inference, so escapes, windows and integer frequencies are
    all on the decoder's path."""
    from conftest import tiny_network

    from bfn_codec.models import integer_config
    from bfn_codec.portable import power_times

    flow = make_flow({"data_type": "discretised", "K": 256, "sigma1": 1e-3})
    model = tiny_network(flow, scale=0.05)
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (12, 4, 4)).astype(np.uint8)
    x[:4] = 0
    model.integer = integer_config(model, x.reshape(12, -1), 6, power_times(6, 1.0))
    chain = bfn_codec.compress(x, model=model, steps=6, mode="bfn", portable=True)
    return model, [(chain, x)]


def imageset_sample_files():
    """Version-5 files (images of any size): an array of images coded as tiles through the
    chain (the oracle model of 4x4 binary items), the same as a classical PNG stream, and an
    image file (its name, format and mode in the index), with the model."""
    from bfn_codec.api import compress_images
    from bfn_codec.images import ImageFile

    model, [(_, x), _] = sample_files()
    image = x[:36].reshape(6, 6, 4, 4).transpose(0, 2, 1, 3).reshape(24, 24)[:22, :23]
    tiles = bfn_codec.compress(image, model=model, steps=3, mode="bfn")
    png = bfn_codec.compress(image, model=model, steps=3, mode="fallback")
    rgb = np.stack([image * 200, image[::-1] * 100, image[:, ::-1] * 50], -1)[:5, :7]
    named, _ = compress_images([ImageFile("a/photo.png", rgb[None], "png", "RGB")], mode="fallback")
    return model, [(tiles, image), (png, image), (named, rgb)]


def pooled_sample_files():
    """A version-5 file of 12 small image files whose tiles share one chain (the pool), written
    with the oracle model, and the last image (what decompress returns is checked through
    decompress_images in the test's check)."""
    from bfn_codec.api import compress_images
    from bfn_codec.images import ImageFile

    model, [(_, x), _] = sample_files()
    files = [ImageFile(f"{i}.png", x[2 * i:2 * i + 2].transpose(1, 0, 2).reshape(1, 4, 8, 1), "png", "1")
             for i in range(12)]
    blob, _ = compress_images(files, model, steps=3, mode="bfn")
    return model, [(blob, files)]


def with_crc(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def mutate(blob: bytes, rng) -> bytes:
    kind = rng.integers(7)
    b = bytearray(blob)
    if kind == 0:  # truncate
        return bytes(b[: rng.integers(len(b))])
    if kind == 1:  # flip 1-8 bits
        for _ in range(rng.integers(1, 9)):
            p = rng.integers(len(b))
            b[p] ^= 1 << int(rng.integers(8))
        return bytes(b)
    if kind == 2:  # random bytes
        return rng.bytes(int(rng.integers(0, 200)))
    if kind == 3:  # random bytes after the magic
        return b"BFN\x1a" + rng.bytes(int(rng.integers(0, 200)))
    if kind == 4:  # overwrite header bytes, then fix the CRC so the fields are what gets tested
        body = bytearray(blob[:-4])
        for _ in range(rng.integers(1, 4)):
            p = int(rng.integers(4, min(len(body), 120)))
            body[p] = int(rng.integers(256))
        return with_crc(bytes(body))
    if kind == 5:  # change stream words, fix the CRC: must fail the range or data checksum
        body = bytearray(blob[:-4])
        p = int(rng.integers(max(0, len(body) - 64), len(body)))
        body[p] ^= int(rng.integers(1, 256))
        return with_crc(bytes(body))
    # append or insert garbage
    p = int(rng.integers(len(b) + 1))
    return bytes(b[:p]) + rng.bytes(int(rng.integers(1, 16))) + bytes(b[p:])


def _behaved(decode, same, what: str):
    """None if ``decode()`` ended in a one-line FormatError or returned what ``same`` accepts;
    else a description of the failure."""
    try:
        out = decode()
    except FormatError as e:
        return None if str(e) and "\n" not in str(e) else f"bad error message {str(e)!r}"
    except BaseException as e:  # noqa: BLE001 - anything else is a failure of the decoder
        if isinstance(e, KeyboardInterrupt):
            raise
        return f"{type(e).__name__}: {e}"
    return None if same(out) else f"returned different {what} without an error"


def check_one(blob: bytes, model, original: np.ndarray):
    """None if the decoder behaved (clear error, or the exact original); else a description."""
    return _behaved(lambda: bfn_codec.decompress(blob, model=model),
                    lambda out: out.shape == original.shape and np.array_equal(out, original), "data")


def check_files(blob: bytes, model, original: list):
    """check_one for image files: None if decompress_images ends in a FormatError or returns
    exactly the original files (names, formats, modes, pixels)."""
    from bfn_codec.api import decompress_images

    def same(decoded):
        files = decoded[1]
        return len(files) == len(original) and all(
            (a.name, a.file_format, a.mode) == (b.name, b.file_format, b.mode) and np.array_equal(a.pixels, b.pixels)
            for a, b in zip(files, original))

    return _behaved(lambda: decompress_images(blob, model), same, "files")


def _tiny_window_model(windows, K: int, seed, calibrate_on, steps):
    """A small untrained U-Net of a window layout (bytestream or text8: ITEM_SHAPE, to_items),
    optionally with an integer calibration on ``calibrate_on`` for the portable arithmetic."""
    from conftest import tiny_network

    from bfn_codec.models import integer_config
    from bfn_codec.portable import power_times

    model = tiny_network(make_flow({"data_type": "discrete", "K": K}), shape=windows.ITEM_SHAPE, seed=seed, scale=0.05)
    if calibrate_on is not None:
        items = windows.to_items(calibrate_on)
        model.integer = integer_config(model, items.reshape(len(items), -1), steps, power_times(steps, 1.0))
    return model


def tiny_byte_model(seed=0, calibrate_on: bytes | None = None, steps: int = 3):
    """The byte layout (8 x 4 x 64 binary windows)."""
    from bfn_codec import bytestream

    return _tiny_window_model(bytestream, 2, seed, calibrate_on, steps)


def tiny_text8_model(seed=0, calibrate_on: bytes | None = None, steps: int = 3):
    """The text8 layout (1 x 4 x 64, K = 27); ``calibrate_on``: text8-style bytes."""
    from bfn_codec import text8

    return _tiny_window_model(text8, text8.K, seed, calibrate_on, steps)


def bytefile_sample_files():
    """Version-6 files (any file's bytes): the BFN stream of a small byte model (portable
    arithmetic), the same bytes as LZMA2, and as stored bytes, with the model."""
    from bfn_codec.api import compress_bytes

    data = (b"The quick brown fox jumps over the lazy dog. " * 30)[:1100] + bytes(range(40))
    noise = np.random.default_rng(9).bytes(200)
    model = tiny_byte_model(calibrate_on=data)
    files = [compress_bytes(data, model, name="fox.txt", steps=3, mode="bfn")[0],
             compress_bytes(data, model, name="fox.txt", mode="fallback")[0],
             compress_bytes(noise, model, name="r.bin", mode="fallback")[0]]
    return model, [(files[0], data), (files[1], data), (files[2], noise)]


def text8_sample_files():
    """A version-6 file of text8 characters (alphabet 1) through a small K = 27 model's chain
    (portable arithmetic), with the model."""
    from bfn_codec.api import compress_bytes
    from bfn_codec.text8 import ALPHABET

    data = np.random.default_rng(27).choice(np.frombuffer(ALPHABET, np.uint8), 12000).tobytes()
    model = tiny_text8_model(calibrate_on=data[:512], steps=2)
    return model, [(compress_bytes(data, model, name="w.txt", steps=2, mode="bfn")[0], data)]


def check_bytes(blob: bytes, model, original: bytes):
    """check_one for version-6 files: a FormatError, or exactly the original bytes."""
    return _behaved(lambda: bfn_codec.decompress(blob, model=model), lambda out: out == original, "bytes")


def chunked_sample_files():
    """A chunked file (format version 4): three chunks of the oracle model's items, two through
    the chain and a short last one, with the model that wrote them."""
    model, [(_, x), _] = sample_files()
    chunked = bfn_codec.compress(x, model=model, steps=3, mode="bfn", chunk_items=25)
    return model, [(chunked, x)]
