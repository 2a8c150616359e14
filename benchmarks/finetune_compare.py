"""What fine-tuning with the discrete-time loss buys: two models, the same test images.

    python3 benchmarks/finetune_compare.py --base fmnist-binary --tuned runs/ftb5 \
        --dataset fmnist-binary --items 500 --steps 25,50 --threads 2

writes benchmarks/results/finetune-<data>-<base weights8>-<tuned weights8>.json unless --out says
otherwise (e.g. finetune-binary-3c7deafa-f1b771f2.json; benchmarks/README.md has the scheme).

For each n in --steps: L^n + L^r per image with every step evaluated (2 message samples per
step), for both models with the same random numbers, so the paired difference is far less
noisy than either value; plus L^inf of both (one random t per image, 4 passes).
"""
from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

import bfn_codec
from bfn_codec.data import load_dataset
from bfn_codec.api import model_defaults
from bfn_codec.chain import power_times
from bfn_codec.evaluate import evaluate_loss, per_item_total_bits
from result_names import data_token, result_path, write_result, weights8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", required=True)
    ap.add_argument("--tuned", required=True)
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--steps", default="10,25,50")
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--grid-power", type=float, default=None,
                    help="time grid t_i = (i/n)^p of L^n (default: the tuned model's codec grid)")
    ap.add_argument("--out", default=None,
                    help="JSON file (default: benchmarks/results/finetune-<data>-<base weights8>-<tuned weights8>.json)")
    args = ap.parse_args(argv)
    if args.grid_power is not None:
        try:  # the library's own rule for a grid power, applied before the models load
            power_times(1, args.grid_power)
        except ValueError as e:
            ap.error(str(e))
    torch.set_num_threads(args.threads)
    x = load_dataset(args.dataset, "test").images[: args.items][:, 0]
    D = int(np.prod(x.shape[1:]))
    models = {k: bfn_codec.load_model(v) for k, v in (("base", args.base), ("tuned", args.tuned))}
    res = {"base": args.base, "tuned": args.tuned, "dataset": args.dataset, "items": len(x),
           "sha256": {k: m.weights_sha256 for k, m in models.items()},
           "training": models["tuned"].info.get("training", {}).get("command"), "steps": []}
    p = model_defaults(models["tuned"])["grid_power"] if args.grid_power is None else args.grid_power
    res["grid_power"] = p
    for n in [int(v) for v in args.steps.split(",")]:
        bits = {k: per_item_total_bits(m, x, n, seed=n, samples=2, times=power_times(n, p)) / D
                for k, m in models.items()}
        d = bits["tuned"] - bits["base"]
        row = {"steps": n, "grid_power": p, **{f"{k}_bits_per_dim": float(v.mean()) for k, v in bits.items()},
               "tuned_minus_base": float(d.mean()), "stderr": float(d.std(ddof=1) / math.sqrt(len(d))),
               "relative_percent": 100.0 * float(d.mean() / bits["base"].mean())}
        res["steps"].append(row)
        print(json.dumps(row), flush=True)
    for k, m in models.items():
        est = evaluate_loss(m, x, steps=1, repeats=4, seed=123)["infinity_bits_per_dim"]
        res[f"{k}_infinity_bits_per_dim"] = est["mean"]
        res[f"{k}_infinity_stderr"] = est["stderr"]
    out = args.out or result_path("finetune", data_token(args.dataset), weights8(res["sha256"]["base"]),
                                  weights8(res["sha256"]["tuned"]))
    print(json.dumps({k: v for k, v in res.items() if k != "steps"}, indent=2))
    write_result(out, res)


if __name__ == "__main__":
    main()
