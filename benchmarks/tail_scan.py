"""Choose the support width (coder.DEFAULT_TAIL) by measurement, with a real model: the chain's
exact net bits for a batch of test images against the ideal cost of the trajectories it coded.

    python3 benchmarks/tail_scan.py --model fmnist-binary --dataset fmnist-binary --items 1024 \\
        --tails 4,5,6,8,10

writes benchmarks/results/tail-scan-<data>-<weights8>.json unless --out says otherwise (e.g.
tail-scan-binary-f1b771f2.json; benchmarks/README.md has the scheme).

Every support of the chain covers +-tail std of the distribution it codes. constriction gives
each symbol of a support at least 2^-24, so a wide support lets pops land on far-tail values
(a handful per 10^6 pops) that the coder pays back only ~24 bits for; too narrow a support
truncates real mass. No header or seed here (codec_bench.py measures those).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch

from bfn_codec.api import model_defaults
from bfn_codec.driver import AnsCoder, exact_bits
from bfn_codec.chain import power_times
from bfn_codec.coder import ChainCoder, make_plan
from bfn_codec.data import load_dataset
from bfn_codec.models import load_model
from result_names import data_token, result_path, write_result, weights8


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fmnist-binary")
    ap.add_argument("--dataset", default="fmnist-binary")
    ap.add_argument("--items", type=int, default=1024, help="test images, coded as one batch")
    ap.add_argument("--tails", default="4,5,6,8,10")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/tail-scan-<data>-<weights8>.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    defaults = model_defaults(model)
    n, r, p = defaults["steps"], defaults["r"], defaults["grid_power"]
    x = load_dataset(args.dataset, "test").images[: args.items].reshape(args.items, -1).astype(np.int64)
    rows = []
    for tail in map(float, args.tails.split(",")):
        chain = ChainCoder(model, make_plan(model.flow, n, r, power_times(n, p), tail=tail))
        chain.measure_trajectory = True
        coder = AnsCoder(np.random.default_rng(0).integers(0, 2**32, 1 << 22, dtype=np.uint32), seal=True)
        before = exact_bits(coder)
        t0 = time.perf_counter()
        chain.encode(coder, x)
        net = exact_bits(coder) - before
        ideal = float(chain.last_trajectory_nats.sum() / math.log(2.0))
        row = {"model": args.model, "model_sha256": model.weights_sha256, "items": args.items,
               "steps": n, "r": r, "grid_power": p, "tail": tail, "net_bits": net,
               "trajectory_bits": ideal, "overhead_percent": 100 * (net / ideal - 1),
               "overhead_bits_per_item": (net - ideal) / args.items,
               "encode_seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    out = args.out or result_path("tail-scan", data_token(args.dataset), weights8(model.weights_sha256))
    write_result(out, rows)


if __name__ == "__main__":
    sys.exit(main())
