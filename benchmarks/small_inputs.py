"""File size against the number of images for several n: where a larger n stops paying.

    python3 benchmarks/small_inputs.py --model fmnist-binary --dataset fmnist-binary \
        --counts 16,64,256,1024 --steps 25,50 --out benchmarks/results/small-inputs-binary.json

A larger n lowers L^n + L^r per image, but the bits-back chain then needs a deeper ANS stack
before its first pop, so more leading images go to the LZMA2 seed (codec-design: seeding).
On a long file that cost is amortised; on a short one it can outweigh the gain. For each count
(the first COUNT test images) and each n: whole-file bytes (everything counted, mode auto) and
the number of seed items.
"""
import argparse
import json

import torch

import bfn_codec
from bfn_codec.data import load_dataset


def _ints(s):
    return [int(v) for v in s.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True, help="fmnist or fmnist-binary")
    ap.add_argument("--counts", type=_ints, default=[16, 64, 256, 1024])
    ap.add_argument("--steps", type=_ints, default=[25, 50])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = load_dataset(args.dataset, "test").images[:, 0]  # (N, 28, 28), as a user passes them
    rows = []
    for count in args.counts:
        for steps in args.steps:
            stats = {}
            blob = bfn_codec.compress(images[:count], model=args.model, steps=steps, stats=stats)
            assert (bfn_codec.decompress(blob) == images[:count]).all()
            rows.append({"model": args.model, "dataset": args.dataset, "images": count, "steps": steps,
                         "bytes": len(blob), "bits_per_pixel": 8 * len(blob) / images[:count].size,
                         "mode": stats.get("mode"), "seed_items": stats.get("seed_items")})
            print(json.dumps(rows[-1]), flush=True)
    with open(args.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
