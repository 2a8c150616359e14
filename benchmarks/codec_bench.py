"""Coder benchmark: compress Fashion-MNIST test items with a model and compare with its loss.

    python benchmarks/codec_bench.py --model fmnist-binary --dataset fmnist-binary --limit 10000 \
        --steps 25 --out benchmarks/results/codec-binary.json

Writes JSON: achieved bits/dim (everything in the file: header, seed, ANS words, CRC), the
model's L^n + L^r on the same items (all n steps evaluated), the overhead %, and encode /
decode seconds split into network time and coder time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

import bfn_codec
from bfn_codec.api import read_header
from bfn_codec.data import load_dataset


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True, help="fmnist or fmnist-binary")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("-r", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mode", default="bfn", choices=["auto", "bfn"])
    ap.add_argument("--estimates", nargs="*", default=None,
                    help="JSON files from loss_estimate.py for the same model and items: use their "
                         "combined L^n + L^r instead of computing a new estimate")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, "test").images[: args.limit][:, 0]
    model = bfn_codec.load_model(args.model)
    enc_stats, dec_stats = {}, {}
    t0 = time.perf_counter()
    blob = bfn_codec.compress(data, model=model, steps=args.steps, r=args.r, batch_size=args.batch_size,
                              mode=args.mode, stats=enc_stats, progress=True)
    t1 = time.perf_counter()
    back = bfn_codec.decompress(blob, model=model, stats=dec_stats, progress=True)
    t2 = time.perf_counter()
    assert np.array_equal(back, data), "round trip failed"
    header = read_header(blob)
    if args.estimates:
        runs = [json.load(open(p)) for p in args.estimates]
        assert all(r["model_sha256"] == model.weights_sha256 and r["items"] == len(data) for r in runs)
        est = {"bits_per_dim": float(np.mean([r["bits_per_dim"] for r in runs])),
               "stderr_bits_per_dim": float(np.sqrt(sum(r["stderr_bits_per_dim"] ** 2 for r in runs)) / len(runs))}
    else:
        est = bfn_codec.estimate_loss(data, model=model, steps=header.steps)
    t3 = time.perf_counter()
    dims = data.size
    achieved = 8 * len(blob) / dims
    res = {
        "model": args.model, "model_sha256": model.weights_sha256, "dataset": args.dataset,
        "items": int(len(data)), "steps": header.steps, "r": header.r, "mode": enc_stats.get("mode"),
        "bytes": len(blob), "achieved_bits_per_dim": achieved,
        "model_bits_per_dim": est["bits_per_dim"], "model_stderr_bits_per_dim": est["stderr_bits_per_dim"],
        "overhead_percent": 100.0 * (achieved / est["bits_per_dim"] - 1.0),
        "seed_items": enc_stats.get("seed_items"), "seed_bytes": enc_stats.get("seed_bytes"),
        "batches": len(enc_stats.get("batches", [])), "largest_batch": max(enc_stats.get("batches", [0]) or [0]),
        "encode_seconds": t1 - t0, "encode_network_seconds": enc_stats.get("network_seconds"),
        "encode_coder_seconds": (t1 - t0) - enc_stats.get("network_seconds", 0.0),
        "decode_seconds": t2 - t1, "decode_network_seconds": dec_stats.get("network_seconds"),
        "decode_coder_seconds": (t2 - t1) - dec_stats.get("network_seconds", 0.0),
        "encode_items_per_second": len(data) / (t1 - t0), "decode_items_per_second": len(data) / (t2 - t1),
        "loss_estimate_seconds": t3 - t2, "loss_estimates": args.estimates or "computed",
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch": torch.__version__,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
