#!/usr/bin/env python3
"""Peak memory and time of large images through the BFN stream, each side in its own process.

A 1024 x 1024 RGB and a 2048 x 2048 grey photograph (lomiri-wallpapers-16.04, as photo_data.py:
Dragonfly reduced 3x, centre 1024 x 1024; Bridge at full size, centre 2048 x 2048, grey) are
compressed with ``bfn-codec compress --mode bfn`` (the chain over every tile, the probe of auto
mode skipped) and decompressed, each command a child process whose peak RSS the kernel reports
(wait4). Memory follows the coder's batch (at most --batch-size tiles), not the image, so a small
n measures it as well as the default; time grows with n + 1 and is reported per n.

    python3 benchmarks/image_memory.py            # -> results/image-memory-8bit-<weights8>-n<steps>.json
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from result_names import result_path, weights8, write_result  # noqa: E402

BACKGROUNDS = Path("/usr/share/backgrounds")


def centre(img: Image.Image, size: int) -> Image.Image:
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return img.crop((left, top, left + size, top + size))


def run(args: list[str]) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stderr) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err}")
    return time.perf_counter() - start, usage.ru_maxrss / 1024, err


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--cases", nargs="*", default=None, choices=["rgb", "grey"],
                    help="only these cases (default both; two runs can share the machine's cores)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    cases = {
        "1024x1024 RGB": lambda: centre(Image.open(BACKGROUNDS / "Dragonfly_by_Bolly.jpg").convert("RGB").reduce(3), 1024),
        "2048x2048 grey": lambda: centre(Image.open(BACKGROUNDS / "Bridge_by_Sander_Klootwijk.jpg").convert("L"), 2048),
    }
    from bfn_codec.api import ENCODE_TABLE_ENTRIES
    from bfn_codec.models import load_model

    if args.cases:
        cases = {name: make for name, make in cases.items() if name.split()[-1].lower() in args.cases}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in cases.items():
            src = Path(tmp) / "image.png"
            img = make()
            img.save(src)
            pixels = np.asarray(img)
            cli = [sys.executable, "-m", "bfn_codec"]
            common = ["--threads", str(args.threads), "-q", "-f"]
            enc_s, enc_mb, _ = run([*cli, "compress", str(src), "-o", f"{src}.bfn", "--mode", "bfn", "-n",
                                    str(args.steps), "--batch-size", str(args.batch_size), *common])
            dec_s, dec_mb, _ = run([*cli, "decompress", f"{src}.bfn", "-o", f"{tmp}/back.png", *common])
            assert np.array_equal(np.asarray(Image.open(f"{tmp}/back.png")), pixels)
            size = os.path.getsize(f"{src}.bfn")
            rows[name] = {"values": int(pixels.size), "bytes": size, "bits_per_value": 8 * size / pixels.size,
                          "encode_s": enc_s, "decode_s": dec_s, "encode_peak_rss_mb": enc_mb,
                          "decode_peak_rss_mb": dec_mb, "encode_values_per_s": pixels.size / enc_s,
                          "decode_values_per_s": pixels.size / dec_s}
            print(name, rows[name], flush=True)
    model = load_model("fmnist")
    write_result(args.out or result_path("image-memory", "8bit", weights8(model.weights_sha256), f"n{args.steps}"),
                 {"steps": args.steps, "threads": args.threads, "batch_size": args.batch_size,
                  # the batch the encoder used: --batch-size under its table cap (api.ENCODE_TABLE_ENTRIES)
                  "effective_batch": min(args.batch_size, ENCODE_TABLE_ENTRIES // (28 * 28 * 256)),
                  "cases": rows})


if __name__ == "__main__":
    main()
