"""A further, independent estimate of a model's L^n + L^r on Fashion-MNIST test items, to tighten
the standard error of the overhead reported by codec_bench.py (same items, another seed).

    python benchmarks/loss_estimate.py --model fmnist-binary --dataset fmnist-binary --limit 10000 \
        --steps 25 --seed 1 --samples 10 --out benchmarks/results/loss-binary-10000-seed1.json
"""
from __future__ import annotations

import argparse
import json
import math
import os

import numpy as np
import torch

import bfn_codec
from bfn_codec.data import load_dataset
from bfn_codec.evaluate import per_item_total_bits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    items = load_dataset(args.dataset, "test").images[: args.limit]
    model = bfn_codec.load_model(args.model)
    bits = per_item_total_bits(model, items.reshape(len(items), -1), args.steps, seed=args.seed,
                               samples=args.samples)
    D = items[0].size
    res = {"model": args.model, "model_sha256": model.weights_sha256, "dataset": args.dataset,
           "items": len(items), "steps": args.steps, "seed": args.seed, "samples": args.samples,
           "bits_per_dim": float(bits.mean() / D),
           "stderr_bits_per_dim": float(bits.std() / math.sqrt(len(bits)) / D)}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    json.dump(res, open(args.out, "w"), indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
