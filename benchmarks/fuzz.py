"""Longer fuzz harness for the decoder: mutated valid files must end in a FormatError (one line)
or decode to the exact original, never a traceback, crash, hang or different data.

    python benchmarks/fuzz.py --cases 100000 --seed 1 --out benchmarks/results/fuzz.json

Reports cases/s and every failure (with the offending bytes in hex).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fuzzlib import check_one, mutate, sample_files  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    model, samples = sample_files()
    rng = np.random.default_rng(args.seed)
    failures, slowest = [], 0.0
    t0 = time.perf_counter()
    for case in range(args.cases):
        blob, original = samples[case % len(samples)]
        bad = mutate(blob, rng)
        t = time.perf_counter()
        f = check_one(bad, model, original)
        slowest = max(slowest, time.perf_counter() - t)
        if f is not None:
            failures.append({"case": case, "error": f, "bytes": bad.hex()})
        if (case + 1) % 10000 == 0:
            rate = (case + 1) / (time.perf_counter() - t0)
            print(f"{case + 1} cases, {len(failures)} failures, {rate:.0f} cases/s", flush=True)
    elapsed = time.perf_counter() - t0
    res = {"cases": args.cases, "seed": args.seed, "failures": len(failures), "seconds": elapsed,
           "cases_per_second": args.cases / elapsed, "slowest_case_seconds": slowest,
           "failure_examples": failures[:20]}
    print(json.dumps({k: v for k, v in res.items() if k != "failure_examples"}, indent=2))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
