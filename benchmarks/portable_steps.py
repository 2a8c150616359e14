"""The coder's overhead over the coded trajectories against n, for the float (revision 5) and the
portable (revision 6) arithmetic: the same test images encoded at each n, the chain's bits (the
payload without the seed; header and CRC excluded, as `bfn-codec info` counts them) against the
trajectory cost the encoder records. Revision 6 codes the far tails of its Gaussians through an
escape instead of giving each far bin constriction's 2^-24 floor (docs/design.md §15), which
is where revision 5's overhead grew with n (benchmarks/support_floor.py).

    python3 benchmarks/portable_steps.py --model fmnist-binary --limit 96 --steps 25 100 500 --threads 2

Writes results/portable-steps-<data>-<weights8>-<images>.json.
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import data_token, result_path, write_result, weights8  # noqa: E402

from portable_bench import model_and_test_images  # noqa: E402

from bfn_codec.api import compress_with_stats  # noqa: E402
from bfn_codec.container import read  # noqa: E402


def main(argv=None):
    args, model, x = model_and_test_images(
        __doc__, 96, argv, lambda ap: ap.add_argument("--steps", type=int, nargs="+", default=[25, 100, 500]))
    rows = []
    for n in args.steps:
        for name, portable in (("float", False), ("portable", True)):
            t0 = time.perf_counter()
            blob, _ = compress_with_stats(x, model, steps=n, mode="bfn", portable=portable)
            h, payload = read(blob)
            chain_bits = 8 * (len(payload) - h.seed_bytes)
            row = {"steps": n, "arithmetic": name, "coder_revision": h.coder_revision, "seed_items": h.seed_items,
                   "chain_bits": chain_bits, "trajectory_bits": h.trajectory_bits,
                   "overhead_percent": 100.0 * (chain_bits / h.trajectory_bits - 1.0),
                   "encode_seconds": time.perf_counter() - t0}
            rows.append(row)
            print(row, flush=True)
    out = args.out or result_path("portable-steps", data_token(args.model), weights8(model.weights_sha256), len(x))
    write_result(out, {"model": args.model, "model_sha256": model.weights_sha256, "images": len(x),
                       "threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
