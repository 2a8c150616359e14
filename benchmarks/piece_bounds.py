"""How often the integer network's convolutions run an item as one float32 piece, on the
activations of real coding steps: the first test images compressed portably at the defaults,
every convolution call of the fused path observed.

    python3 benchmarks/piece_bounds.py --model fmnist --items 32

An item may run as one piece when a bound on every partial sum of its convolution stays below
2^24 (docs/design.md §15). Per convolution, the share of items that pass each bound, and over all
calls the float32 convolution work (multiply-adds, relative to the worst-case pieces of
``integer_net._pieces`` for every item):

* ``cauchy_schwarz`` (the codec's, ``integer_net._one_piece``): max_o ||w_o||^2 times the item's
  largest windowed ||q_patch||^2 below 2^48;
* ``per_channel``: max_o sum_c ||w_oc||_1 max |q_c| below 2^24 (per-channel maxima of |q|);
* ``halves``: Cauchy-Schwarz per half of the input channels, summed (max over o).

The counts of the codec's bound come from its own decisions; the others are evaluated in
float64 on the same inputs (a measure only). Writes results/piece-bounds-<data>-<weights8>.json.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import threading

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import data_token, result_path, write_result, weights8  # noqa: E402

from bfn_codec import integer_net  # noqa: E402
from bfn_codec.api import compress_with_stats  # noqa: E402
from bfn_codec.data import binarise, load_fmnist  # noqa: E402
from bfn_codec.models import load_model  # noqa: E402

BOUNDS = ("cauchy_schwarz", "per_channel", "halves")


def other_bounds(wq: torch.Tensor, q: torch.Tensor, padding) -> dict:
    """Per item, the two other bounds on the partial sums (float64, a measure only)."""
    w, q = wq.double(), q.double()
    C, (kh, kw) = w.shape[1], w.shape[2:]
    box = torch.ones(1, 1, kh, kw, dtype=torch.float64)
    per_channel = (q.abs().flatten(2).amax(2) @ w.abs().sum((2, 3)).T).amax(1)
    h = C // 2
    halves = 0.0
    for part in (slice(0, h), slice(h, C)):
        e = F.conv2d(q[:, part].square().sum(1, keepdim=True), box, padding=padding).flatten(1).amax(1).sqrt()
        halves = halves + e[:, None] * w[:, part].square().flatten(1).sum(1).sqrt()[None]
    return {"per_channel": per_channel < 2 ** 24, "halves": halves.amax(1) < 2 ** 24}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fmnist", choices=["fmnist", "fmnist-binary"])
    ap.add_argument("--items", type=int, default=32, help="test images (the first N)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    x = load_fmnist("test")[:args.items]
    if args.model == "fmnist-binary":
        x = binarise(x)

    layers = collections.defaultdict(collections.Counter)
    work = collections.Counter()
    lock = threading.Lock()
    seen = threading.local()  # the batch's parts run on their own threads, each its own decision
    one_piece, conv_fused = integer_net._one_piece, integer_net.IntegerUNet.conv_fused

    def record_one_piece(*a):
        seen.decided.append(one_piece(*a))
        return seen.decided[-1]

    def observed(self, conv, q, f_in, name, then_add=None):
        seen.decided = decided = []
        out = conv_fused(self, conv, q, f_in, name, then_add)
        wq, _, _, pieces, _, _ = self._conv_plan(conv, f_in, name, q.device)
        if pieces > 1:
            B = q.shape[0]
            Ho, Wo = out.shape[2:]
            macs = Ho * Wo * wq.numel()  # per item and piece
            passed = {"cauchy_schwarz": decided[0] if decided else np.zeros(B, dtype=bool),
                      **{k: v.numpy() for k, v in other_bounds(wq, q, conv.padding).items()}}
            with lock:
                work["worst_case"] += macs * B * pieces
                layers[name]["items"] += B
                for k, ok in passed.items():
                    n = int(np.count_nonzero(ok))
                    layers[name][k] += n
                    work[k] += macs * (n + pieces * (B - n))
        return out

    integer_net._one_piece = record_one_piece
    integer_net.IntegerUNet.conv_fused = observed
    try:
        compress_with_stats(x, model, mode="bfn", portable=True)
    finally:
        integer_net._one_piece, integer_net.IntegerUNet.conv_fused = one_piece, conv_fused
    res = {"model": args.model, "model_sha256": model.weights_sha256, "items": len(x), "threads": args.threads,
           "work_vs_worst_case": {k: work[k] / work["worst_case"] for k in BOUNDS},
           "layers": {name: {"items": c["items"], **{k: c[k] / c["items"] for k in BOUNDS}}
                      for name, c in layers.items()}}
    print({k: round(v, 3) for k, v in res["work_vs_worst_case"].items()})
    write_result(args.out or result_path("piece-bounds", data_token(args.model), weights8(model.weights_sha256)), res)


if __name__ == "__main__":
    main()
