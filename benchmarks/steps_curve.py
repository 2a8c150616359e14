"""How the loss and the coder's bits depend on the number of steps n, and on the time grid.

    python3 benchmarks/steps_curve.py --model fmnist-binary --dataset fmnist-binary \
        --grid-powers 0.5,0.75,1,1.5,2
    python3 benchmarks/steps_curve.py --model fmnist --dataset fmnist --items 2000 --code-items 24 \
        --grid-powers 1,1.25,1.5,2 --grid-steps 10,25,50 --grid-items 200 --threads 2

writes benchmarks/results/curve-<data>-<weights8>.json unless --out says otherwise (e.g.
curve-binary-f1b771f2.json; benchmarks/README.md has the scheme).

For every n in --steps, on the first --items Fashion-MNIST test images:
  * L^n + L^r in bits/dim (the paper's estimator: one random step per item, 10 message samples)
    and L^inf (one random t per item), with standard errors. L^n is taken on the time grid the
    coder uses (--grid-power, default: the model's own), so the two are comparable;
  * the coder at that n on the first --code-items of them (mode bfn): the chain's own bits per
    dim (file minus header and LZMA2 seed, i.e. what a long file converges to) next to the ideal
    code length of the very trajectories it popped, and the whole file's bits/dim. Those first
    images need not be typical of all --items: compare the chain with its trajectory, not with
    the curve.

With --grid-powers, also the time grid t_i = (i/n)^p for each p and each n in --grid-steps
(p = 1 is the paper's uniform grid): L^n + L^r with every step evaluated on --grid-items
images, with common random numbers across p so the differences are not drowned in noise.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
import torch

import bfn_codec
from bfn_codec.api import compress_with_stats, model_defaults
from bfn_codec.chain import power_times
from bfn_codec.container import read
from bfn_codec.data import load_dataset
from bfn_codec.evaluate import evaluate_loss, per_item_total_bits
from result_names import data_token, result_path, write_result, weights8


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v]


def power_grid(n: int, p: float) -> torch.Tensor:
    return (torch.arange(n + 1, dtype=torch.float64) / n) ** p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True, help="fmnist, fmnist-binary or any bfn-codec train dataset "
                    "(bytes:FILE for the byte model: its windows at half-window strides)")
    ap.add_argument("--steps", type=_ints, default=[10, 25, 50, 100, 200, 500])
    ap.add_argument("--items", type=int, default=2000)
    ap.add_argument("--code-items", type=int, default=100, help="0 skips the coder")
    ap.add_argument("--code-max-steps", type=int, default=None,
                    help="run the coder only for n up to this (its time grows with n; larger n get the loss alone)")
    ap.add_argument("--grid-power", type=float, default=None,
                    help="time grid of the curve and the coder (default: the model's)")
    ap.add_argument("--grid-powers", type=_floats, default=[])
    ap.add_argument("--grid-steps", type=_ints, default=[10, 25, 50])
    ap.add_argument("--grid-items", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/curve-<data>-<weights8>.json)")
    args = ap.parse_args(argv)
    for p in ([] if args.grid_power is None else [args.grid_power]) + args.grid_powers:
        try:  # the library's own rule for a grid power, applied before the model loads
            power_times(1, p)
        except ValueError as e:
            ap.error(str(e))
    torch.set_num_threads(args.threads)
    images = load_dataset(args.dataset, "test").images
    images = images[:, 0] if images.shape[1] == 1 else images  # one-channel images as (N, H, W)
    model = bfn_codec.load_model(args.model)
    D = int(np.prod(images.shape[1:]))
    power = model_defaults(model)["grid_power"] if args.grid_power is None else args.grid_power
    res = {"model": args.model, "model_sha256": model.weights_sha256, "dataset": args.dataset,
           "grid_power": power, "items": args.items, "code_items": args.code_items,
           "code_max_steps": args.code_max_steps, "curve": [], "grid": [],
           "threads": args.threads, "machine": f"{platform.machine()} {os.cpu_count()} cpus",
           "torch": torch.__version__}
    x = images[: args.items]
    linf = []
    for n in args.steps:
        t0 = time.perf_counter()
        est = evaluate_loss(model, x, steps=n, seed=args.seed + n, times=power_times(n, power))
        row = {"steps": n, "loss_bits_per_dim": est["n_step_plus_reconstruction_bits_per_dim"]["mean"],
               "loss_stderr": est["n_step_plus_reconstruction_bits_per_dim"]["stderr"],
               "estimate_seconds": time.perf_counter() - t0}
        linf.append(est["infinity_bits_per_dim"])
        if args.code_items and (args.code_max_steps is None or n <= args.code_max_steps):
            y = images[: args.code_items]
            t0 = time.perf_counter()
            blob, stats = compress_with_stats(y, model, steps=n, mode="bfn", trajectory=True, grid_power=power,
                                              layout="NCHW" if y.ndim == 4 else None)
            seconds = time.perf_counter() - t0
            T = stats.get("trajectory_bits", np.zeros(0))
            header_bytes = len(blob) - len(read(blob)[1])
            chain_bits = 8 * (len(blob) - header_bytes - stats.get("seed_bytes", 0))
            row.update(chain_items=int(len(T)),
                       chain_bits_per_dim=chain_bits / max(1, len(T) * D),
                       trajectory_bits_per_dim=float(T.sum()) / max(1, len(T) * D),
                       chain_overhead_percent=100.0 * (chain_bits / T.sum() - 1.0) if len(T) else None,
                       file_bits_per_dim=8 * len(blob) / y.size, encode_seconds=seconds,
                       encode_items_per_second=len(y) / seconds)
        res["curve"].append(row)
        print(json.dumps(row), flush=True)
    means = np.array([v["mean"] for v in linf])
    ses = np.array([v["stderr"] for v in linf])
    w = 1.0 / ses ** 2  # the L^inf estimates of every run pooled
    res["infinity_bits_per_dim"] = float((w * means).sum() / w.sum())
    res["infinity_stderr"] = float(1.0 / math.sqrt(w.sum()))
    g = images[: args.grid_items]
    for n in args.grid_steps if args.grid_powers else []:
        for p in args.grid_powers:
            t0 = time.perf_counter()
            bits = per_item_total_bits(model, g, n, seed=args.seed, times=power_grid(n, p), samples=2) / D
            row = {"steps": n, "power": p, "loss_bits_per_dim": float(bits.mean()),
                   "loss_stderr": float(bits.std(ddof=1) / math.sqrt(len(bits))),
                   "seconds": time.perf_counter() - t0, "_bits": bits}
            res["grid"].append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "_bits"}), flush=True)
        uniform = next((r["_bits"] for r in res["grid"] if r["steps"] == n and r["power"] == 1.0), None)
        for r in res["grid"]:
            if r["steps"] == n and uniform is not None and "_bits" in r:
                d = r["_bits"] - uniform  # paired over the same images
                r["vs_uniform_bits_per_dim"] = float(d.mean())
                r["vs_uniform_stderr"] = float(d.std(ddof=1) / math.sqrt(len(d)))
    for r in res["grid"]:
        r.pop("_bits", None)
    out = args.out or result_path("curve", data_token(args.dataset), weights8(model.weights_sha256))
    print(json.dumps({k: v for k, v in res.items() if k not in ("curve", "grid")}, indent=2))
    write_result(out, res)


if __name__ == "__main__":
    main()
