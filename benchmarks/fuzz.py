"""Longer fuzz harness for the decoder: mutated valid files must end in a FormatError (one line)
or decode to the exact original, never a traceback, crash, hang or different data.

    python3 benchmarks/fuzz.py --cases 100000 --seed 1

Reports cases/s and every failure (with the offending bytes in hex), in
benchmarks/results/fuzz-both-rev<coder revision>.json unless --out says otherwise (both: binary and
8-bit files; the files come from oracle models, so the coder revision stands in for weights;
benchmarks/README.md has the scheme). The file is rewritten every 10,000 cases (partial result).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from fuzzlib import check_one, discretised_sample_files, mutate, sample_files  # noqa: E402
from result_names import record_command, result_path  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="JSON file (default: benchmarks/results/fuzz-both-rev<coder revision>.json)")
    args = ap.parse_args(argv)
    if args.out is None:
        from bfn_codec.environment import CODER_REVISION

        args.out = result_path("fuzz", "both", f"rev{CODER_REVISION}")
    model, samples = sample_files()
    # every third case: an 8-bit file whose receiver weights are coded on windows of bins
    d_model, d_samples = discretised_sample_files()
    pool = [(b, o, model) for b, o in samples] + [(b, o, d_model) for b, o in d_samples]
    rng = np.random.default_rng(args.seed)
    failures, slowest = [], 0.0
    t0 = time.perf_counter()
    for case in range(args.cases):
        blob, original, m = pool[case % len(pool)]
        bad = mutate(blob, rng)
        t = time.perf_counter()
        f = check_one(bad, m, original)
        slowest = max(slowest, time.perf_counter() - t)
        if f is not None:
            failures.append({"case": case, "error": f, "bytes": bad.hex()})
        if (case + 1) % 10000 == 0:
            rate = (case + 1) / (time.perf_counter() - t0)
            print(f"{case + 1} cases, {len(failures)} failures, {rate:.0f} cases/s", flush=True)
            _report(args, case + 1, failures, time.perf_counter() - t0, slowest)  # partial result
    res = _report(args, args.cases, failures, time.perf_counter() - t0, slowest)
    print(json.dumps({k: v for k, v in res.items() if k != "failure_examples"}, indent=2))
    return 1 if failures else 0


def _report(args, cases, failures, elapsed, slowest) -> dict:
    res = {"cases": cases, "of": args.cases, "seed": args.seed, "failures": len(failures),
           "seconds": elapsed, "cases_per_second": cases / elapsed, "slowest_case_seconds": slowest,
           "files": "binary oracle chain + fallback files, 8-bit windowed chain file (every third case)",
           "failure_examples": failures[:20]}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(res, f, indent=2)
        os.replace(tmp, args.out)
        record_command(args.out)
    return res


if __name__ == "__main__":
    sys.exit(main())
