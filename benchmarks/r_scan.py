"""Choose the grid ratio r by measurement: coder overhead against the ideal for an oracle source
(independent per-pixel Fashion-MNIST marginals from the training set, docs/design.md §13).

    python3 benchmarks/r_scan.py

writes benchmarks/results/r-scan-<data>-rev<coder revision>.json unless --out says otherwise
(data: both for the default --kinds binary,8bit; the oracle source has no weights, so the coder
revision stands in for them; benchmarks/README.md has the scheme).

Counts the exact net bits of the chain (32 * words + log2(state)) for the items, against
-log2 pi(x); no header or seed (those are measured by codec_bench.py).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from bfn_codec.driver import AnsCoder, exact_bits
from bfn_codec.coder import ChainCoder, make_plan
from bfn_codec.data import binarise, load_fmnist
from bfn_codec.models import OracleModel, make_flow
from result_names import result_path, write_result


def oracle_for(kind: str):
    train = load_fmnist("train").reshape(60000, -1)
    if kind == "binary":
        b = binarise(train)
        p1 = (b.sum(0) + 1) / (len(b) + 2)
        return OracleModel(make_flow({"data_type": "discrete", "K": 2}), np.stack([1 - p1, p1], 1), (1, 28, 28))
    counts = np.stack([np.bincount(train[:, d], minlength=256) for d in range(784)]) + 0.5
    return OracleModel(make_flow({"data_type": "discretised", "K": 256, "sigma1": 1e-3}),
                       counts / counts.sum(1, keepdims=True), (1, 28, 28))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--kinds", default="binary,8bit")
    ap.add_argument("--steps", default="25,100")
    ap.add_argument("--ratios", default="1,1.5,2,3,4")
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/r-scan-<data>-rev<coder revision>.json)")
    args = ap.parse_args(argv)
    test = load_fmnist("test")[: args.items].reshape(args.items, -1)
    rows = []
    for kind in args.kinds.split(","):
        model = oracle_for(kind)
        x = (binarise(test) if kind == "binary" else test).astype(np.int64)
        pi = model.log_pi.exp().numpy()
        ideal = float(-np.log2(pi[np.arange(784), x]).sum())
        for n in map(int, args.steps.split(",")):
            for r in map(float, args.ratios.split(",")):
                chain = ChainCoder(model, make_plan(model.flow, n, r))
                coder = AnsCoder(np.random.default_rng(0).integers(0, 2**32, 1 << 20, dtype=np.uint32), seal=True)
                b0 = exact_bits(coder)
                t0 = time.perf_counter()
                chain.encode(coder, x)
                net = exact_bits(coder) - b0
                row = {"kind": kind, "steps": n, "r": r, "items": args.items, "ideal_bits": ideal,
                       "net_bits": net, "overhead_percent": 100 * (net / ideal - 1),
                       "encode_seconds": time.perf_counter() - t0}
                rows.append(row)
                print(json.dumps(row), flush=True)
    from bfn_codec.environment import CODER_REVISION

    kinds = args.kinds.split(",")
    data = "both" if sorted(kinds) == ["8bit", "binary"] else "-".join(kinds)
    out = args.out or result_path("r-scan", data, f"rev{CODER_REVISION}")
    write_result(out, rows)


if __name__ == "__main__":
    sys.exit(main())
