"""What integer inference costs in rate: post-training quantisation of a bundled model's U-Net
(bfn_codec/integer_net.py) at several weight / activation bit widths, L^n + L^r on test images
paired with the float network (same images, same message noise), on the codec's own grid.

    python3 benchmarks/integer_ptq.py --model fmnist-binary --limit 200 --bits 10,12 8,12 8,10 8,8

Forward times: one pass over a batch of calibration inputs (--speed-batches, median of 7 after a
warm-up) with each kernel path, "auto" being the one the codec runs (float32 pieces for large 3x3
convolutions: as many as the weights' row sums and the activation width need, ``pieces``), beside
the float network on the same batch.

Calibration: the network inputs of every step of 64 *training* images' trajectories (seed 1).
Writes results/integer-ptq-<data>-<weights8>.json.
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

from bfn_codec.api import codec_settings, power_times  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.evaluate import per_item_total_bits  # noqa: E402
from bfn_codec.integer_net import IntegerUNet  # noqa: E402
from bfn_codec.models import load_model  # noqa: E402


def _forward_seconds(net, x, t, repeats: int = 7) -> float:
    """Median wall time of one forward pass (after a warm-up)."""
    with torch.inference_mode():
        net(x, t)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x, t)
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


class _Recorder(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.seen = net, []

    def forward(self, x, t):
        self.seen.append((x.clone(), t.clone()))
        return self.net(x, t)


def calibration_inputs(model, train: np.ndarray, steps: int, times) -> list:
    """The network's (x, t) inputs at every step of one trajectory per training item (seed 1)."""
    net = model.net
    model.net = _Recorder(net)
    try:
        per_item_total_bits(model, train, steps, len(train), 1, times=times, samples=1)
        return model.net.seen
    finally:
        model.net = net


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fmnist-binary")
    ap.add_argument("--limit", type=int, default=200, help="test images")
    ap.add_argument("--bits", nargs="+", default=["10,12", "8,12", "8,10", "8,8"],
                    help="weight_bits,act_bits pairs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--speed-batches", default="64", help="batch sizes of the forward timings, comma-separated")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    prep = binarise if args.model == "fmnist-binary" else (lambda a: a)
    test = prep(load_fmnist("test")[: args.limit]).reshape(args.limit, -1)
    train = prep(load_fmnist("train")[:64]).reshape(64, -1)
    steps, _, p = codec_settings(model, None, None, None)
    times = power_times(steps, p)
    net = model.net
    calibration = calibration_inputs(model, train, steps, times)
    t0 = time.perf_counter()
    ref = per_item_total_bits(model, test, steps, 50, 0, times=times)
    float_seconds = time.perf_counter() - t0
    D = test.shape[1]
    # forward-pass times on batches of network inputs from the calibration trajectories
    inputs = torch.cat([x for x, _ in calibration])
    batches = [int(b) for b in args.speed_batches.split(",")]
    speed = {"batches": batches,
             "float_seconds": [_forward_seconds(net, inputs[:b], torch.full((b,), 0.5)) for b in batches]}
    rows = []
    for spec in args.bits:
        wb, ab = (int(v) for v in spec.split(","))
        inet = IntegerUNet.from_float(net, calibration, act_bits=ab, weight_bits=wb)
        forward = {}
        for kernel in ("auto", "conv2d", "float32"):
            inet.kernel = kernel
            forward[kernel] = [_forward_seconds(inet, inputs[:b].double(), torch.full((b,), 0.5, dtype=torch.float64))
                               for b in batches]
        inet.kernel = "auto"
        pieces = sorted({plan[3] for plan in inet._conv_plans.values()})
        inet.kernel = "conv2d"
        model.net = inet
        t0 = time.perf_counter()
        q = per_item_total_bits(model, test, steps, 50, 0, times=times)
        seconds = time.perf_counter() - t0
        model.net = net
        diff = q - ref
        rows.append({"weight_bits": wb, "act_bits": ab, "bits_per_dim": float(q.sum() / q.size / D),
                     "change_percent": float(100 * (q.sum() / ref.sum() - 1)),
                     "paired_stderr_percent": float(100 * diff.std(ddof=1) / np.sqrt(len(q)) / ref.mean()),
                     "seconds": seconds, "forward_seconds": forward, "auto_pieces": pieces})
        print(json.dumps(rows[-1]), flush=True)
    res = {"model": args.model, "model_sha256": model.weights_sha256, "images": args.limit, "steps": steps,
           "grid_power": p, "calibration": "network inputs of all steps of 64 training images (seed 1)",
           "float_bits_per_dim": float(ref.sum() / ref.size / D), "float_seconds": float_seconds,
           "threads": args.threads, "kernels": "losses with float64 conv2d on integers; forward_seconds per "
           "batch of `forward.batches` with the codec's auto kernel choice, float64 conv2d and float32 kernels on "
           "activations split by the worst case of the weight width (the same integers)", "forward": speed, "rows": rows}
    out = args.out or result_path("integer-ptq", data_token(args.model), weights8(model.weights_sha256))
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=2))
    write_result(out, res)


if __name__ == "__main__":
    main()
