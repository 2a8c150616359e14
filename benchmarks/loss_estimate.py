"""A further, independent estimate of a model's L^n + L^r on Fashion-MNIST test items, to tighten
the standard error of the overhead reported by codec_bench.py (same items, another seed).

    python3 benchmarks/loss_estimate.py --model fmnist-binary --dataset fmnist-binary --limit 10000 \
        --steps 25 --seed 1 --samples 10

writes benchmarks/results/loss-<data>-<weights8>-<items>-n<steps>-seed<seed>.json unless --out says
otherwise (codec_bench.py --estimates reads such files; benchmarks/README.md has the scheme).
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

import bfn_codec
from bfn_codec.data import load_dataset
from bfn_codec.evaluate import per_item_total_bits
from result_names import data_token, result_path, write_result, weights8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--samples", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None,
                    help="JSON file (default: benchmarks/results/loss-<data>-<weights8>-<items>-n<steps>-seed<seed>.json)")
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
    out = args.out or result_path("loss", data_token(args.dataset), weights8(model.weights_sha256), len(items),
                                  f"n{args.steps}", f"seed{args.seed}")
    print(json.dumps(res, indent=2))
    write_result(out, res)


if __name__ == "__main__":
    main()
