"""Bytes as one K = 256 variable or as 8 binary variables: the coder's cost on the same bytes.

    python3 benchmarks/byte_alphabets.py --out benchmarks/results/byte-alphabets.json

Both alphabets code the same windows of held-out text with the oracle model of each (the
closed-form Bayes-optimal receiver for independent variables with known marginals: for K = 256
the byte frequencies of the text, for 8 x K = 2 the frequency of each bit), through the same
chain coder (float arithmetic, revision 5: the portable arithmetic covers K = 2 only), so the
network's cost is left out and what differs is the coder's work per byte and step: a
255-dimensional statistic per byte and step against 8 one-dimensional ones. The two oracles are
different models, so their sizes are shown, not compared: what a trained network of each
alphabet reaches is byte_alphabet_rates.py's measurement.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from result_names import write_result
from bfn_codec import bytestream
from bfn_codec.models import OracleModel, make_flow


def run(name, items, model, steps):
    """Code ``items`` onto a large scratch stack with the chain alone: the time, the net cost in
    bits and the deficit (the bits the chain borrows before bits-back returns them: what its
    LZMA2 seed must hold, driver.encode_chain)."""
    from bfn_codec.driver import AnsCoder

    from bfn_codec.api import chain_coder
    from bfn_codec.coder import DEFAULT_R

    chain = chain_coder(model, 5, steps, DEFAULT_R, 1.0)
    flat = items.reshape(len(items), -1).astype(np.int64)
    scratch = AnsCoder(np.full(1 << 24, 0x9E3779B9, dtype=np.uint32), seal=True)
    before = scratch.num_valid_bits()
    t0 = time.perf_counter()
    low = chain.encode(scratch, flat)
    seconds = time.perf_counter() - t0
    after = scratch.num_valid_bits()
    n_bytes = int(items.shape[0] * 256)
    return {"alphabet": name, "bytes": n_bytes, "windows": len(items), "net_bits_per_byte": (after - before) / n_bytes,
            "deficit_bits_per_window": (before - low) / len(items), "encode_s": seconds,
            "chain_encode_bytes_per_s": n_bytes / seconds}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--text", default="/usr/share/info/coreutils.info.gz")
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", default="benchmarks/results/byte-alphabets.json")
    args = ap.parse_args()
    import gzip

    raw = Path(args.text).read_bytes()
    raw = gzip.decompress(raw) if args.text.endswith(".gz") else raw
    data = raw[:args.windows * 256]
    values = np.frombuffer(data, np.uint8)
    # K = 256: one variable per byte, items of 256 bytes as (1, 16, 16)
    counts = np.bincount(values, minlength=256) + 0.5
    flow256 = make_flow({"data_type": "discrete", "K": 256})
    oracle256 = OracleModel(flow256, np.tile(counts / counts.sum(), (256, 1)), shape=(1, 16, 16))
    items256 = values.reshape(-1, 1, 16, 16)
    # 8 x K = 2: bytestream's windows, each bit position's frequency
    items2 = bytestream.to_items(data)
    p1 = (items2.mean(0).reshape(-1) * len(items2) + 0.5) / (len(items2) + 1)
    flow2 = make_flow({"data_type": "discrete", "K": 2})
    oracle2 = OracleModel(flow2, np.stack([1 - p1, p1], 1), shape=bytestream.ITEM_SHAPE)
    rows = [run("K=256", items256, oracle256, args.steps), run("8 x K=2", items2, oracle2, args.steps)]
    for r in rows:
        print(f"{r['alphabet']:>8}: {r['bytes']:,} bytes, chain encode {r['chain_encode_bytes_per_s']:,.0f} B/s, "
              f"net {r['net_bits_per_byte']:.3f} bits/byte (its oracle), the seed must hold "
              f"{r['deficit_bits_per_window']:,.0f} bits per window")
    ratio = rows[1]["chain_encode_bytes_per_s"] / rows[0]["chain_encode_bytes_per_s"]
    print(f"8 x K=2 encodes {ratio:.1f}x as fast as K=256 (n = {args.steps}, oracle models, no network)")
    out = {"command": "python3 benchmarks/byte_alphabets.py " + " ".join(
        f"--{k} {v}" for k, v in vars(args).items() if k != "out"), "steps": args.steps, "rows": rows,
        "speed_ratio_binary_over_k256": ratio}
    write_result(args.out, out)


if __name__ == "__main__":
    main()
