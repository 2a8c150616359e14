#!/usr/bin/env python3
"""bfn-codec on held-out photographs against the classical lossless image codecs.

Every PNG in ``--images`` (default runs/photos/eval, written by photo_data.py: photographs of a
Debian package the models never saw, grey and RGB, 64x64 to 1024x768) is coded by

* bfn-codec through its file path (``compress_images``: the BFN stream of the image's tiles or
  the PNG / WebP fallback, whichever is smallest; ``--mode`` as on the command line), with the
  model its values pick or ``--model`` (``--rgb-model`` for colour images), default n;
* PNG (Pillow, optimize), WebP lossless (Pillow, method 6), JPEG-LS, JPEG 2000 lossless and
  JPEG XL lossless at effort 7 and at the maximum effort, 10 (imagecodecs),

and every stream is decoded and compared with the original pixels. Bits per pixel count whole
files; for bfn-codec also the stream each image kept (how often each path wins), encode and
decode values/s (pixels x channels per second per side) and the process's peak RSS.

    python3 benchmarks/image_bench.py --sizes 64x64 256x256           # -> results/images-photos-<...>.json
    python3 benchmarks/image_bench.py --mode fallback                 # classical streams only (fast)
    python3 benchmarks/image_bench.py --tiles 400                     # 28x28 grey tiles, bundled 8-bit model

``--tiles N`` measures something else: N grey 28x28 tiles cut from the 256x256 grey photographs
(a grid of 9 per photograph, in file order), coded as one (N, 28, 28) array with the bundled
8-bit model in mode auto, against one optimised PNG and one lossless WebP of the same tiles
stacked: data unlike Fashion-MNIST must cost no more than that fallback plus the header.

Run on an idle machine for the speeds; the sizes are exact either way.
"""
from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from result_names import result_path, write_result  # noqa: E402

import bfn_codec  # noqa: E402
from bfn_codec.api import compress_images, decompress_images, default_model_name  # noqa: E402
from bfn_codec.images import read_image  # noqa: E402


def classical_codecs():
    """name -> (encode(pixels [H, W, C]) -> bytes, decode(bytes) -> pixels); missing ones skipped."""
    codecs = {}

    def pil(fmt, **opts):
        def enc(x):
            buf = io.BytesIO()
            img = Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x)
            if fmt == "WEBP" and x.shape[-1] == 1:
                img = img.convert("RGB")
            img.save(buf, format=fmt, **opts)
            return buf.getvalue()

        def dec(b):
            return np.asarray(Image.open(io.BytesIO(b)))
        return enc, dec

    codecs["PNG (optimize)"] = pil("PNG", optimize=True)
    codecs["WebP lossless (method 6)"] = pil("WEBP", lossless=True, quality=100, method=6, exact=True)
    try:
        import imagecodecs as ic
    except ImportError:
        return codecs
    squeeze = (lambda x: x[..., 0] if x.shape[-1] == 1 else x)
    if ic.JPEGLS.available:
        codecs["JPEG-LS"] = (lambda x: ic.jpegls_encode(squeeze(x)), ic.jpegls_decode)
    if ic.JPEG2K.available:
        codecs["JPEG 2000 lossless"] = (lambda x: ic.jpeg2k_encode(squeeze(x), level=0, reversible=True),
                                        ic.jpeg2k_decode)
    if ic.JPEGXL.available:
        for effort, name in ((7, "JPEG XL lossless (effort 7)"), (10, "JPEG XL lossless (effort 10, max)")):
            codecs[name] = (lambda x, e=effort: ic.jpegxl_encode(squeeze(x), lossless=True, effort=e),
                            ic.jpegxl_decode)
    return codecs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", default="runs/photos/eval")
    ap.add_argument("--sizes", nargs="*", default=None, help="only these WxH (e.g. 64x64); default all")
    ap.add_argument("--kinds", nargs="*", default=["grey", "rgb"])
    ap.add_argument("--model", default=None, help="model for grey images (default: picked by the values)")
    ap.add_argument("--rgb-model", default=None, help="model for colour images (default: --model's choice)")
    ap.add_argument("--mode", default="auto", choices=["auto", "bfn", "fallback"])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    ap.add_argument("--limit", type=int, default=None, help="only the first N photographs (by name)")
    ap.add_argument("--tiles", type=int, default=None)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.tiles:
        return tiles_run(args)
    paths = sorted(Path(args.images).glob("*.png"))
    paths = [p for p in paths if p.stem.rsplit("-", 1)[1] in args.kinds
             and (not args.sizes or p.stem.rsplit("-", 2)[1] in args.sizes)]
    if args.limit:
        stems = sorted({p.stem.split("-")[0] for p in paths})[:args.limit]
        paths = [p for p in paths if p.stem.split("-")[0] in stems]
    if not paths:
        raise SystemExit(f"no images in {args.images} (python3 benchmarks/photo_data.py writes them)")
    codecs = classical_codecs()
    rows = []
    for i, path in enumerate(paths):
        image = read_image(path.read_bytes(), path.name)
        x = image.pixels[0]
        values = x.size
        row = {"file": path.name, "width": x.shape[1], "height": x.shape[0], "channels": x.shape[2],
               "classical_bits_per_value": {}}
        for name, (enc, dec) in codecs.items():
            blob = enc(x)
            back = np.asarray(dec(blob)).reshape(x.shape[0], x.shape[1], -1)
            if x.shape[-1] == 1 and back.shape[-1] == 3:
                back = back[..., :1]
            assert np.array_equal(back, x), f"{name} is not lossless on {path.name}"
            row["classical_bits_per_value"][name] = 8 * len(blob) / values
        model = args.rgb_model if x.shape[-1] > 1 and args.rgb_model else args.model
        t0 = time.perf_counter()
        blob, info = compress_images([image], model, mode=args.mode, steps=args.steps)
        t1 = time.perf_counter()
        _, back = decompress_images(blob, model)
        t2 = time.perf_counter()
        assert np.array_equal(back[0].pixels, image.pixels), f"bfn-codec is not lossless on {path.name}"
        entry = info["files"][0]
        row.update(model=model or default_model_name(x, x.shape[-1]),
                   bfn_bits_per_value=8 * len(blob) / values, bfn_stream=entry["stream"],
                   bfn_candidates=entry["candidates"], tiles=entry.get("tiles"),
                   encode_values_per_s=values / (t1 - t0), decode_values_per_s=values / (t2 - t1),
                   encode_s=t1 - t0, decode_s=t2 - t1)
        rows.append(row)
        best = min(row["classical_bits_per_value"].items(), key=lambda kv: kv[1])
        print(f"[{i + 1}/{len(paths)}] {path.name}: bfn {row['bfn_bits_per_value']:.3f} ({entry['stream']}) "
              f"vs {best[0]} {best[1]:.3f} bits/value; {t1 - t0:.1f} s / {t2 - t1:.1f} s", flush=True)
    summary = summarise(rows, list(codecs))
    result = {"images_dir": args.images, "mode": args.mode, "model": args.model, "rgb_model": args.rgb_model,
              "steps": args.steps, "threads": args.threads, "bfn_codec": bfn_codec.__version__,
              "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
              "summary": summary, "images": rows}
    sizes = "-".join(args.sizes) if args.sizes else "all"
    out = args.out or result_path("images", "photos", args.mode, args.rgb_model and Path(args.rgb_model).name,
                                  sizes, args.limit and f"first{args.limit}")
    write_result(out, result)


def size_class(row: dict) -> str:
    """The group of a photograph: its crop size (64x64, 256x256) or "large" (the 1024x768 crop,
    or the whole reduced photograph where that is smaller: 342x269 to 1024x768)."""
    w, h = row["width"], row["height"]
    size = f"{w}x{h}" if (w, h) in ((64, 64), (256, 256)) else "large"
    return f"{size} {'RGB' if row['channels'] == 3 else 'grey'}"


def summarise(rows: list, codecs: list) -> dict:
    """Per size class: bits per value over all its values, the streams kept, values/s."""
    groups = {}
    for r in rows:
        groups.setdefault(size_class(r), []).append(r)
    order = ["64x64 grey", "64x64 RGB", "256x256 grey", "256x256 RGB", "large grey", "large RGB"]
    summary = {}
    for key in sorted(groups, key=order.index):
        rs = groups[key]
        vals = sum(r["width"] * r["height"] * r["channels"] for r in rs)

        def total(f):
            return sum(f(r) * r["width"] * r["height"] * r["channels"] for r in rs) / vals
        summary[key] = {"images": len(rs), "values": vals, "bfn_bits_per_value": total(lambda r: r["bfn_bits_per_value"]),
                        "streams": {s: sum(r["bfn_stream"] == s for r in rs) for s in ("bfn", "png", "webp")},
                        "classical_bits_per_value": {c: total(lambda r, c=c: r["classical_bits_per_value"][c])
                                                     for c in codecs},
                        "encode_values_per_s": vals / sum(r["encode_s"] for r in rs),
                        "decode_values_per_s": vals / sum(r["decode_s"] for r in rs)}
    return summary


def tiles_run(args):
    from bfn_codec.api import compress_with_stats
    from bfn_codec.classical import encode

    tiles = []
    for path in sorted(Path(args.images).glob("*-256x256-grey.png")):
        x = np.asarray(Image.open(path))
        tiles.extend(x[r * 28:(r + 1) * 28, c * 28:(c + 1) * 28] for r in range(3) for c in range(3))
    tiles = np.stack(tiles[:args.tiles])
    t0 = time.perf_counter()
    blob, info = compress_with_stats(tiles, args.model or "fmnist", mode=args.mode, steps=args.steps)
    t1 = time.perf_counter()
    assert np.array_equal(bfn_codec.decompress(blob), tiles)
    png, webp = encode(tiles[..., None], "png", False), encode(tiles[..., None], "webp", False)
    result = {"tiles": len(tiles), "model": args.model or "fmnist", "mode": args.mode, "steps": args.steps,
              "bytes": len(blob), "kept": info["mode"], "png_bytes": len(png), "webp_bytes": len(webp),
              "over_best_fallback_bytes": len(blob) - min(len(png), len(webp)),
              "bits_per_pixel": 8 * len(blob) / tiles.size, "png_bits_per_pixel": 8 * len(png) / tiles.size,
              "webp_bits_per_pixel": 8 * len(webp) / tiles.size, "encode_s": t1 - t0, "threads": args.threads}
    print({k: v for k, v in result.items()})
    write_result(args.out or result_path("images", "tiles", args.model or "fmnist", str(len(tiles))), result)


if __name__ == "__main__":
    main()
