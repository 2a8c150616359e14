"""How many table entries the 8-bit coder's windows of bins hold, per batch against per pixel.

    python3 benchmarks/window_widths.py --limit 64     # -> results/window-widths-8bit-<w8>.json

A discretised model's receiver weights are coded on a window of bins around each pixel's output
mean, as wide as the call's widest pixel needs (WINDOW_Z standard deviations; discretised.py
``output_window_exact``). This codes the first test images portably with the bundled 8-bit
model and counts, over every step of every batch, the entries of those windows against the
entries that windows sized per pixel (the same rule on each pixel's own sigma) would hold:
the most a per-pixel window (a new arithmetic revision) could take off the bin masses,
posteriors and kept tables, whose cost is proportional to the entries. Early steps, where
sigma spans the whole range, need all 256 bins for every pixel.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, weights8, write_result  # noqa: E402

from bfn_codec import discretised, exactmath  # noqa: E402
from bfn_codec.api import compress_with_stats  # noqa: E402
from bfn_codec.coder import WINDOW_Z  # noqa: E402
from bfn_codec.data import load_fmnist  # noqa: E402
from bfn_codec.models import load_model  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=64, help="test images (the first N)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    model = load_model("fmnist")
    x = load_fmnist("test")[: args.limit]
    calls = []
    original = discretised.DiscretisedBFN.output_window_exact

    def counting(self, params, S, t, z_max=None):
        lo, probs = original(self, params, S, t, z_max)
        if z_max is not None and t >= discretised.T_MIN:
            # the pixel's own sigma_x, as output_window_exact forms it, and its own window
            gamma, _ = self._gamma_beta_exact(t)
            scale = math.sqrt((1.0 - max(gamma, 1e-30)) / max(gamma, 1e-30))
            sigma = np.clip(scale * exactmath.exp(np.clip(params[..., 1], -10.0, 10.0)),
                            discretised.SIGMA_MIN, discretised.SIGMA_MAX)
            own = np.minimum(self.K, 2 * (np.ceil(z_max * sigma * self.K / 2.0) + 1) + 1)
            calls.append((float(t), int(probs.shape[-1]), int(sigma.size), float(own.sum())))
        elif z_max is not None:  # before T_MIN: the uniform start, every bin for every pixel
            calls.append((float(t), int(probs.shape[-1]), int(probs[..., 0].size), float(probs[..., 0].size * self.K)))
        return lo, probs

    discretised.DiscretisedBFN.output_window_exact = counting
    try:
        blob, _ = compress_with_stats(x, model, mode="bfn", portable=True)
    finally:
        discretised.DiscretisedBFN.output_window_exact = original
    batch = sum(W * n for _, W, n, _ in calls)
    pixel = sum(own for *_, own in calls)
    full = sum(n for _, W, n, _ in calls if W == model.flow.K)
    res = {"model": "fmnist", "model_sha256": model.weights_sha256, "images": len(x), "bytes": len(blob),
           "window_z": WINDOW_Z, "calls": len(calls),
           "entries_batch_windows": batch, "entries_pixel_windows": pixel,
           "pixel_over_batch": pixel / batch, "rows_with_full_windows_fraction": full / sum(n for _, _, n, _ in calls)}
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in res.items()})
    path = args.out or result_path("window-widths", "8bit", weights8(model.weights_sha256))
    write_result(path, res)


if __name__ == "__main__":
    main()
