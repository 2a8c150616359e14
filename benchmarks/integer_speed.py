"""The integer network's forward pass against the float network's, per batch size, in one run:
the bundled model's own calibration (config.json ``integer``), the network inputs of real
coding steps, and each way the integer network can run on the CPU with the same integers.

    python3 benchmarks/integer_speed.py --model fmnist-binary --batches 1,2,3,4,8,16,32,64
    python3 benchmarks/integer_speed.py --model fmnist --batches 1,2,3,4,8,16,32,64

Ways: ``float`` (the float network, float32), ``fused`` (the default on the CPU: float32
integers, compiled elementwise kernels, batch parts per torch thread) and ``torch_steps`` (the
same integers by torch's float64 steps, as without numba or with BFN_CODEC_KERNELS=numpy).
Each time is the median of 7 passes after a warm-up, over 7 distinct times t (the time layers
are cached per t, as in the coder); the script checks that both integer ways give equal outputs.
Batch sizes: the coder's ramp (docs/design.md §11) codes short files in batches of 1-16 items.
Writes results/integer-speed-<data>-<weights8>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import data_token, result_path, write_result, weights8  # noqa: E402

from bfn_codec import exactmath  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.models import load_model, portable_model  # noqa: E402

TIMES = (0.02, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999)


def network_inputs(model, x: np.ndarray, t: float) -> torch.Tensor:
    """The integer network's input at time t for items x [B, D]: the flow's exact input
    parameters for one sender sample S ~ q(S | x; beta(t)) per item (seed 0)."""
    flow = model.flow
    g = torch.Generator().manual_seed(0)
    S = flow.sample_stat(torch.from_numpy(x).long(), flow.beta(torch.full((len(x),), t, dtype=torch.float64)), g)
    feats = flow.net_input_exact(S.double().numpy(), t)
    C, H, W = model.shape
    B, Fdim = feats.shape[0], feats.shape[-1]
    return torch.from_numpy(np.ascontiguousarray(feats)).reshape(B, C, H, W, Fdim).permute(0, 1, 4, 2, 3) \
        .reshape(B, C * Fdim, H, W)


def seconds_per_pass(fn, inputs) -> tuple[float, list]:
    """Median over 7 rounds of the mean time of one pass per time t, and the last outputs."""
    with torch.inference_mode():
        outs = [fn(x, t) for x, t in inputs]  # warm-up (compilation, caches)
        rounds = []
        for _ in range(7):
            t0 = time.perf_counter()
            outs = [fn(x, t) for x, t in inputs]
            rounds.append((time.perf_counter() - t0) / len(inputs))
    return float(np.median(rounds)), outs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fmnist-binary", choices=["fmnist-binary", "fmnist"])
    ap.add_argument("--batches", default="1,2,3,4,8,16,32,64")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    exactmath.set_threads(args.threads)
    model = load_model(args.model)
    pm = portable_model(model)
    prep = binarise if args.model == "fmnist-binary" else (lambda a: a)
    batches = [int(b) for b in args.batches.split(",")]
    test = prep(load_fmnist("test")[: max(batches)]).reshape(max(batches), -1)
    rows = []
    for B in batches:
        inputs = [(network_inputs(model, test[:B], t), torch.full((B,), t, dtype=torch.float64)) for t in TIMES]
        f_float, _ = seconds_per_pass(lambda x, t: model.net(x.float(), t.float()), inputs)
        f_fused, fused = seconds_per_pass(pm.inet, inputs)
        with exactmath.numpy_only():
            f_torch, steps = seconds_per_pass(pm.inet, inputs)
        if not all(torch.equal(a, b) for a, b in zip(fused, steps)):
            raise SystemExit(f"batch {B}: the fused path's outputs differ from the torch steps'")
        rows.append({"batch": B, "float_ms_per_item": 1e3 * f_float / B, "fused_ms_per_item": 1e3 * f_fused / B,
                     "torch_steps_ms_per_item": 1e3 * f_torch / B, "fused_over_float": f_fused / f_float,
                     "torch_steps_over_float": f_torch / f_float})
        print(json.dumps(rows[-1]), flush=True)
    res = {"model": args.model, "model_sha256": model.weights_sha256, "threads": args.threads,
           "integer": {k: model.integer[k] for k in ("weight_bits", "act_bits")},
           "times": list(TIMES), "rows": rows}
    out = args.out or result_path("integer-speed", data_token(args.model), weights8(model.weights_sha256))
    write_result(out, res)


if __name__ == "__main__":
    main()
