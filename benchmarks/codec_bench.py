"""Coder benchmark: compress Fashion-MNIST test items with a model and compare with its loss.

    python3 benchmarks/codec_bench.py --model fmnist-binary --dataset fmnist-binary --limit 10000 \
        --threads 2 --no-estimate

writes benchmarks/results/codec-<data>-<weights8>-<images>-n<steps>-p<grid>.json unless --out says
otherwise (here codec-binary-f1b771f2-10000-n50-p2.json for the bundled weights f1b771f2...,
their default n = 50 and grid p = 2; benchmarks/README.md has the scheme). A run too long for
one sitting can encode (--encode-only DIR) and decode later (--decode-from DIR).

Writes JSON: achieved bits/dim (everything in the file: header, seed, ANS words, CRC), the
model's L^n + L^r on the same items (all n steps evaluated), the overhead %, and encode /
decode seconds split into network time and coder time.

The Monte-Carlo estimate of L^n + L^r is noisy (each item's estimate is one or two random
message trajectories), so the overhead against it carries that noise. The encoder also records
the ideal code length of the trajectory it actually popped (``compress_with_stats(trajectory=True)``), one
sample of L^n + L^r per chain-coded item; the file minus that isolates the coder's own cost
(grids, posteriors, ANS, seed, header) with almost no noise: ``overhead_vs_trajectory_percent``
(the few seed items, coded by the fallback, enter at their estimated L^n + L^r).
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
from bfn_codec.api import compress_with_stats, decompress_with_stats, read_header
from bfn_codec.data import load_dataset
from result_names import data_token, number, result_path, write_result, weights8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", required=True, help="fmnist or fmnist-binary")
    ap.add_argument("--limit", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("-r", type=float, default=None)
    ap.add_argument("--grid-power", type=float, default=None, help="time grid t_i = (i/n)^p (default: the model's)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--mode", default="bfn", choices=["auto", "bfn"])
    ap.add_argument("--estimates", nargs="*", default=None,
                    help="JSON files from loss_estimate.py for the same model and items: use their "
                         "combined L^n + L^r instead of computing a new estimate")
    ap.add_argument("--no-estimate", action="store_true",
                    help="skip the independent L^n + L^r estimate (the trajectory-based overhead "
                         "is still reported)")
    ap.add_argument("--arithmetic", default="portable", choices=["portable", "float"],
                    help="the portable coder (the default: its current revision) or revision 5 (float "
                         "kernels); a portable run's file name ends in -rev<revision>")
    ap.add_argument("--out", default=None,
                    help="JSON file (default: benchmarks/results/codec-<data>-<weights8>-<images>-n<steps>-p<grid>.json)")
    ap.add_argument("--encode-only", metavar="DIR", default=None,
                    help="compress, keep the file and the encoder's statistics in DIR, and stop: a run "
                         "too long for one sitting then decodes later with --decode-from DIR")
    ap.add_argument("--decode-from", metavar="DIR", default=None,
                    help="decode the file an --encode-only run left in DIR (same --model, --dataset and "
                         "--limit) and write the whole result")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, "test").images[: args.limit][:, 0]
    model = bfn_codec.load_model(args.model)
    if args.decode_from:
        blob, enc_stats, encode_seconds = _load_encoding(args, model)
    else:
        t0 = time.perf_counter()
        blob, enc_stats = compress_with_stats(data, model, steps=args.steps, r=args.r, grid_power=args.grid_power,
                                              batch_size=args.batch_size, mode=args.mode, progress=True,
                                              trajectory=True, portable=args.arithmetic == "portable")
        encode_seconds = time.perf_counter() - t0
        if args.encode_only:
            _save_encoding(args, model, blob, enc_stats, encode_seconds)
            return
    # the encode's wall time sits between t0 and t1 whether it ran now or in an earlier sitting
    t1 = time.perf_counter()
    t0 = t1 - encode_seconds
    back, dec_stats = decompress_with_stats(blob, model, progress=True)
    t2 = time.perf_counter()
    assert np.array_equal(back, data), "round trip failed"
    header = read_header(blob)
    if not header.batches:  # nothing went through the chain: there is no coder to measure
        raise SystemExit(f"all {len(data)} images went to the fallback coder (too few for the chain, or "
                         "--mode fallback); use more images or --mode bfn")
    est = None
    if args.no_estimate:
        pass
    elif args.estimates:
        runs = [json.load(open(p)) for p in args.estimates]
        assert all(r["model_sha256"] == model.weights_sha256 and r["items"] == len(data) for r in runs)
        est = {"bits_per_dim": float(np.mean([r["bits_per_dim"] for r in runs])),
               "stderr_bits_per_dim": float(np.sqrt(sum(r["stderr_bits_per_dim"] ** 2 for r in runs)) / len(runs))}
    else:
        est = bfn_codec.estimate_loss(data, model=model, steps=header.steps, grid_power=header.grid_power)
    t3 = time.perf_counter()
    dims = data.size
    D = dims // len(data)
    achieved = 8 * len(blob) / dims
    # Trajectory-based overhead: chain items at their recorded ideal cost, seed items at their
    # estimated L^n + L^r (all steps, 4 samples each: they are few).
    F = enc_stats.get("seed_items", 0)
    T = enc_stats.get("trajectory_bits", np.zeros(0))
    seed_est = bfn_codec.estimate_loss(data[:F], model=model, steps=header.steps, grid_power=header.grid_power) if F else {"total_bits": 0.0}
    reference = float(T.sum()) + seed_est["total_bits"]
    traj = {
        "chain_items": int(len(T)), "trajectory_bits_per_dim": float(T.sum() / max(1, len(T) * D)),
        "trajectory_stderr_bits_per_dim": float(T.std(ddof=1) / np.sqrt(len(T)) / D) if len(T) > 1 else None,
        "seed_model_bits": seed_est["total_bits"],
        "overhead_vs_trajectory_percent": 100.0 * (8 * len(blob) / reference - 1.0),
    }
    res = {
        "model": args.model, "model_sha256": model.weights_sha256, "coder_revision": header.coder_revision,
        "arithmetic": args.arithmetic, "dataset": args.dataset,
        # the integer calibration a portable run coded with (weight / activation bits)
        "integer": ({k: model.integer[k] for k in ("weight_bits", "act_bits")}
                    if args.arithmetic == "portable" and getattr(model, "integer", None) else None),
        "items": int(len(data)), "steps": header.steps, "r": header.r, "grid_power": header.grid_power, "mode": enc_stats.get("mode"),
        "bytes": len(blob), "achieved_bits_per_dim": achieved,
        "model_bits_per_dim": est["bits_per_dim"] if est else None,
        "model_stderr_bits_per_dim": est["stderr_bits_per_dim"] if est else None,
        "overhead_percent": 100.0 * (achieved / est["bits_per_dim"] - 1.0) if est else None,
        **traj,
        "seed_items": enc_stats.get("seed_items"), "seed_bytes": enc_stats.get("seed_bytes"),
        "batches": len(enc_stats.get("batches", [])), "largest_batch": max(enc_stats.get("batches", [0]) or [0]),
        # encode_seconds is the wall time with the trajectory recording; its share is reported
        # apart (a plain compress does not record it) and left out of the coder's seconds
        "encode_seconds": t1 - t0, "encode_network_seconds": enc_stats.get("network_seconds"),
        "encode_trajectory_seconds": enc_stats.get("trajectory_seconds", 0.0),
        "encode_coder_seconds": (t1 - t0) - enc_stats.get("network_seconds", 0.0) - enc_stats.get("trajectory_seconds", 0.0),
        "encode_items_per_second_without_trajectory": len(data) / (t1 - t0 - enc_stats.get("trajectory_seconds", 0.0)),
        "decode_seconds": t2 - t1, "decode_network_seconds": dec_stats.get("network_seconds"),
        "decode_coder_seconds": (t2 - t1) - dec_stats.get("network_seconds", 0.0),
        "encode_items_per_second": len(data) / (t1 - t0), "decode_items_per_second": len(data) / (t2 - t1),
        "sittings": 2 if args.decode_from else 1,
        "loss_estimate_seconds": t3 - t2, "loss_estimates": "none" if args.no_estimate else (args.estimates or "computed"),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {os.cpu_count()} cpus", "torch": torch.__version__,
    }
    out = args.out or result_path("codec", data_token(args.dataset), weights8(model.weights_sha256), len(data),
                                  f"n{header.steps}", f"p{number(header.grid_power)}",
                                  *([f"rev{header.coder_revision}"] if args.arithmetic == "portable" else []))
    print(json.dumps(res, indent=2))
    write_result(out, res)


ENCODER_STATS = ("network_seconds", "trajectory_seconds", "seed_items", "seed_bytes", "batches", "mode")


def _save_encoding(args, model, blob: bytes, enc_stats: dict, encode_seconds: float):
    os.makedirs(args.encode_only, exist_ok=True)
    with open(os.path.join(args.encode_only, "file.bfn"), "wb") as f:
        f.write(blob)
    np.save(os.path.join(args.encode_only, "trajectory_bits.npy"), np.asarray(enc_stats.get("trajectory_bits", [])))
    meta = {"model": args.model, "model_sha256": model.weights_sha256, "dataset": args.dataset, "limit": args.limit,
            "arithmetic": args.arithmetic, "encode_seconds": encode_seconds, "bytes": len(blob),
            "stats": {k: enc_stats[k] for k in ENCODER_STATS if k in enc_stats}}
    with open(os.path.join(args.encode_only, "encode.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"encoded {args.limit} items into {len(blob):,} bytes in {encode_seconds:.0f} s; finish with "
          f"--decode-from {args.encode_only}")


def _load_encoding(args, model):
    with open(os.path.join(args.decode_from, "encode.json")) as f:
        meta = json.load(f)
    mine = {"model": args.model, "model_sha256": model.weights_sha256, "dataset": args.dataset,
            "limit": args.limit, "arithmetic": args.arithmetic}
    if any(meta[k] != v for k, v in mine.items()):
        raise SystemExit(f"{args.decode_from} holds another run: {({k: meta[k] for k in mine})}")
    with open(os.path.join(args.decode_from, "file.bfn"), "rb") as f:
        blob = f.read()
    stats = dict(meta["stats"], trajectory_bits=np.load(os.path.join(args.decode_from, "trajectory_bits.npy")))
    return blob, stats, meta["encode_seconds"]


if __name__ == "__main__":
    main()
