"""The coder's own overhead against n, per portable revision and grid ratio r (issue #20 item 5):
one batch of test images pushed through the chain onto a stack that already holds enough random
bits, the stack's exact growth (32 words + log2 state: no header, seed, flush or CRC) against the
ideal cost of the message trajectories the encoder popped (``ChainCoder.last_trajectory_nats``).
So this is the per-step cost of the coder's quantisation alone, which a long file pays on every
item; `--verify` also decodes the batch and checks it.

`--oracle` codes with the Bayes-optimal source model instead of the network (per-pixel marginals
of the training images, ``r_scan.oracle_for``): every trajectory's ideal cost is then exactly
-log2 pi(x), so the rows also give the chain against that.

    python3 benchmarks/coder_overhead.py --model fmnist-binary --oracle --items 256 --configs 8:2

    python3 benchmarks/coder_overhead.py --model fmnist-binary --items 32 \\
        --steps 10 25 50 100 200 500 1000 --configs 6:2 7:2 6:4 7:4

Writes results/coder-overhead-<data>-<weights8>-<items>.json.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from r_scan import oracle_for  # noqa: E402
from result_names import data_token, result_path, write_result, weights8  # noqa: E402

from bfn_codec.api import chain_coder, codec_settings  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.driver import AnsCoder, exact_bits  # noqa: E402
from bfn_codec.models import load_model, portable_model  # noqa: E402


def measure(chain, x: np.ndarray, verify: bool, ideal_bits: float | None = None) -> dict:
    coder = AnsCoder(np.random.default_rng(0).integers(0, 2**32, 1 << 20, dtype=np.uint32), seal=True)
    before = exact_bits(coder)
    chain.measure_trajectory = True
    t0 = time.perf_counter()
    chain.encode(coder, x)
    seconds = time.perf_counter() - t0
    net = exact_bits(coder) - before
    ideal = float(chain.last_trajectory_nats.sum()) / math.log(2.0)
    row = {"net_bits": net, "trajectory_bits": ideal, "overhead_bits_per_item": (net - ideal) / len(x),
           "overhead_percent": 100.0 * (net / ideal - 1.0), "encode_seconds": seconds}
    if ideal_bits is not None:  # the oracle: every trajectory's ideal is -log2 pi(x)
        row.update(ideal_bits=ideal_bits, overhead_vs_ideal_percent=100.0 * (net / ideal_bits - 1.0))
    if verify:
        row["verified"] = bool(np.array_equal(chain.decode(coder, len(x)), x))
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fmnist-binary", choices=["fmnist-binary", "fmnist"])
    ap.add_argument("--items", type=int, default=32, help="test images (the first N), one batch")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50, 100, 200, 500, 1000])
    ap.add_argument("--configs", nargs="+", default=["6:2", "7:2"],
                    help="revision:r pairs, each coded at every n")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--verify", action="store_true")
    ap.add_argument("--oracle", action="store_true", help="the oracle source (per-pixel marginals) instead of the network")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    x = load_fmnist("test")[: args.items]
    x = (binarise(x) if args.model == "fmnist-binary" else x).reshape(len(x), -1).astype(np.int64)
    _, _, grid_power = codec_settings(model, None, None, None)  # the bundled model's grid, also for the oracle
    ideal = None
    if args.oracle:
        pm = oracle_for("binary" if args.model == "fmnist-binary" else "8bit")
        pi = pm.log_pi.exp().numpy()
        ideal = float(-np.log2(pi[np.arange(x.shape[1]), x]).sum())
    else:
        pm = portable_model(model)
    rows = []
    for n in args.steps:
        for config in args.configs:
            rev, r = int(config.split(":")[0]), float(config.split(":")[1])
            row = {"steps": n, "r": r, "grid_power": grid_power, "coder_revision": rev,
                   **measure(chain_coder(pm, rev, n, r, grid_power), x, args.verify, ideal)}
            rows.append(row)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    source = "oracle" if args.oracle else weights8(model.weights_sha256)
    out = args.out or result_path("coder-overhead", data_token(args.model), source, args.items)
    write_result(out, {"model": "oracle" if args.oracle else args.model, "data": args.model,
                       "source": "oracle" if args.oracle else "network",
                       "model_sha256": pm.weights_sha256 if args.oracle else model.weights_sha256, "items": args.items,
                       "threads": args.threads, "rows": rows,
                       # the integer network's calibration the portable revisions code with
                       **({} if args.oracle else {"integer": {k: model.integer[k] for k in ("weight_bits", "act_bits")}})})


if __name__ == "__main__":
    main()
