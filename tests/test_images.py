"""Images as users have them: image files and folders, any size, grey or colour (images.py,
imageset.py, imagecodec.py, inputs.py and the command line)."""
import os

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import bfn_codec
from bfn_codec.revisions import PORTABLE_REVISION
from bfn_codec.api import compress_images, compress_with_stats, decompress_images
from bfn_codec.cli import main
from bfn_codec.container import FormatError, read
from bfn_codec.images import ImageFile, array_layout, from_tiles, read_image, to_tiles, write_image
from bfn_codec.imageset import Entry, ImageSet, is_imageset, read_imageset, write_imageset

from conftest import bundled_with_bits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))
SUFFIX = {"png": ".png", "pnm": ".pgm", "tiff": ".tiff", "bmp": ".bmp"}


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def mosaic(height, width, channels=1, seed=0):
    """Fashion-MNIST images tiled to height x width (channels: shifted copies), so that the
    bundled models see their kind of data at any size."""
    rows, cols = -(-height // 28), -(-width // 28)
    picks = np.random.default_rng(seed).integers(0, len(SAMPLE), rows * cols + channels)
    planes = [SAMPLE[picks[c:c + rows * cols]].reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3)
              .reshape(rows * 28, cols * 28)[:height, :width] for c in range(channels)]
    return np.stack(planes, -1)


def pixels_of(path):
    with Image.open(path) as img:
        return img.mode, np.asarray(img).copy()


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 2), (37, 61, 3), (300, 200, 4), (28, 56, 1)])
@pytest.mark.parametrize("patch", [(1, 28, 28), (1, 4, 4), ("C", 8, 16)])
def test_tiles_round_trip_any_size_and_channel_count(shape, patch):
    images = np.random.default_rng(1).integers(0, 256, (2, *shape), dtype=np.uint8)
    patch = (shape[-1] if patch[0] == "C" else 1, *patch[1:])
    tiles = to_tiles(images, patch)
    assert tiles.shape[1:] == patch
    rows, cols = -(-shape[0] // patch[1]), -(-shape[1] // patch[2])
    assert len(tiles) == 2 * rows * cols * (shape[-1] if patch[0] == 1 else 1)
    assert np.array_equal(from_tiles(tiles, images.shape, patch), images)
    # the padding repeats the last row and column (it is not stored: from_tiles crops it)
    first = tiles[0, 0] if patch[0] == 1 else tiles[0, 0]
    assert first[-1, -1] == images[0, min(patch[1], shape[0]) - 1, min(patch[2], shape[1]) - 1, 0]


def test_array_layouts():
    assert array_layout(np.zeros((28, 28), np.uint8)) == "HW"
    assert array_layout(np.zeros((10, 28, 28), np.uint8)) == "NHW"
    assert array_layout(np.zeros((64, 48, 3), np.uint8)) == "HWC"
    assert array_layout(np.zeros((2, 3, 28, 28), np.uint8)) == "NCHW"
    assert array_layout(np.zeros((2, 32, 32, 3), np.uint8)) == "NHWC"


@pytest.mark.parametrize("fmt", ["png", "pnm", "tiff", "bmp"])
@pytest.mark.parametrize("mode,size", [("L", (1, 1)), ("L", (3, 5)), ("RGB", (37, 61)), ("RGB", (300, 200)),
                                       ("L", (300, 200)), ("RGB", (1, 1))])
def test_image_files_round_trip_through_the_command_line(tmp_path, fmt, mode, size):
    """Every format, grey and RGB, odd sizes: decompress writes the file back under its name,
    same format and mode, identical pixels. --mode fallback keeps it fast (no network); the
    BFN stream has its own tests below."""
    pixels = mosaic(*size, channels=3 if mode == "RGB" else 1)
    src = tmp_path / f"pic{SUFFIX[fmt]}"
    src.write_bytes(write_image(pixels, mode, fmt))
    res = cli("compress", src, "--mode", "fallback", "-q")
    assert res.exit_code == 0, res.output
    os.rename(src, tmp_path / "original")
    res = cli("decompress", f"{src}.bfn", "-q")
    assert res.exit_code == 0, res.output
    assert src.exists()
    got_mode, got = pixels_of(src)
    assert got_mode == mode and np.array_equal(got.reshape(pixels.shape), pixels)
    assert Image.open(src).format == Image.open(tmp_path / "original").format


@pytest.mark.parametrize("mode", ["RGBA", "LA", "1", "P"])
def test_alpha_bilevel_and_palette_images(tmp_path, mode):
    rgb = mosaic(20, 30, 3)
    img = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        img = Image.fromarray(np.concatenate([rgb, rgb[..., :1] // 2], -1), "RGBA")
    elif mode == "LA":
        img = Image.fromarray(np.stack([rgb[..., 0], rgb[..., 1]], -1), "LA")
    elif mode == "1":
        img = Image.fromarray(rgb[..., 0] > 80)
    elif mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    src = tmp_path / "x.png"
    img.save(src)
    expected = np.asarray(img.convert("RGB") if mode == "P" else img)
    assert cli("compress", src, "-q").exit_code == 0
    src.unlink()
    assert cli("decompress", f"{src}.bfn", "-q").exit_code == 0
    got_mode, got = pixels_of(src)
    assert got_mode == ("RGB" if mode == "P" else mode)  # a palette comes back as its colours
    assert np.array_equal(got, expected)


def test_a_folder_round_trips_with_names_order_and_subfolders(tmp_path):
    """Several sizes and formats, a subfolder, a text file (skipped with a warning, never
    silently) and a JPEG (refused by name: it could not be written back exactly)."""
    src = tmp_path / "scans"
    (src / "sub").mkdir(parents=True)
    files = {"b.png": mosaic(40, 33), "a.bmp": mosaic(28, 28, 3, seed=2), "sub/c.tiff": mosaic(5, 90, 4, seed=3),
             "z.pgm": mosaic(64, 64, seed=4)}
    modes = {"b.png": "L", "a.bmp": "RGB", "sub/c.tiff": "RGBA", "z.pgm": "L"}
    for name, pixels in files.items():
        fmt = {".png": "png", ".bmp": "bmp", ".tiff": "tiff", ".pgm": "pnm"}[os.path.splitext(name)[1]]
        (src / name).write_bytes(write_image(pixels, modes[name], fmt))
    (src / "notes.txt").write_text("not an image")
    Image.fromarray(files["a.bmp"]).save(src / "photo.jpg")
    res = cli("compress", src, "--mode", "fallback")
    assert res.exit_code == 0, res.output
    assert "skipped notes.txt (not an image)" in res.output
    assert "skipped photo.jpg (JPEG files are not supported" in res.output
    blob = (tmp_path / "scans.bfn").read_bytes()
    index = read_imageset(blob)
    assert index.folder and [e.name for e in index.entries] == ["a.bmp", "b.png", "sub/c.tiff", "z.pgm"]
    res = cli("decompress", tmp_path / "scans.bfn", "-o", tmp_path / "out", "-q")
    assert res.exit_code == 0, res.output
    for name, pixels in files.items():
        mode, got = pixels_of(tmp_path / "out" / name)
        assert mode == modes[name] and np.array_equal(got.reshape(pixels.shape), pixels), name
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.bmp", "b.png", "sub", "z.pgm"]
    # an existing folder is written into only with -f; --rm never deletes a folder
    res = cli("decompress", tmp_path / "scans.bfn", "-o", tmp_path / "out", "-q")
    assert res.exit_code == 1 and "already exists; use -f" in res.output
    assert cli("decompress", tmp_path / "scans.bfn", "-o", tmp_path / "out", "-q", "-f").exit_code == 0
    res = cli("compress", src, "-o", tmp_path / "again.bfn", "--rm", "--mode", "fallback")
    assert res.exit_code != 0 and src.is_dir() and not (tmp_path / "again.bfn").exists()
    assert cli("test", tmp_path / "scans.bfn").output.endswith("OK (4 images, checksums verified)\n")


def test_bad_image_inputs_are_one_line_errors(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(mosaic(30, 30)[..., 0]).save(good)
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:60])
    res = cli("compress", corrupt)
    assert res.exit_code == 1 and "corrupt.png: not a readable image" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "corrupt.png.bfn").exists()
    # a 16-bit PNG is not coded as pixels: it is coded as a file of bytes, and says so
    deep = tmp_path / "deep.png"
    Image.fromarray(np.zeros((4, 4), np.uint16) + 300).save(deep)
    res = cli("compress", deep)
    assert res.exit_code == 0 and "images are not supported" in res.output and "file of bytes" in res.output
    assert cli("-d", "-c", tmp_path / "deep.png.bfn").stdout_bytes == deep.read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_text("x")
    res = cli("compress", empty)
    assert res.exit_code == 1 and "no image files" in res.output


def test_the_bfn_stream_codes_tiles_of_a_large_grey_image_and_round_trips():
    """An image not of the model's item shape goes through the chain as 28x28 tiles; auto
    keeps the BFN stream when it is the smallest, and it is checked against PNG and WebP."""
    image = mosaic(150, 200)[..., 0]
    blob, info = compress_with_stats(image, "fmnist", steps=4, mode="bfn")
    entry = read_imageset(blob).entries[0]
    assert entry.stream == "bfn" and info["tiles"] == 6 * 8
    inner = read(blob[entry.offset:entry.offset + entry.length])[0]
    assert inner.item_shape == (1, 28, 28) and inner.count == 48 and inner.batches
    assert np.array_equal(bfn_codec.decompress(blob), image)
    auto, info = compress_with_stats(image, "fmnist", steps=4)
    # auto's BFN stream (if the probe lets it be coded) is the item coder's own auto file: the
    # chain or its LZMA2 fallback
    assert len(auto) <= len(blob) and info["candidates"].get("bfn", 0) <= entry.length
    assert "probe" in info and len(auto) - min(info["candidates"].values()) < 40  # the index: a few dozen bytes


def test_colour_images_with_a_grey_model_are_coded_channel_by_channel():
    rgb = mosaic(30, 45, 3)
    files = [ImageFile("x.png", rgb[None], "png", "RGB")]
    blob, info = compress_images(files, "fmnist", steps=3, mode="bfn")
    assert info["files"][0]["tiles"] == 3 * 2 * 2
    folder, back = decompress_images(blob)
    assert not folder and back[0].name == "x.png" and np.array_equal(back[0].pixels, rgb[None])


def test_arrays_of_any_shape_round_trip_and_28x28_items_stay_version_3():
    rng = np.random.default_rng(0)
    for array in (mosaic(33, 50, 3), mosaic(40, 29)[..., 0], np.stack([mosaic(31, 31, seed=s)[..., 0]
                                                                        for s in range(3)]),
                  mosaic(30, 30, 3)[None].repeat(2, 0), rng.integers(0, 2, (35, 35), dtype=np.uint8)):
        blob = bfn_codec.compress(array, mode="fallback")
        assert is_imageset(blob)
        back = bfn_codec.decompress(blob)
        assert back.shape == array.shape and np.array_equal(back, array)
    blob = bfn_codec.compress(SAMPLE[:3], mode="fallback")
    assert not is_imageset(blob)  # the model's item shape: the version-3 file, as before


def test_auto_mode_keeps_a_classical_picture_of_28x28_tiles_when_it_is_smaller():
    """Data unlike the training set (noise-free gradients here) never costs much more than the
    PNG / WebP fallback of the same tiles."""
    ramp = np.add.outer(np.arange(28), np.arange(28)).astype(np.uint8)
    tiles = np.stack([ramp + i for i in range(4)])
    blob, info = compress_with_stats(tiles, "fmnist", steps=3)
    assert info["mode"] in ("png", "webp") and is_imageset(blob)
    assert np.array_equal(bfn_codec.decompress(blob), tiles)


def test_hostile_names_and_shapes_are_refused():
    pixels = np.zeros((1, 2, 2, 1), np.uint8)
    from bfn_codec.classical import encode
    from bfn_codec.imageset import pixels_checksum

    data = encode(pixels, "png", False)
    for name in ("../evil.png", "/etc/passwd", "a/../../b.png", "a//b.png", ""):
        entry = Entry(1, 2, 2, 1, "png", len(data), pixels_checksum(pixels)[:8], name="x.png", file_format="png",
                      mode="L")
        blob = bytearray(write_imageset(ImageSet("files", [entry]), [data]))
        # rewrite the stored name with the same length, then fix the CRC
        from fuzzlib import with_crc

        start = bytes(blob).index(b"x.png")
        bad = bytes(blob[:start - 1]) + bytes([len(name.encode())]) + name.encode() + bytes(blob[start + 5:-4])
        with pytest.raises(FormatError, match="file name|refused|truncated|streams"):
            read_imageset(with_crc(bad))
    with pytest.raises(ValueError, match="file name"):
        write_imageset(ImageSet("files", [Entry(1, 2, 2, 1, "png", len(data), b"\0" * 8, name="../x.png",
                                                file_format="png", mode="L")]), [data])


def test_read_image_refuses_multi_page_files(tmp_path):
    import io

    frames = [Image.fromarray(mosaic(8, 8)[..., 0]), Image.fromarray(mosaic(8, 8, seed=1)[..., 0])]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    with pytest.raises(bfn_codec.data.DataError, match="holds 2 images"):
        read_image(buf.getvalue(), "pages.tiff")


def _photo_like(height, width, seed):
    """A smooth colour image with a little noise (not Fashion-MNIST: what a user's folder holds)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 3 + yy, 128 + 60 * np.sin(yy / 5.0), 255 - xx * 2], -1)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.slow
def test_a_user_trained_colour_model_from_a_folder_codes_and_decodes(tmp_path, monkeypatch):
    """train --dataset images:DIR@P on a generated folder of photographs of several sizes,
    loss, sample, calibrate, then compress an RGB file with --model DIR through the chain
    (--mode bfn) and decompress it; then bundle it (into a temporary zoo) and code with it by
    name, the decoder finding it from the file alone: the whole "your own data" path."""
    import json

    import bfn_codec.models
    import bfn_codec.zoo

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, (h, w) in enumerate([(40, 56), (33, 70), (64, 48), (24, 24)]):
        Image.fromarray(_photo_like(h, w, i)).save(photos / f"p{i}.png")
    out = tmp_path / "mine"
    res = cli("train", "--dataset", f"images:{photos}@8", "--out", out, "--steps", "12", "--channels", "8",
              "--channel-mult", "1", "--validate-every", "6", "--checkpoint-every", "6", "--batch-size", "16")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["shape"] == [3, 8, 8]
    res = cli("loss", "--model", out, "--dataset", f"images:{photos}@8", "--steps", "4", "--limit", "20", "--json")
    assert res.exit_code == 0, res.output
    res = cli("sample", "--model", out, "-n", "4", "-o", tmp_path / "s.png", "--steps", "3")
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "s.png").mode == "RGB"
    res = cli("calibrate", out, "--dataset", f"images:{photos}@8", "--items", "8")
    assert res.exit_code == 0, res.output
    target = tmp_path / "new.png"
    pixels = _photo_like(30, 37, 9)
    Image.fromarray(pixels).save(target)
    res = cli("compress", target, "--model", out, "--mode", "bfn", "-n", "3", "-q")
    assert res.exit_code == 0, res.output
    blob = (tmp_path / "new.png.bfn").read_bytes()
    entry = read_imageset(blob).entries[0]
    inner = read(blob[entry.offset:entry.offset + entry.length])[0]
    assert entry.stream == "bfn" and inner.item_shape == (3, 8, 8) and inner.batches
    assert inner.coder_revision == PORTABLE_REVISION  # calibrated: the portable arithmetic
    target.unlink()
    res = cli("decompress", tmp_path / "new.png.bfn", "--model", out, "-q")
    assert res.exit_code == 0, res.output
    assert np.array_equal(pixels_of(target)[1], pixels)

    zoo = tmp_path / "zoo"  # bundle writes into the package's zoo: a temporary one here
    monkeypatch.setattr(bfn_codec.zoo, "ZOO_DIR", zoo)
    monkeypatch.setattr(bfn_codec.models, "ZOO_DIR", zoo)
    res = cli("bundle", out, "my-photos", "-n", "3")
    assert res.exit_code == 0, res.output
    assert bfn_codec.zoo.available_models() == ["my-photos"]
    res = cli("compress", target, "-o", tmp_path / "named.bfn", "--model", "my-photos", "--mode", "bfn", "-q")
    assert res.exit_code == 0, res.output
    blob = (tmp_path / "named.bfn").read_bytes()
    entry = read_imageset(blob).entries[0]
    inner = read(blob[entry.offset:entry.offset + entry.length])[0]
    assert entry.stream == "bfn" and inner.steps == 3 and inner.coder_revision == PORTABLE_REVISION  # the bundle's n, calibrated
    assert bfn_codec.zoo.bundled_model_for(inner.model_hash) == "my-photos"
    res = cli("decompress", tmp_path / "named.bfn", "-o", tmp_path / "back.png", "-q")  # no --model
    assert res.exit_code == 0, res.output
    assert np.array_equal(pixels_of(tmp_path / "back.png")[1], pixels)


@pytest.mark.parametrize("estimate,coded", [(0.5, True), (7.5, False)])
def test_auto_mode_codes_the_bfn_stream_of_a_large_image_only_if_a_sample_of_tiles_promises_it(estimate, coded):
    """An image of more than PROBE_ABOVE_TILES tiles: the model's estimate on SAMPLE_TILES of
    them against the best classical stream decides whether the chain runs at all."""
    from bfn_codec import imagecodec
    from bfn_codec.models import load_model

    calls = []
    model = load_model("fmnist")
    coding = imagecodec.Coding(encode_items=lambda tiles, m: (calls.append(len(tiles)) or b"\0" * 10, {}),
                               model_for=lambda pixels: model, mode="auto",
                               estimate_bits=lambda tiles, m: calls.append(("probe", len(tiles))) or estimate)
    pixels = mosaic(28 * 9, 28 * 8)[None]  # 72 tiles
    stream, data, info = imagecodec.encode_entry(pixels, coding)
    assert calls[0] == ("probe", imagecodec.SAMPLE_TILES)
    assert (stream == "bfn") == coded and (72 in calls) == coded
    assert info["probe"]["estimate_bits_per_value"] == estimate and 0 < info["probe"]["classical_bits_per_value"] < 8


def test_a_photograph_skips_the_network_when_the_model_does_not_fit_it():
    """A smooth colour photograph-like image with the Fashion-MNIST model: the estimate on 16
    tiles is far above WebP's, so no chain runs and the file is the classical stream."""
    photo = _photo_like(300, 260, 0)
    blob, info = compress_images([ImageFile("p.png", photo[None], "png", "RGB")], "fmnist")
    f = info["files"][0]
    assert f["stream"] in ("png", "webp") and "bfn" not in f["candidates"] and f["tiles"] == 3 * 11 * 10
    assert f["probe"]["estimate_bits_per_value"] > f["probe"]["classical_bits_per_value"]
    assert np.array_equal(decompress_images(blob)[1][0].pixels[0], photo)


GOLDEN = os.path.join(ROOT, "tests", "golden")


def test_golden_version_5_files_decode_and_the_bfn_one_reencodes_to_the_same_bytes():
    """Format version 5 is released: its golden files (tests/golden/make_v5.py, never rewritten)
    decode in every later release. The BFN stream's bytes are a function of the portable
    arithmetic, so its data must re-encode to the same file; the PNG / WebP streams are the
    image libraries' (their encoders may change), so those are only decoded."""
    import sys

    sys.path.insert(0, GOLDEN)
    from make_v5 import BFN_NAME, BFN_SETTINGS, FILES_NAME, POOL_NAME, POOL_SETTINGS, bfn_data, files_data, pool_data

    blob = open(os.path.join(GOLDEN, BFN_NAME + ".bfn"), "rb").read()
    x = np.load(os.path.join(GOLDEN, BFN_NAME + ".npy"))
    assert np.array_equal(x, bfn_data())
    assert read_imageset(blob).entries[0].stream == "bfn"
    assert np.array_equal(bfn_codec.decompress(blob), x)
    assert bfn_codec.compress(x, **BFN_SETTINGS) == blob
    blob = open(os.path.join(GOLDEN, FILES_NAME + ".bfn"), "rb").read()
    folder, files = decompress_images(blob)
    expected = files_data()
    assert folder and [f.name for f in files] == [f.name for f in expected]
    for got, want in zip(files, expected):
        assert (got.file_format, got.mode) == (want.file_format, want.mode)
        assert np.array_equal(got.pixels, want.pixels), got.name
    blob = open(os.path.join(GOLDEN, POOL_NAME + ".bfn"), "rb").read()
    assert {e.stream for e in read_imageset(blob).entries} == {"pool"}
    folder, files = decompress_images(blob)
    expected = pool_data()
    assert folder and all(a.name == b.name and np.array_equal(a.pixels, b.pixels) for a, b in zip(files, expected))
    # with fmnist-binary's first calibration (10/12 bits), the one the file was written with
    settings = dict(POOL_SETTINGS, model=bundled_with_bits(POOL_SETTINGS["model"], 10, 12))
    assert compress_images(expected, folder=True, **settings)[0] == blob


def test_the_bundled_colour_model_codes_rgb_images_and_its_golden_file_reencodes_to_the_same_bytes():
    """An RGB image picks the bundled colour model by its three channels (no --model), and the
    model's golden file (tests/golden/make_v5_rgb.py, never rewritten) decodes to its image and
    the image re-encodes to the same bytes: the colour model's probabilities are pinned."""
    import sys

    sys.path.insert(0, GOLDEN)
    from make_v5_rgb import RGB_NAME, RGB_SETTINGS, rgb_data

    blob = open(os.path.join(GOLDEN, RGB_NAME + ".bfn"), "rb").read()
    entry = read_imageset(blob).entries[0]
    inner = read(blob[entry.offset:entry.offset + entry.length])[0]
    assert entry.stream == "bfn" and inner.coder_revision == 6
    assert bfn_codec.zoo.bundled_model_for(inner.model_hash) == "photo-rgb"
    expected = rgb_data()
    folder, files = decompress_images(blob)
    assert not folder and files[0].name == "photo.png" and np.array_equal(files[0].pixels, expected[0].pixels)
    assert compress_images(expected, **RGB_SETTINGS)[0] == blob


@pytest.mark.slow
def test_jobs_code_an_images_tiles_in_chunks_and_it_round_trips():
    """--jobs with an image: its BFN stream is a chunked (version-4) file of its tiles, coded by
    worker processes that load the model by name."""
    from bfn_codec.container import is_archive
    from bfn_codec.imageset import stream_bytes

    image = ImageFile("a.png", mosaic(112, 112)[None], "png", "L")
    blob, info = compress_images([image], "fmnist", mode="bfn", steps=2, jobs=2, chunk_items=8)
    entry = read_imageset(blob).entries[0]
    assert entry.stream == "bfn" and is_archive(stream_bytes(blob, entry))
    assert np.array_equal(decompress_images(blob, jobs=2)[1][0].pixels, image.pixels)


def test_a_folder_of_small_images_shares_one_chain(tmp_path):
    """Thirty 28x28 bilevel PNGs: coded one by one no chain would pay for its seed; pooled, their
    tiles go through one chain and the folder costs less than their best classical streams."""
    from bfn_codec.data import binarise

    src = tmp_path / "small"
    src.mkdir()
    images = binarise(SAMPLE[150:180])
    for i, image in enumerate(images):
        Image.fromarray(image.astype(bool)).save(src / f"{i:02d}.png")
    res = cli("compress", src, "-n", "6", "-v")
    assert res.exit_code == 0, res.output
    assert "streams pool 30" in res.output
    blob = (tmp_path / "small.bfn").read_bytes()
    index = read_imageset(blob)
    assert index.pool_length and all(e.stream == "pool" for e in index.entries)
    pool = read(blob[index.pool_offset:index.pool_offset + index.pool_length])[0]
    assert pool.count == 30 and pool.batches  # one chain over the thirty tiles
    stats = compress_images([ImageFile(f"{i:02d}.png", x[None, ..., None], "png", "1") for i, x in enumerate(images)],
                            steps=6)[1]
    assert stats["pool"]["used"] and stats["pool"]["bytes"] < stats["pool"]["classical_bytes"]
    res = cli("decompress", tmp_path / "small.bfn", "-o", tmp_path / "back", "-q")
    assert res.exit_code == 0, res.output
    for i, image in enumerate(images):
        mode, got = pixels_of(tmp_path / "back" / f"{i:02d}.png")
        assert mode == "1" and np.array_equal(got.astype(np.uint8), image)


@pytest.mark.parametrize("pool_bytes,pooled", [(10, True), (10**6, False)])
def test_the_pool_is_kept_only_when_it_beats_the_classical_streams(pool_bytes, pooled):
    from bfn_codec import imagecodec
    from bfn_codec.models import load_model

    model = load_model("fmnist")
    coding = imagecodec.Coding(encode_items=lambda tiles, m: (b"\1" * pool_bytes, {}),
                               model_for=lambda pixels: model, mode="auto")
    files = [ImageFile(f"{i}.png", mosaic(28, 28, seed=i)[None], "png", "L") for i in range(4)]
    blob, stats = imagecodec.compress_files(files, coding)
    assert stats["pool"]["used"] == pooled and stats["pool"]["images"] == 4
    assert {f["stream"] for f in stats["files"]} == ({"pool"} if pooled else {"png", "webp"} & {
        f["stream"] for f in stats["files"]})
    assert read_imageset(blob).pool_length == (pool_bytes if pooled else 0)


def test_samples_of_fewer_than_8_bits_come_back_as_the_same_image_in_8_bits(tmp_path):
    """A PGM of maximum value 15 (docs/images.md): Pillow scales its samples to 0-255 on
    reading, so the file decompresses as an 8-bit PGM of the same image (value 5 of 15 is 85 of
    255), not as the stored values; pinned so that a change of that behaviour is seen."""
    src = tmp_path / "low.pgm"
    src.write_bytes(b"P5\n4 1\n15\n" + bytes([0, 5, 10, 15]))
    res = cli("compress", src, "-q")
    assert res.exit_code == 0, res.output
    src.unlink()
    res = cli("decompress", tmp_path / "low.pgm.bfn", "-q")
    assert res.exit_code == 0, res.output
    assert np.array_equal(pixels_of(src)[1].ravel(), [0, 85, 170, 255])
    assert src.read_bytes().startswith(b"P5\n4 1\n255\n")
