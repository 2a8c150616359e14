#!/usr/bin/env python3
"""Classical lossless codecs on the Fashion-MNIST test set.

Measures how many bits per pixel well-known lossless codecs need for the
10,000 Fashion-MNIST test images (28x28), in two variants:

* ``8bit``   -- the raw uint8 pixels;
* ``binary`` -- pixels binarised with ``pixel >= 128`` (values 0/1).

Every codec is run in several modes:

* ``per_image``     -- each image is its own file; the sizes are summed
                       (so per-file headers are paid 10,000 times);
* ``mosaic``        -- image codecs only: all images tiled into one picture
                       (100x100 tiles = 2800x2800 for the full test set);
* ``stream``        -- generic codecs only: all images as one raw byte stream,
                       one byte per pixel (row-major, image after image);
* ``packed_stream`` -- generic codecs, binary variant only: the same stream
                       bit-packed with ``np.packbits`` (8 pixels per byte).

Bits per pixel is always ``bytes * 8 / (n_images * 28 * 28)``, i.e. it is
normalised by the real pixel count, also when the mosaic is padded.
Every result is decoded again and compared with the original
(``"lossless": true/false``).  Codecs run single-threaded where the library
or program lets us choose.

Installing the codecs (Debian bookworm; data set from Debian too)::

    apt-get update
    apt-get install -y dataset-fashion-mnist jbigkit-bin zpaq zstd xz-utils bzip2 brotli
    pip install numpy pillow imagecodecs brotli zstandard

What each codec needs:

* PNG, WebP lossless     -- Pillow (``pip install pillow``)
* JPEG XL, JPEG-LS       -- imagecodecs (``pip install imagecodecs``; it bundles
                            libjxl and CharLS)
* JBIG (binary only)     -- ``pbmtojbg``/``jbgtopbm`` from ``jbigkit-bin``
* xz, zstd, bzip2, brotli -- the Debian command-line programs for the whole
                            stream; the Python modules ``lzma``, ``bz2``
                            (standard library), ``zstandard`` and ``brotli``
                            (pip) for the per-image runs
* zpaq                   -- ``zpaq`` from Debian (whole stream only)

A codec whose library or program is missing is skipped: the run prints a
``SKIP`` line and the JSON holds ``{"skipped": "reason"}`` for it.

Usage::

    python3 benchmarks/classical.py      # -> benchmarks/results/classical-both.json
    python3 benchmarks/classical.py --out /tmp/quick.json --limit 100 --variants binary
    python3 benchmarks/classical.py --out /tmp/x.json --skip-per-image

Without --out the file is benchmarks/results/classical-<data>[-<limit>].json (data: both, binary
or 8bit; no weights, the codecs do not depend on any; benchmarks/README.md has the scheme).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import lzma
import bz2
import math
import os
import platform
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

DEFAULT_DATA = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


# ---------------------------------------------------------------------------
# Optional libraries: import what is there, remember why the rest is missing
# ---------------------------------------------------------------------------

MISSING: dict[str, str] = {}

try:
    import PIL
    from PIL import Image, features as pil_features
except ImportError as exc:  # pragma: no cover - depends on the machine
    PIL = Image = pil_features = None
    MISSING["pillow"] = f"Pillow not importable ({exc}); pip install pillow"

try:
    import imagecodecs
except ImportError as exc:  # pragma: no cover
    imagecodecs = None
    MISSING["imagecodecs"] = f"imagecodecs not importable ({exc}); pip install imagecodecs"

try:
    import zstandard
except ImportError as exc:  # pragma: no cover
    zstandard = None
    MISSING["zstandard"] = f"zstandard not importable ({exc}); pip install zstandard"

try:
    import brotli
except ImportError as exc:  # pragma: no cover
    brotli = None
    MISSING["brotli"] = f"brotli not importable ({exc}); pip install brotli"


# ---------------------------------------------------------------------------
# Data: IDX reader, binarisation, mosaic tiling
# ---------------------------------------------------------------------------


def read_idx(path: str) -> np.ndarray:
    """Read an IDX file (optionally gzipped) of unsigned bytes.

    Header: two zero bytes, a type byte (0x08 = uint8), the number of
    dimensions, then one big-endian uint32 per dimension.
    """
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not a uint8 IDX file (magic {data[:4].hex()})")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    offset = 4 + 4 * ndim
    pixels = np.frombuffer(data, dtype=np.uint8, offset=offset)
    if pixels.size != math.prod(shape):
        raise ValueError(f"{path}: expected {math.prod(shape)} values, found {pixels.size}")
    return pixels.reshape(shape)


def make_variant(images: np.ndarray, variant: str) -> np.ndarray:
    if variant == "8bit":
        return images
    if variant == "binary":
        return (images >= 128).astype(np.uint8)
    raise ValueError(f"unknown variant {variant!r}")


def tile_mosaic(images: np.ndarray) -> tuple[np.ndarray, int]:
    """Tile (n, h, w) images row by row into a near-square grid.

    Returns the mosaic and the number of all-zero padding tiles added to
    fill the last row (0 for 10,000 images: a 100x100 grid).
    """
    n, h, w = images.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    pad = rows * cols - n
    if pad:
        images = np.concatenate([images, np.zeros((pad, h, w), images.dtype)])
    mosaic = images.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)
    return np.ascontiguousarray(mosaic), pad


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------


def run_program(argv: list[str], data: bytes = b"", cwd: Optional[str] = None) -> bytes:
    """Run a program, feed ``data`` on stdin, return stdout; raise on failure."""
    proc = subprocess.run(argv, input=data, capture_output=True, cwd=cwd)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()[-300:]
        raise RuntimeError(f"{' '.join(argv)} exited with {proc.returncode}: {err}")
    return proc.stdout


def missing_programs(*names: str) -> Optional[str]:
    absent = [p for p in names if shutil.which(p) is None]
    return f"program(s) not found: {', '.join(absent)}" if absent else None


def first_line(argv: list[str]) -> Optional[str]:
    """First non-empty output line of a program (for version strings)."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, stdin=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in (proc.stdout + proc.stderr).decode(errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return None


def debian_version(package: str) -> Optional[str]:
    if shutil.which("dpkg-query") is None:
        return None
    proc = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


# -- PBM (netpbm P4) for JBIG -------------------------------------------------


def to_pbm(img: np.ndarray) -> bytes:
    h, w = img.shape
    return b"P4\n%d %d\n" % (w, h) + np.packbits(img.astype(bool), axis=1).tobytes()


def from_pbm(data: bytes) -> np.ndarray:
    """Parse a P4 PBM (header tokens may be padded with whitespace or comments)."""
    tokens, pos = [], 0
    while len(tokens) < 3:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        tokens.append(data[start:pos])
    if tokens[0] != b"P4":
        raise ValueError(f"not a P4 PBM file: {tokens[0]!r}")
    w, h = int(tokens[1]), int(tokens[2])
    pos += 1  # the single whitespace byte before the raster
    row_bytes = (w + 7) // 8
    raster = np.frombuffer(data, np.uint8, count=h * row_bytes, offset=pos).reshape(h, row_bytes)
    return np.unpackbits(raster, axis=1)[:, :w]


# ---------------------------------------------------------------------------
# Image codecs: encode(img) -> bytes, decode(bytes) -> img, for one variant
# ---------------------------------------------------------------------------


@dataclass
class ImageCodec:
    name: str
    settings: str
    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[bytes], np.ndarray]
    unavailable: Optional[str] = None  # reason to skip, or None
    note: str = ""


def pil_decode(data: bytes) -> np.ndarray:
    arr = np.asarray(Image.open(io.BytesIO(data)))
    if arr.ndim == 3:  # WebP decodes grey as RGB
        arr = arr[..., 0]
    return arr.astype(np.uint8)


def png_codec(variant: str) -> ImageCodec:
    def encode(img: np.ndarray) -> bytes:
        pic = Image.fromarray(img.astype(bool)) if variant == "binary" else Image.fromarray(img)
        buf = io.BytesIO()
        pic.save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    mode = "'1' (1 bit/pixel)" if variant == "binary" else "'L'"
    return ImageCodec("PNG", f"Pillow, mode {mode}, optimize=True", encode, pil_decode,
                      MISSING.get("pillow"))


def webp_codec(variant: str) -> ImageCodec:
    def encode(img: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="WEBP", lossless=True, quality=100, method=6)
        return buf.getvalue()

    unavailable = MISSING.get("pillow")
    if unavailable is None and not pil_features.check("webp"):
        unavailable = "Pillow built without WebP support"
    note = "grey image with values 0/1 (WebP has no 1-bit mode)" if variant == "binary" else ""
    return ImageCodec("WebP lossless", "Pillow, lossless=True, quality=100, method=6",
                      encode, pil_decode, unavailable, note)


def jpegxl_codec(variant: str) -> ImageCodec:
    extra = {"bitspersample": 1} if variant == "binary" else {}

    def encode(img: np.ndarray) -> bytes:
        return bytes(imagecodecs.jpegxl_encode(img, lossless=True, effort=10, numthreads=1, **extra))

    def decode(data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=1)

    unavailable = MISSING.get("imagecodecs")
    if unavailable is None and not imagecodecs.JPEGXL.available:
        unavailable = "imagecodecs built without JPEG XL"
    settings = "imagecodecs/libjxl, lossless=True, effort=10, numthreads=1"
    if extra:
        settings += ", bitspersample=1"
    return ImageCodec("JPEG XL", settings, encode, decode, unavailable)


def jpegls_codec(variant: str) -> ImageCodec:
    def encode(img: np.ndarray) -> bytes:
        return bytes(imagecodecs.jpegls_encode(img))  # level=None: lossless (NEAR=0)

    unavailable = MISSING.get("imagecodecs")
    if unavailable is None and not imagecodecs.JPEGLS.available:
        unavailable = "imagecodecs built without JPEG-LS (CharLS)"
    note = "values 0/1 coded at 8 bits/sample (imagecodecs has no bit-depth option)" \
        if variant == "binary" else ""
    return ImageCodec("JPEG-LS", "imagecodecs/CharLS, lossless (NEAR=0)", encode,
                      lambda data: imagecodecs.jpegls_decode(data), unavailable, note)


def jbig_codec(variant: str) -> ImageCodec:
    # -q: sequential coding, no resolution-reduction layers (smallest output).
    def encode(img: np.ndarray) -> bytes:
        return run_program(["pbmtojbg", "-q"], to_pbm(img))

    def decode(data: bytes) -> np.ndarray:
        return from_pbm(run_program(["jbgtopbm"], data))

    return ImageCodec("JBIG", "jbigkit pbmtojbg -q (PBM in, BIE out)", encode, decode,
                      missing_programs("pbmtojbg", "jbgtopbm"))


def image_codecs(variant: str) -> list[ImageCodec]:
    codecs = [png_codec(variant), webp_codec(variant), jpegxl_codec(variant), jpegls_codec(variant)]
    if variant == "binary":
        codecs.append(jbig_codec(variant))
    return codecs


# ---------------------------------------------------------------------------
# Generic byte-stream codecs
# ---------------------------------------------------------------------------


@dataclass
class GenericCodec:
    name: str
    cli_encode: Optional[list[str]]            # whole stream: program reading stdin
    cli_decode: Optional[list[str]]
    py_settings: str = ""                      # per image: Python module
    py_encode: Optional[Callable[[bytes], bytes]] = None
    py_decode: Optional[Callable[[bytes], bytes]] = None
    py_unavailable: Optional[str] = None


def xz_per_image(data: bytes) -> bytes:
    # Preset 9e, but with a 4 KiB dictionary: that is larger than one image
    # (784 bytes), so the coded size is identical to plain 9e, without
    # allocating the 64 MiB dictionary 10,000 times.
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME, "dict_size": 4096}]
    return lzma.compress(data, format=lzma.FORMAT_XZ, filters=filters)


def make_zstd_per_image():
    if zstandard is None:
        return None, None
    params = zstandard.ZstdCompressionParameters.from_level(22, enable_ldm=True, window_log=27)
    compressor = zstandard.ZstdCompressor(compression_params=params)
    decompressor = zstandard.ZstdDecompressor(max_window_size=1 << 27)
    return compressor.compress, decompressor.decompress


def generic_codecs() -> list[GenericCodec]:
    zstd_enc, zstd_dec = make_zstd_per_image()
    return [
        GenericCodec(
            "xz -9e", ["xz", "-9e", "-T1", "-c"], ["xz", "-d", "-c"],
            "python lzma, preset 9|EXTREME (dict 4 KiB >= image)", xz_per_image, lzma.decompress),
        GenericCodec(
            "zstd --ultra -22 --long", ["zstd", "--ultra", "-22", "--long", "-T1", "-c", "-q"],
            ["zstd", "-d", "--long=27", "-c", "-q"],
            "python zstandard, level 22, ldm, window_log 27", zstd_enc, zstd_dec,
            MISSING.get("zstandard")),
        GenericCodec(
            "bzip2 -9", ["bzip2", "-9", "-c"], ["bzip2", "-d", "-c"],
            "python bz2, compresslevel 9", lambda d: bz2.compress(d, 9), bz2.decompress),
        GenericCodec(
            "brotli -q 11", ["brotli", "-q", "11", "-c"], ["brotli", "-d", "-c"],
            "python brotli, quality 11, lgwin 24",
            (lambda d: brotli.compress(d, quality=11, lgwin=24)) if brotli else None,
            brotli.decompress if brotli else None, MISSING.get("brotli")),
        GenericCodec("zpaq -m5", None, None),  # file based, see zpaq_roundtrip
    ]


def zpaq_roundtrip(data: bytes) -> tuple[int, float, float, bytes]:
    """Archive ``data`` with ``zpaq a -m5``; return size, enc s, dec s, decoded bytes.

    The archive also stores the file name ("d") and a date, a few dozen bytes.
    """
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "d"), "wb") as f:
            f.write(data)
        t0 = time.perf_counter()
        run_program(["zpaq", "a", "a.zpaq", "d", "-m5", "-t1"], cwd=tmp)
        t1 = time.perf_counter()
        size = os.path.getsize(os.path.join(tmp, "a.zpaq"))
        out_dir = os.path.join(tmp, "x")
        os.mkdir(out_dir)
        t2 = time.perf_counter()
        run_program(["zpaq", "x", "../a.zpaq", "-t1"], cwd=out_dir)
        t3 = time.perf_counter()
        with open(os.path.join(out_dir, "d"), "rb") as f:
            decoded = f.read()
    return size, t1 - t0, t3 - t2, decoded


# ---------------------------------------------------------------------------
# Measurement
# ---------------------------------------------------------------------------


class Bench:
    """Collects result records and prints one progress line per result."""

    def __init__(self, pixels_per_image: int):
        self.pixels_per_image = pixels_per_image
        self.results: list[dict] = []

    def record(self, codec: str, variant: str, mode: str, settings: str, *,
               nbytes: int, enc_s: float, dec_s: float, lossless: bool,
               n_images: int, note: str = "") -> None:
        res = {
            "codec": codec, "variant": variant, "mode": mode, "settings": settings,
            "n_images": n_images, "bytes": int(nbytes),
            "bits_per_pixel": nbytes * 8 / (n_images * self.pixels_per_image),
            "encode_s": round(enc_s, 4), "decode_s": round(dec_s, 4), "lossless": bool(lossless),
        }
        if note:
            res["note"] = note
        self.results.append(res)
        flag = "" if lossless else "  NOT LOSSLESS!"
        print(f"  {codec:<24} {variant:<6} {mode:<13} {res['bits_per_pixel']:8.4f} bpp "
              f"{nbytes:>10} B  enc {enc_s:8.2f} s  dec {dec_s:8.2f} s{flag}", flush=True)

    def skip(self, codec: str, variant: str, mode: str, reason: str) -> None:
        self.results.append({"codec": codec, "variant": variant, "mode": mode, "skipped": reason})
        print(f"  SKIP {codec} {variant} {mode}: {reason}", flush=True)


def measure_image_codec(bench: Bench, codec: ImageCodec, variant: str, images: np.ndarray,
                        mosaic: np.ndarray, pad: int, per_image: bool) -> None:
    modes = (["per_image"] if per_image else []) + ["mosaic"]
    if codec.unavailable:
        for mode in modes:
            bench.skip(codec.name, variant, mode, codec.unavailable)
        return
    for mode in modes:
        try:
            if mode == "per_image":
                t0 = time.perf_counter()
                blobs = [codec.encode(img) for img in images]
                t1 = time.perf_counter()
                decoded = [codec.decode(blob) for blob in blobs]
                t2 = time.perf_counter()
                ok = all(np.array_equal(d, img) for d, img in zip(decoded, images))
                nbytes = sum(len(b) for b in blobs)
                note = codec.note
            else:
                t0 = time.perf_counter()
                blob = codec.encode(mosaic)
                t1 = time.perf_counter()
                decoded = codec.decode(blob)
                t2 = time.perf_counter()
                ok = np.array_equal(decoded, mosaic)
                nbytes = len(blob)
                note = "; ".join(filter(None, [
                    codec.note,
                    f"mosaic {mosaic.shape[1]}x{mosaic.shape[0]} (WxH)"
                    + (f", padded with {pad} all-zero tiles" if pad else ""),
                ]))
            bench.record(codec.name, variant, mode, codec.settings, nbytes=nbytes,
                         enc_s=t1 - t0, dec_s=t2 - t1, lossless=ok,
                         n_images=len(images), note=note)
        except Exception as exc:  # a broken codec must not stop the benchmark
            bench.skip(codec.name, variant, mode, f"failed: {type(exc).__name__}: {exc}")


def measure_generic_codec(bench: Bench, codec: GenericCodec, variant: str, images: np.ndarray,
                          per_image: bool) -> None:
    n = len(images)
    # --- per image (Python modules; zpaq is whole-stream only) ---
    if per_image and codec.name != "zpaq -m5":
        if codec.py_unavailable or codec.py_encode is None:
            bench.skip(codec.name, variant, "per_image", codec.py_unavailable or "no module")
        else:
            try:
                raws = [img.tobytes() for img in images]
                t0 = time.perf_counter()
                blobs = [codec.py_encode(r) for r in raws]
                t1 = time.perf_counter()
                decoded = [codec.py_decode(b) for b in blobs]
                t2 = time.perf_counter()
                bench.record(codec.name, variant, "per_image", codec.py_settings,
                             nbytes=sum(map(len, blobs)), enc_s=t1 - t0, dec_s=t2 - t1,
                             lossless=decoded == raws, n_images=n,
                             note="one byte per pixel per image")
            except Exception as exc:
                bench.skip(codec.name, variant, "per_image", f"failed: {type(exc).__name__}: {exc}")

    # --- whole stream (command-line programs) ---
    streams = [("stream", images.tobytes(), "one byte per pixel, all images concatenated")]
    if variant == "binary":
        streams.append(("packed_stream", np.packbits(images.ravel()).tobytes(),
                        "np.packbits of all pixels, 8 pixels per byte"))
    for mode, data, note in streams:
        try:
            if codec.name == "zpaq -m5":
                reason = missing_programs("zpaq")
                if reason:
                    bench.skip(codec.name, variant, mode, reason)
                    continue
                nbytes, enc_s, dec_s, decoded = zpaq_roundtrip(data)
                settings = "zpaq a -m5 -t1 (archive size, incl. file name/date)"
            else:
                reason = missing_programs(codec.cli_encode[0])
                if reason:
                    bench.skip(codec.name, variant, mode, reason)
                    continue
                t0 = time.perf_counter()
                blob = run_program(codec.cli_encode, data)
                t1 = time.perf_counter()
                decoded = run_program(codec.cli_decode, blob)
                t2 = time.perf_counter()
                nbytes, enc_s, dec_s = len(blob), t1 - t0, t2 - t1
                settings = " ".join(codec.cli_encode)
            bench.record(codec.name, variant, mode, settings, nbytes=nbytes, enc_s=enc_s,
                         dec_s=dec_s, lossless=decoded == data, n_images=n, note=note)
        except Exception as exc:
            bench.skip(codec.name, variant, mode, f"failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------


def environment() -> dict:
    env = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "pillow": PIL.__version__ if PIL else None,
        "pillow_libwebp": pil_features.version("webp") if PIL else None,
        "pillow_zlib": pil_features.version("zlib") if PIL else None,
        "imagecodecs": imagecodecs.__version__ if imagecodecs else None,
        "zstandard_module": zstandard.__version__ if zstandard else None,
        "brotli_module": getattr(brotli, "__version__", None) if brotli else None,
        "missing_python_modules": MISSING,
    }
    if imagecodecs:
        libs = dict(item.split("-", 1) for item in imagecodecs.version().split(", ") if "-" in item)
        env["imagecodecs_libjxl"] = libs.get("libjxl")
        env["imagecodecs_charls"] = libs.get("charls")
    programs = {
        "xz": ("xz-utils", ["xz", "--version"]),
        "zstd": ("zstd", ["zstd", "--version"]),
        "bzip2": ("bzip2", ["bzip2", "--version"]),
        "brotli": ("brotli", ["brotli", "--version"]),
        "zpaq": ("zpaq", ["zpaq"]),
        "pbmtojbg": ("jbigkit-bin", ["pbmtojbg", "-h"]),
    }
    env["programs"] = {
        prog: {"found": shutil.which(prog) is not None, "debian_package": pkg,
               "debian_version": debian_version(pkg), "reports": first_line(argv)}
        for prog, (pkg, argv) in programs.items()
    }
    return env


def markdown_table(results: list[dict]) -> str:
    """Results grouped by variant (in run order), each group sorted by bits/pixel."""
    order = {v: i for i, v in enumerate(dict.fromkeys(r["variant"] for r in results))}
    done = sorted((r for r in results if "skipped" not in r),
                  key=lambda r: (order[r["variant"]], r["bits_per_pixel"]))
    lines = ["| codec | variant | mode | bits/pixel | enc s | dec s | lossless | note |",
             "|---|---|---|---:|---:|---:|---|---|"]
    for r in done:
        lines.append(f"| {r['codec']} | {r['variant']} | {r['mode']} | {r['bits_per_pixel']:.4f} "
                     f"| {r['encode_s']:.2f} | {r['decode_s']:.2f} | "
                     f"{'yes' if r['lossless'] else 'NO'} | {r.get('note', '')} |")
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['codec']} | {r['variant']} | {r['mode']} | skipped | | | | "
                         f"{r['skipped']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None,
                    help="where to write the JSON results (default: benchmarks/results/classical-<data>[-<limit>].json)")
    ap.add_argument("--data", default=DEFAULT_DATA, help="IDX images file (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N images")
    ap.add_argument("--variants", default="8bit,binary", help="comma list of 8bit,binary")
    ap.add_argument("--skip-per-image", action="store_true",
                    help="skip the per-image runs (only mosaic / whole stream)")
    args = ap.parse_args(argv)

    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in ("8bit", "binary"):
            ap.error(f"unknown variant {v!r}")

    images = read_idx(args.data)
    if args.limit is not None:
        images = images[: args.limit]
    n, h, w = images.shape
    print(f"{args.data}: {n} images of {h}x{w}; variants {', '.join(variants)}"
          f"{'; per-image runs skipped' if args.skip_per_image else ''}", flush=True)

    bench = Bench(h * w)
    start = time.perf_counter()
    for variant in variants:
        data = make_variant(images, variant)
        mosaic, pad = tile_mosaic(data)
        print(f"\n== {variant} ==", flush=True)
        for codec in image_codecs(variant):
            measure_image_codec(bench, codec, variant, data, mosaic, pad, not args.skip_per_image)
        for codec in generic_codecs():
            measure_generic_codec(bench, codec, variant, data, not args.skip_per_image)
    total_s = time.perf_counter() - start

    report = {
        "dataset": {
            "name": "Fashion-MNIST test set",
            "path": os.path.abspath(args.data),
            "image_shape": [h, w],
            "binarisation": "binary variant: pixel >= 128 -> 1, else 0",
            "bits_per_pixel": "bytes * 8 / (n_images * %d)" % (h * w),
        },
        "n_images": n,
        "variants": variants,
        "per_image_runs": not args.skip_per_image,
        "total_seconds": round(total_s, 1),
        "results": bench.results,
        "environment": environment(),
    }
    if args.out is None:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from result_names import result_path

        args.out = result_path("classical", "both" if sorted(variants) == ["8bit", "binary"] else variants[0],
                               args.limit)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from result_names import record_command

    record_command(args.out)

    print(f"\nTotal {total_s:.1f} s; results written to {args.out}\n")
    print(markdown_table(bench.results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
