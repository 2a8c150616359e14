"""One network call against batch size and torch threads: why --jobs N gains little over one process on few cores.

    python3 benchmarks/thread_scaling.py

The chain calls the network n + 1 times per batch, on B items at once (the ramp makes B grow from
1 with the bits on the stack), so its speed is the seconds of one call divided by B. For each
bundled model (portable form, what compress codes with by default) and each thread count, one
call is timed at batch sizes 1 to 128 (best of ``--repeats`` after a warm-up). Comparing threads
1 and 2 at the same B gives the speed-up torch's own threads already give one process: the
ceiling of ``compress --jobs 2`` (two processes of one thread) over the default single process
(``--threads`` = all cores) is 2 / that speed-up. Writes
results/thread-scaling-both-<binary weights8>-<8-bit weights8>.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, weights8, write_result  # noqa: E402

from bfn_codec.api import chain_coder, codec_settings  # noqa: E402
from bfn_codec.environment import PORTABLE_REVISION  # noqa: E402
from bfn_codec.models import load_model, portable_model  # noqa: E402


def call_seconds(chain, B: int, repeats: int) -> float:
    """Seconds of one network call on B items, best of ``repeats`` after a warm-up call
    (allocations, kernel choice)."""
    chain.network_call_seconds(B)
    return min(chain.network_call_seconds(B) for _ in range(repeats))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64, 128])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    res = {"cpus": os.cpu_count(), "repeats": args.repeats, "models": {}}
    shas = []
    for name in ("fmnist-binary", "fmnist"):
        model = load_model(name)
        shas.append(model.weights_sha256)
        steps, r, grid_power = codec_settings(model, None, None, None)
        chain = chain_coder(portable_model(model), PORTABLE_REVISION, steps, r, grid_power)
        rows = []
        for threads in args.threads:
            torch.set_num_threads(threads)
            for B in args.batches:
                s = call_seconds(chain, B, args.repeats)
                rows.append({"threads": threads, "batch": B, "ms_per_call": 1e3 * s, "ms_per_item": 1e3 * s / B})
                print(name, rows[-1], flush=True)
        one = {row["batch"]: row["ms_per_item"] for row in rows if row["threads"] == args.threads[0]}
        speedup = {f"{row['threads']}_threads_at_{row['batch']}": one[row["batch"]] / row["ms_per_item"]
                   for row in rows if row["threads"] != args.threads[0]}
        res["models"][name] = {"model_sha256": model.weights_sha256, "steps": steps, "calls": rows,
                               "speedup_over_first_thread_count": speedup}
    out = args.out or result_path("thread-scaling", "both", *(weights8(s) for s in shas))
    write_result(out, res)


if __name__ == "__main__":
    main()
