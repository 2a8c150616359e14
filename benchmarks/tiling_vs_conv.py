#!/usr/bin/env python3
"""Tiles or one fully convolutional pass: how a model trained on 28x28 images should code a large one.

The same network (the bundled 8-bit U-Net, float, default n and time grid) sees each large image
either as 28x28 tiles, each an item (what bfn-codec does: images.to_tiles), or as one item of the
whole image (the U-Net is convolutional, so it runs on any size that its two 2x reductions
divide). Measured on the same pixels, with the same estimator (L^n + L^r, every step, two message
draws; per_item_total_bits):

* ``fmnist``: mosaics of 4 x 4 Fashion-MNIST test images (112 x 112), where tiles are exactly
  the training images;
* ``photos``: the 224 x 224 centre of each 256 x 256 grey photograph of photo_data.py (8 x 8
  tiles, no padding).

Also the network's time per pixel for one call both ways, and the size of the largest table a
decoder holds per item ([D, K] float64 for D pixels): what memory grows with.

    python3 benchmarks/tiling_vs_conv.py      # -> results/tiling-vs-conv-8bit-<weights8>.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from result_names import result_path, weights8, write_result  # noqa: E402

from bfn_codec.api import codec_settings  # noqa: E402
from bfn_codec.chain import power_times  # noqa: E402
from bfn_codec.data import load_fmnist  # noqa: E402
from bfn_codec.evaluate import per_item_total_bits  # noqa: E402
from bfn_codec.images import to_tiles  # noqa: E402
from bfn_codec.models import NetworkModel, load_model  # noqa: E402


def whole_image_model(model, height, width):
    """The same network and flow, items of one whole height x width image."""
    return NetworkModel(model.flow, model.net, (1, height, width), model.network_config, model.name, model.info)


def compare(model, images: np.ndarray, steps: int, times, seed: int) -> dict:
    """images [N, H, W] uint8 (H, W multiples of 28)."""
    N, H, W = images.shape
    tiles = to_tiles(images[..., None], (1, 28, 28))
    tiled = per_item_total_bits(model, tiles.reshape(len(tiles), -1), steps, batch_size=64, seed=seed, times=times)
    whole = per_item_total_bits(whole_image_model(model, H, W), images.reshape(N, -1), steps, batch_size=1,
                                seed=seed, times=times)
    per_image_tiled = tiled.reshape(N, -1).sum(1)
    diff = (whole - per_image_tiled) / (H * W)
    return {"images": N, "height": H, "width": W,
            "tiles_bits_per_pixel": float(tiled.sum() / images.size),
            "whole_bits_per_pixel": float(whole.sum() / images.size),
            "whole_minus_tiles_bits_per_pixel": float(diff.mean()),
            "stderr": float(diff.std(ddof=1) / np.sqrt(N)) if N > 1 else None}


def call_seconds(model, B: int, H: int, W: int, repeats: int = 5) -> float:
    m = whole_image_model(model, H, W)
    S = torch.zeros(B, H * W, model.flow.stat_dim, dtype=torch.float64)  # the prior statistic
    t = torch.full((B,), 0.5, dtype=torch.float64)
    with torch.inference_mode():
        m.log_probs(S, t)
        start = time.perf_counter()
        for _ in range(repeats):
            m.log_probs(S, t)
    return (time.perf_counter() - start) / repeats


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="fmnist")
    ap.add_argument("--photos", default="runs/photos/eval")
    ap.add_argument("--mosaics", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    steps, _, grid_power = codec_settings(model)
    times = power_times(steps, grid_power)
    fm = load_fmnist("test")[:16 * args.mosaics].reshape(args.mosaics, 4, 4, 28, 28)
    mosaics = fm.transpose(0, 1, 3, 2, 4).reshape(args.mosaics, 112, 112)
    result = {"model": args.model, "steps": steps, "grid_power": grid_power, "threads": args.threads,
              "fmnist": compare(model, mosaics, steps, times, args.seed)}
    print("fmnist", result["fmnist"], flush=True)
    photos = sorted(Path(args.photos).glob("*-256x256-grey.png"))
    if photos:
        crops = np.stack([np.asarray(Image.open(p))[16:240, 16:240] for p in photos])
        result["photos"] = compare(model, crops, steps, times, args.seed)
        print("photos", result["photos"], flush=True)
    # one call on the same 50,176 pixels: 64 tiles against one 224 x 224 image
    result["call_seconds"] = {"64 tiles of 28x28": call_seconds(model, 64, 28, 28),
                              "one 224x224 image": call_seconds(model, 1, 224, 224)}
    result["table_bytes_per_item"] = {"28x28 tile": 28 * 28 * 256 * 8, "1024x1024 image": 1024 * 1024 * 256 * 8}
    print(result["call_seconds"])
    write_result(args.out or result_path("tiling-vs-conv", "8bit", weights8(model.weights_sha256)), result)


if __name__ == "__main__":
    main()
