"""What the portable arithmetic (coder revision 6) costs against the float one (revision 5):
the same test images compressed and decompressed with both, in one run, at the model's defaults.

    python3 benchmarks/portable_bench.py --model fmnist-binary --limit 500 --threads 2
    python3 benchmarks/portable_bench.py --model fmnist --limit 200 --threads 2 --numpy-too

Writes results/portable-<data>-<weights8>-<images>.json: per arithmetic the file size, bits per
value, the overhead over the coded trajectories (the whole file minus the seed's bytes, header
and CRC included, against the recorded trajectory cost of the chain items), encode and decode
images/s (and the network's share of the time), plus the ratios portable / float. Both decodes
are verified.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import data_token, result_path, write_result, weights8  # noqa: E402

from bfn_codec import exactmath  # noqa: E402
from bfn_codec.api import compress_with_stats, decompress_with_stats, read_header  # noqa: E402
from bfn_codec.container import read  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.models import load_model, portable_identity, portable_model, with_calibration  # noqa: E402


def run(model, x, portable: bool) -> dict:
    t0 = time.perf_counter()
    blob, enc = compress_with_stats(x, model, mode="bfn", portable=portable)
    t1 = time.perf_counter()
    y, dec = decompress_with_stats(blob, model)
    t2 = time.perf_counter()
    if not np.array_equal(y, x):
        raise SystemExit("round trip failed")
    h = read_header(blob)
    chain_values = (len(x) - h.seed_items) * x[0].size
    chain_bits = 8 * (len(blob) - h.seed_bytes)
    return {"coder_revision": h.coder_revision, "bytes": len(blob), "payload_sha256": hashlib.sha256(read(blob)[1]).hexdigest(), "bits_per_value": 8 * len(blob) / x.size,
            "overhead_vs_trajectory_percent": 100.0 * (chain_bits / h.trajectory_bits - 1.0) if h.trajectory_bits else None,
            "chain_values": chain_values, "seed_items": h.seed_items,
            "encode_seconds": t1 - t0, "decode_seconds": t2 - t1,
            "encode_images_per_s": len(x) / (t1 - t0), "decode_images_per_s": len(x) / (t2 - t1),
            "encode_network_seconds": enc.get("network_seconds"), "decode_network_seconds": dec.get("network_seconds")}


def model_and_test_images(doc: str, limit: int, argv=None, extra=None):
    """The options both portable benchmarks share (--model, --limit, --threads, --out, plus
    ``extra(parser)``), parsed; then (args, the bundled model, its first ``--limit`` test images)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--model", default="fmnist-binary", choices=["fmnist-binary", "fmnist"])
    ap.add_argument("--limit", type=int, default=limit, help="test images (the first N)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    if extra:
        extra(ap)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = load_fmnist("test")[: args.limit]
    return args, load_model(args.model), binarise(x) if args.model == "fmnist-binary" else x


def main(argv=None):
    def options(ap):
        ap.add_argument("--earlier", action="store_true", help="also code with the model's earlier integer "
                        "calibrations (config.json integer_earlier), in the same run")
        ap.add_argument("--numpy-too", action="store_true", help="also code portably with the numpy originals "
                        "of the compiled twins (exactmath.numpy_only), in the same run: same bytes, their speed")

    args, model, x = model_and_test_images(__doc__, 200, argv, extra=options)
    res = {"model": args.model, "model_sha256": model.weights_sha256, "images": len(x), "threads": args.threads,
           "integer": {k: model.integer[k] for k in ("weight_bits", "act_bits")},
           "compiled_twins": exactmath.compiled("exp") is not None,
           # the integer network's fused CPU path (integer_net._FusedOps) in the portable runs
           "fused_network": portable_model(model).inet._fused(torch.zeros(1)),
           # the kept tables as one compiled pass per row into per-group tables (kernels.kept_tables)
           "fused_kept_tables": exactmath.compiled("kept_tables") is not None}
    # from this code on, the fused network stores its activations channels-last, and the tables'
    # producers hand the kept tables their rows' sums and counts (portable.KeptSummary)
    res["channels_last_network"] = res["fused_network"]
    res["kept_summaries"] = res["fused_kept_tables"]
    # and runs an item's convolution as one float32 piece where its activations' bound allows
    # (integer_net._one_piece)
    res["one_piece_items"] = res["fused_network"]
    for name, portable in (("float", False), ("portable", True)):
        res[name] = run(model, x, portable)
        print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in res[name].items()}, flush=True)
    if args.numpy_too:
        with exactmath.numpy_only():
            res["portable_numpy"] = run(model, x, True)
        if res["portable_numpy"]["payload_sha256"] != res["portable"]["payload_sha256"]:
            raise SystemExit("the numpy originals wrote a different stream than the compiled twins")
        print("portable_numpy", {k: round(v, 4) if isinstance(v, float) else v for k, v in res["portable_numpy"].items()})
    if args.earlier:
        res["portable_earlier"] = []
        for cal in model.integer_earlier:
            other = with_calibration(model, portable_identity(model.weights_sha256, cal))
            row = {"integer": {k: cal[k] for k in ("weight_bits", "act_bits")}, **run(other, x, True)}
            res["portable_earlier"].append(row)
            print("earlier", {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    f, p = res["float"], res["portable"]
    res["ratios_portable_over_float"] = {
        "bytes": p["bytes"] / f["bytes"], "encode_speed": p["encode_images_per_s"] / f["encode_images_per_s"],
        "decode_speed": p["decode_images_per_s"] / f["decode_images_per_s"]}
    print(res["ratios_portable_over_float"])
    out = args.out or result_path("portable", data_token(args.model), weights8(model.weights_sha256), len(x))
    write_result(out, res)


if __name__ == "__main__":
    main()
