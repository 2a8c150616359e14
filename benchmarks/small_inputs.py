"""File size against the number of images: small files stay small.

Two modes. The default compares several n: where a larger n stops paying.

    python3 benchmarks/small_inputs.py --model fmnist-binary --dataset fmnist-binary \
        --counts 16,64,256,1024 --steps 25,50

A larger n lowers L^n + L^r per image, but the bits-back chain then needs a deeper ANS stack
before its first pop, so more leading images go to the LZMA2 seed (docs/design.md §11).
On a long file that cost is amortised; on a short one it can outweigh the gain. For each count
(the first COUNT test images) and each n: whole-file bytes (everything counted, mode auto) and
the number of seed items.

``--yardsticks`` instead codes each count at the model's default settings and sets the file
beside what a user would get from xz -9e and zstd -19 on the same images saved as .npy
(benchmarks/report.py turns the two files into the README's small-files table):

    python3 benchmarks/small_inputs.py --yardsticks --model fmnist-binary --dataset fmnist-binary \
        --counts 0,1,4,16,64 --threads 2
    python3 benchmarks/small_inputs.py --yardsticks --model fmnist --dataset fmnist \
        --counts 0,1,4,16,64 --threads 2

Unless --out says otherwise the file is benchmarks/results/small-files-steps-<data>-<weights8>.json
(several n) or small-files-<data>-<weights8>.json (--yardsticks), e.g.
small-files-binary-f1b771f2.json; benchmarks/README.md has the scheme.
"""
import argparse
import io
import json

import numpy as np
import torch

import bfn_codec
from bfn_codec.api import compress_with_stats
from bfn_codec.baselines import classical_sizes
from bfn_codec.data import load_dataset
from result_names import data_token, result_path, write_result, weights8


def _ints(s):
    return [int(v) for v in s.split(",")]


def _roundtrip(x, **kwargs):
    """compress ``x`` and check it decodes to exactly ``x`` (shape too); the file and its stats."""
    blob, stats = compress_with_stats(x, **kwargs)
    y = bfn_codec.decompress(blob)
    assert y.shape == x.shape and (y == x).all(), f"round trip failed for {len(x)} images"
    return blob, stats


def steps_rows(images, args):
    rows = []
    for count in args.counts:
        for steps in args.steps:
            blob, stats = _roundtrip(images[:count], model=args.model, steps=steps)
            rows.append({"model": args.model, "dataset": args.dataset, "images": count, "steps": steps,
                         "bytes": len(blob), "bits_per_pixel": 8 * len(blob) / images[:count].size,
                         "mode": stats.get("mode"), "seed_items": stats.get("seed_items")})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def yardstick_rows(images, args):
    binary = images.max() <= 1  # 0/1 data: bit-packing is the obvious hand-made format, so record it too
    rows = []
    for count in args.counts:
        x = np.ascontiguousarray(images[:count])  # count 0 gives shape (0, 28, 28), as a user would have
        blob, stats = _roundtrip(x, model=args.model)  # the model's defaults: steps, r, grid all None
        npy = io.BytesIO()
        np.save(npy, x)  # "the same bytes": the .npy file a user would otherwise compress
        sizes = classical_sizes(npy.getvalue())
        best = min(v for v in sizes.values() if v is not None)
        row = {"model": args.model, "dataset": args.dataset, "images": count, "bytes": len(blob),
               "mode": stats.get("mode"), "seed_items": stats.get("seed_items"),
               "npy_bytes": len(npy.getvalue()), "xz_bytes": sizes["xz"], "zstd_bytes": sizes["zstd"]}
        if binary:
            row["packed_bytes"] = len(np.packbits(x))
        row["minus_best_classical"] = len(blob) - best
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True, help="fmnist or fmnist-binary")
    ap.add_argument("--counts", type=_ints, default=[16, 64, 256, 1024])
    ap.add_argument("--steps", type=_ints, default=[25, 50])
    ap.add_argument("--yardsticks", action="store_true",
                    help="default settings only, against xz -9e and zstd -19 on the .npy bytes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None,
                    help="JSON file (default: benchmarks/results/small-files[-steps]-<data>-<weights8>.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = load_dataset(args.dataset, "test").images[:, 0]  # (N, 28, 28), as a user passes them
    rows = yardstick_rows(images, args) if args.yardsticks else steps_rows(images, args)
    what = "small-files" if args.yardsticks else "small-files-steps"
    out = args.out or result_path(what, data_token(args.dataset), weights8(bfn_codec.load_model(args.model).weights_sha256))
    write_result(out, rows, indent=1)


if __name__ == "__main__":
    main()
