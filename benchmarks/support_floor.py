"""Where the coder's per-step overhead comes from (issue #20 item 5): constriction gives every
symbol of a support at least 2^-24, so each push costs about (support size) x 2^-24 nats more
than its ideal and each pop gains as much back. The receiver pushes S_i on a support of about
+-34 bins (its range invariant, docs/design.md §9) while the bridge pops it on +-11, so every
variable pays about 46 x 2^-24 nats per step: a fixed cost that grows with n.

This script measures it with an oracle source (per-pixel Fashion-MNIST marginals, so the ideal is
exactly -log2 pi(x)): exact net chain bits (32 words + log2 state, no header or seed) against the
ideal, at several n, with the receiver supports as planned and capped (--caps; a cap breaks the
range invariant, so a run may fail, and is only a diagnosis), beside the floor cost the plan's
support sizes predict.

    python3 benchmarks/support_floor.py --items 256 --steps 50,200,500 --caps 0,16

Writes results/support-floor-binary-rev<coder revision>.json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from r_scan import oracle_for  # noqa: E402
from result_names import result_path, write_result  # noqa: E402

from bfn_codec.api import power_times  # noqa: E402
from bfn_codec.coder import ChainCoder, RangeError, make_plan  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.driver import AnsCoder, exact_bits  # noqa: E402
from bfn_codec.environment import CODER_REVISION  # noqa: E402

FLOOR = 2.0 ** -24  # constriction's smallest probability per symbol (24-bit precision)


def predicted_floor_bits(plan, D: int) -> float:
    """Per item: sum over steps of (receiver push symbols - bridge pop symbols) x 2^-24 nats,
    minus the final pop's, in bits (the categorical pushes and pops of k, two symbols each, cancel)."""
    pushes = (2 * plan.support_receiver[1:] + 1).sum()
    pops = (2 * plan.support_bridge[2:] + 1).sum() + 2 * plan.support_final + 1
    return D * float(pushes - pops) * FLOOR / math.log(2.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=256)
    ap.add_argument("--steps", default="50,200,500")
    ap.add_argument("--caps", default="0,16", help="receiver support half-widths (0: as planned)")
    ap.add_argument("--r", type=float, default=2.0)
    ap.add_argument("--grid-power", type=float, default=2.0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    model = oracle_for("binary")
    x = binarise(load_fmnist("test")[: args.items]).reshape(args.items, -1).astype(np.int64)
    pi = model.log_pi.exp().numpy()
    ideal = float(-np.log2(pi[np.arange(x.shape[1]), x]).sum())
    rows = []
    for n in map(int, args.steps.split(",")):
        for cap in map(int, args.caps.split(",")):
            plan = make_plan(model.flow, n, args.r, times=power_times(n, args.grid_power))
            planned = int(plan.support_receiver[1:].max())
            if cap:
                plan.support_receiver = np.minimum(plan.support_receiver, cap)
            chain = ChainCoder(model, plan)
            coder = AnsCoder(np.random.default_rng(0).integers(0, 2**32, 1 << 22, dtype=np.uint32), seal=True)
            b0 = exact_bits(coder)
            t0 = time.perf_counter()
            row = {"steps": n, "r": args.r, "grid_power": args.grid_power, "items": args.items,
                   "receiver_support_max": int(plan.support_receiver[1:].max()), "planned_support_max": planned,
                   "bridge_support_max": int(plan.support_bridge[2:].max()) if n > 1 else 0,
                   "ideal_bits_per_item": ideal / args.items,
                   "predicted_floor_bits_per_item": predicted_floor_bits(plan, x.shape[1])}
            try:
                chain.encode(coder, x)
                net = exact_bits(coder) - b0
                row.update(net_bits_per_item=net / args.items,
                           overhead_bits_per_item=(net - ideal) / args.items,
                           overhead_percent=100 * (net / ideal - 1))
            except RangeError as e:
                row["failed"] = str(e)
            row["seconds"] = time.perf_counter() - t0
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = args.out or result_path("support-floor", "binary", f"rev{CODER_REVISION}")
    write_result(out, rows)


if __name__ == "__main__":
    main()
