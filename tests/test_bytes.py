"""Any file as bytes: the window layout, the version-6 container, the dispatcher and the CLI."""
import io
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bfn_codec
from bfn_codec.revisions import PORTABLE_REVISION
from bfn_codec import bytestream
from bfn_codec.api import compress_bytes, decompress_bytes
from bfn_codec.bytefile import read_bytefile
from bfn_codec.cli import main
from bfn_codec.container import FormatError, read
from bfn_codec.inputs import classify
from fuzzlib import tiny_byte_model

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
sys.path.insert(0, GOLDEN_DIR)
from make_v6 import GOLDEN, golden_data  # noqa: E402

TEXT = (b"Bayesian Flow Networks send data through noisy messages; the receiver's guesses drive the "
        b"coder. ") * 12


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def byte_model():
    return tiny_byte_model(calibrate_on=TEXT)


# ----- the window layout -----------------------------------------------------------------------
@pytest.mark.parametrize("length", [0, 1, 255, 256, 257, 1000])
def test_windows_hold_every_byte_once_and_invert(length):
    data = np.random.default_rng(length).bytes(length)
    items = bytestream.to_items(data)
    assert items.shape == (-(-length // 256), 8, 4, 64) and items.max(initial=0) <= 1
    assert bytestream.from_items(items, length) == data
    if length:  # the padding of the last window is zero bytes
        assert bytestream.from_items(items, len(items) * 256)[length:] == bytes(len(items) * 256 - length)


def test_each_two_by_two_block_holds_four_consecutive_bytes_most_significant_bit_first():
    items = bytestream.to_items(bytes([0x80, 0x01, 0x02, 0x03]) + bytes(252))
    block = items[0, :, :2, :2]  # [8 bits, 2, 2]: bytes 0, 1 on the first row, 2, 3 below
    assert block[0].tolist() == [[1, 0], [0, 0]]  # 0x80: the top bit of byte 0
    assert block[7].tolist() == [[0, 1], [0, 1]]  # the low bits of bytes 1 and 3
    assert block[6].tolist() == [[0, 0], [1, 1]]  # bit 1 of bytes 2 and 3
    assert items[0, :, :, 2:].sum() == 0


# ----- round trips through the API -------------------------------------------------------------
@pytest.mark.parametrize("data", [b"", b"x", b"a" * 3000, TEXT[:700], bytes(range(256)) * 3],
                         ids=["empty", "one-byte", "repeated-byte", "text-700", "all-bytes"])
@pytest.mark.parametrize("mode", ["auto", "bfn", "fallback"])
def test_bytes_round_trip_in_every_mode(byte_model, data, mode):
    blob, stats = compress_bytes(data, byte_model, name="f.txt", steps=3, mode=mode)
    index = read_bytefile(blob)
    assert index.length == len(data) and index.name == "f.txt"
    if mode == "bfn" and data:
        assert index.stream == "bfn"
        inner = read(blob[index.offset:index.offset + index.length and index.offset + index.stream_length])[0]
        assert inner.item_shape == bytestream.ITEM_SHAPE and inner.count == -(-len(data) // 256)
    if mode == "fallback":
        assert index.stream in ("stored", "lzma2")
    assert len(blob) == min(stats["candidates"].values()) + (len(blob) - index.stream_length) or mode == "bfn"
    assert decompress_bytes(blob, byte_model) == ("f.txt", data)
    assert bfn_codec.decompress(blob, model=byte_model) == data


def test_random_bytes_cost_at_most_a_few_dozen_bytes_over_their_size(byte_model):
    data = np.random.default_rng(5).bytes(5000)
    blob, stats = compress_bytes(data, byte_model, name="random.bin", steps=3)
    assert read_bytefile(blob).stream == "stored" and len(blob) <= len(data) + 40
    # the model's estimate on a sample of windows kept the chain from running
    assert "bfn" not in stats["candidates"] and stats["probes"]["bytes8"]["estimate_bytes"] >= 0.98 * len(data)
    assert bfn_codec.decompress(blob) == data


def test_the_bfn_stream_is_portable_and_a_wrong_model_is_refused(byte_model):
    # letters at random: LZMA2 cannot shrink them much, so the seed is a few windows
    letters = np.random.default_rng(3).choice(np.frombuffer(b"abcdefgh ", np.uint8), 6000).tobytes()
    blob, stats = compress_bytes(letters, byte_model, steps=3, mode="bfn")
    index = read_bytefile(blob)
    inner = read(blob[index.offset:index.offset + index.stream_length])[0]
    # the chain ran (after the windows of its LZMA2 seed), with the portable arithmetic
    assert inner.coder_revision == PORTABLE_REVISION and inner.batches, stats
    other = tiny_byte_model(seed=1, calibrate_on=TEXT)
    # in-memory models have no weights hash to compare: the stream or the checksum refuses it
    with pytest.raises(FormatError, match="written with model|corrupt|checksum"):
        bfn_codec.decompress(blob, model=other)


def test_a_model_of_another_shape_is_a_clear_error():
    with pytest.raises(bfn_codec.DataError if hasattr(bfn_codec, "DataError") else Exception,
                       match="not byte windows"):
        compress_bytes(TEXT, "fmnist-binary", mode="bfn")


def test_names_the_format_cannot_carry_are_not_stored_and_hostile_names_are_refused(byte_model):
    from bfn_codec.bytefile import ByteFile, bytes_checksum, write_bytefile

    blob, _ = compress_bytes(b"data", byte_model, name="a\\b.txt")  # a legal Linux name, not storable
    assert decompress_bytes(blob) == ("", b"data")
    body = bytearray(compress_bytes(b"data", byte_model, name="x/y.txt".replace("/", "_"))[0][:-4])
    body[body.index(b"x_y")+1] = ord("/")  # a folder in the stored name, with a valid CRC
    import struct
    import zlib

    with pytest.raises(FormatError, match="not a plain file name"):
        read_bytefile(bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)) & 0xFFFFFFFF))
    with pytest.raises(ValueError):
        write_bytefile(ByteFile("../up", 0, "stored", 0, bytes_checksum(b"", "../up")[:8]), b"")


def test_corrupt_byte_files_are_format_errors(byte_model):
    blob, _ = compress_bytes(TEXT, byte_model, name="f.txt", mode="fallback")
    for bad in (blob[:-1], blob[:10], blob[:4] + bytes([6]) + blob[5:-4] + b"\0\0\0\0"):
        with pytest.raises(FormatError):
            bfn_codec.decompress(bad)


# ----- the dispatcher ----------------------------------------------------------------------------
def test_files_that_are_not_arrays_or_codable_images_are_bytes(tmp_path):
    assert classify(TEXT, "notes.txt").kind == "bytes"
    jpeg = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(jpeg, "JPEG")
    source = classify(jpeg.getvalue(), "photo.jpg")
    assert source.kind == "bytes" and "JPEG files are not supported" in source.note
    deep = io.BytesIO()
    Image.fromarray(np.zeros((4, 4), np.uint16) + 300).save(deep, "PNG")
    assert classify(deep.getvalue(), "deep.png").kind == "bytes"
    floats = io.BytesIO()
    np.save(floats, np.zeros((3, 3), np.float32))
    source = classify(floats.getvalue(), "f.npy")
    assert source.kind == "bytes" and "expected a uint8 array" in source.note
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 30), dtype=np.uint8)).save(png, "PNG")
    assert classify(png.getvalue(), "a.png").kind == "images"
    with pytest.raises(bfn_codec.data.DataError, match="not a readable image"):
        classify(png.getvalue()[:60], "corrupt.png")  # a broken image stays an error


# ----- the command line ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 1, 300, 3000])
def test_cli_round_trips_any_file_and_restores_its_name(tmp_path, size):
    data = (TEXT * 4)[:size]
    src = tmp_path / "notes.txt"
    src.write_bytes(data)
    res = cli("compress", src, "-q")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "notes.txt.bfn").exists() and src.read_bytes() == data  # the input is kept
    res = cli("-l", tmp_path / "notes.txt.bfn")
    assert res.exit_code == 0 and "format_version: 6" in res.output and f"length: {size}" in res.output
    assert cli("-t", tmp_path / "notes.txt.bfn").output.endswith(f"OK ({size:,} bytes, checksum verified)\n")
    # renamed, the file still decompresses to the name it was compressed from
    os.rename(tmp_path / "notes.txt.bfn", tmp_path / "archive")
    src.unlink()
    res = cli("-d", tmp_path / "archive", "-q")
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == data
    res = cli("-d", tmp_path / "archive", "-q")  # never overwritten without -f
    assert res.exit_code == 1 and "already exists" in res.output


def test_cli_codes_a_jpeg_as_bytes_and_says_why(tmp_path):
    src = tmp_path / "photo.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(src)
    res = cli("compress", src)
    assert res.exit_code == 0, res.output
    assert "JPEG files are not supported" in res.output and "coded as a file of bytes" in res.output
    out = cli("-d", "-c", tmp_path / "photo.jpg.bfn")
    assert out.exit_code == 0 and out.stdout_bytes == src.read_bytes()


def test_cli_with_a_byte_model_codes_through_the_chain(tmp_path):
    from bfn_codec.models import integer_config
    from bfn_codec.portable import power_times

    directory = tmp_path / "model"
    model = tiny_byte_model()
    model.save(directory)  # the weights' hash first, then the calibration that names it
    items = bytestream.to_items(TEXT)
    model.integer = integer_config(model, items.reshape(len(items), -1), 3, power_times(3, 1.0))
    model.save(directory)
    src = tmp_path / "notes.txt"
    src.write_bytes(TEXT)
    res = cli("compress", src, "--model", directory, "--mode", "bfn", "-n", "3", "-v")
    assert res.exit_code == 0 and "stream bfn" in res.output, res.output
    res = cli("-d", "-c", tmp_path / "notes.txt.bfn", "--model", directory)
    assert res.exit_code == 0 and res.stdout_bytes == TEXT
    # info --estimate: the model's own L^n + L^r on the file's windows, beside what the file costs
    import json

    res = cli("info", "--estimate", "--json", "--model", directory, tmp_path / "notes.txt.bfn")
    assert res.exit_code == 0, res.output
    info = json.loads(res.output[res.output.index("{"):])
    assert info["stream"] == "bfn" and info["model_bits_per_byte"] > 0
    assert info["overhead_percent"] == pytest.approx(100 * (info["achieved_bits_per_byte"] / info["model_bits_per_byte"] - 1))


# ----- golden files ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_byte_files_decode_and_their_bytes_reencode_to_the_same_file(name):
    """tests/golden/make_v6.py wrote these once: each decodes to its bytes and name, and the
    bytes re-encode to the same file, so the byte model's probabilities (portable arithmetic)
    and the container are pinned."""
    from bfn_codec.zoo import bundled_model_for

    stored, settings = GOLDEN[name]
    blob = open(os.path.join(GOLDEN_DIR, name + ".bfn"), "rb").read()
    index = read_bytefile(blob)
    assert index.stream == {"v6-lzma2": "lzma2", "v6-stored": "stored"}.get(name, "bfn")
    if index.stream == "bfn":
        inner = read(blob[index.offset:index.offset + index.stream_length])[0]
        assert inner.coder_revision == 6 and inner.batches and bundled_model_for(inner.model_hash) == settings["model"]
        assert index.alphabet == ("text8" if settings["model"] == "text8-chars" else "bytes8")
    assert decompress_bytes(blob) == (stored, golden_data(name))
    assert compress_bytes(golden_data(name), name=stored, **settings)[0] == blob
