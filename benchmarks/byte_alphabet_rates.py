"""Bytes as one K = 256 variable or as 8 binary variables: the rate of a network trained on each,
same data, same trunk, same wall-clock budget (issue #21 asks for both sides before choosing;
byte_alphabets.py measures the coder's side with oracle models).

    python3 benchmarks/byte_alphabet_rates.py --minutes 12 --threads 1      # both, one after the other
    python3 benchmarks/byte_alphabet_rates.py --evaluate-only                # the trained models again

(``--alphabets byte256`` runs one; each run merges its rows into the same result file). Both train
from scratch with L^inf on the byte model's training split (runs/text/train, written by
text_corpus.py) and the bundled byte model's U-Net trunk:

* ``binary``: what bfn-codec codes, 8 channels of bits per window (8, 4, 64), K = 2, beta(1) = 9;
* ``byte256``: one K = 256 variable per byte at the same grid positions (1, 4, 64), beta(1) =
  0.5625 (DiscreteBFN's default for K > 2, the paper's text8 value; not tuned for K = 256).

Each is then evaluated on the first --eval-windows whole windows of the held-out coreutils manual
(never trained on): L^inf and L^n + L^r at the byte codec's n and grid, in bits per byte, per
window, and the two alphabets' difference window by window. A short run measures which
parametrisation learns faster on CPU cores, not where either ends.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

from bfn_codec import bytestream
from bfn_codec.chain import power_times
from bfn_codec.data import Dataset, load_dataset, validation_split
from bfn_codec.models import load_model
from bfn_codec.train import train

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, write_result  # noqa: E402

HELD_OUT = "runs/text/heldout/usr_share_info_coreutils.info"
FLOWS = {"binary": {"data_type": "discrete", "K": 2, "beta1": 9.0},
         "byte256": {"data_type": "discrete", "K": 256, "beta1": 0.5625}}


def byte_items(bit_items: np.ndarray) -> np.ndarray:
    """[N, 8, 4, 64] bit windows -> [N, 1, 4, 64] byte values at the same grid positions."""
    n = len(bit_items)
    values = np.frombuffer(bytestream.from_items(bit_items, n * bytestream.WINDOW), dtype=np.uint8)
    return bytestream.on_grid(values.reshape(n, 1, bytestream.WINDOW)).reshape(n, 1, 4, 64)


def as_alphabet(data: Dataset, alphabet: str) -> Dataset:
    if alphabet == "binary":
        return data
    return Dataset(data.name + ":byte256", byte_items(data.images), "discrete", 256)


def mean_stderr(v: np.ndarray) -> tuple[float, float]:
    return float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v)))


def per_window_bits(model, items: np.ndarray, times, repeats: int, linf_repeats: int, seed: int,
                    batch_size: int):
    """Per window, in bits per byte: L^inf averaged over ``linf_repeats`` draws of t, and L^n + L^r
    over ``repeats`` draws (one random step of the grid ``times``, two message samples each).
    Both alphabets see the same windows, so their differences per window are paired."""
    flow = model.flow
    n = len(times) - 1
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(items.reshape(len(items), -1).astype(np.int64))
    linf = torch.zeros(len(items), dtype=torch.float64)
    ln_lr = torch.zeros(len(items), dtype=torch.float64)
    with torch.inference_mode():
        for _ in range(linf_repeats):  # L^inf has no mixture tables: any batch size
            for s in range(0, len(items), 64):
                linf[s:s + 64] += flow.infinity_loss_mc(model, x_all[s:s + 64], generator=g)
        for _ in range(repeats):
            for s in range(0, len(items), batch_size):
                x = x_all[s:s + batch_size]
                ln_lr[s:s + len(x)] += (flow.n_step_loss(model, x, n, times=times, samples=2, generator=g)
                                        + flow.reconstruction_loss(model, x, generator=g))
    to_bits = 1.0 / (bytestream.WINDOW * math.log(2.0))  # nats per window -> bits per byte
    return (linf * to_bits / linf_repeats).numpy(), (ln_lr * to_bits / repeats).numpy()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alphabets", default="binary,byte256")
    ap.add_argument("--train", default="runs/text/train")
    ap.add_argument("--heldout", default=HELD_OUT)
    ap.add_argument("--minutes", type=float, default=12.0, help="training wall-clock budget per alphabet")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-windows", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=8, help="L^n + L^r draws per held-out window")
    ap.add_argument("--linf-repeats", type=int, default=64, help="L^inf draws per held-out window")
    ap.add_argument("--evaluate-only", action="store_true",
                    help="evaluate the models an earlier run left in --runs again (no training)")
    ap.add_argument("--runs", default="runs/alphabets", help="where the trained models go")
    ap.add_argument("--out", default=result_path("byte-alphabet-rates", "text"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    reference = load_model("text-bytes")
    network = reference.network_config
    codec = reference.info["codec"]
    times = power_times(codec["steps"], codec["grid_power"])
    bits = load_dataset("bytes:" + args.train)
    train_idx, val_idx = validation_split(len(bits.images))
    train_bits = Dataset(bits.name + ":train", bits.images[train_idx], "discrete", 2)
    val_bits = Dataset(bits.name + ":validation", bits.images[val_idx], "discrete", 2)
    with open(args.heldout, "rb") as f:
        held = bytestream.to_items(f.read(args.eval_windows * bytestream.WINDOW))
    old_rows = json.load(open(args.out))["rows"] if os.path.exists(args.out) else []
    rows = []
    for alphabet in args.alphabets.split(","):
        out_dir = os.path.join(args.runs, alphabet)
        t0 = time.perf_counter()
        if args.evaluate_only:
            seconds = next(r for r in old_rows if r["alphabet"] == alphabet)["train_seconds"]
        else:
            train(as_alphabet(train_bits, alphabet), as_alphabet(val_bits, alphabet), out_dir,
                  steps=10 ** 9, batch_size=args.batch_size, lr=args.lr, seed=args.seed, network=network,
                  flow_config=FLOWS[alphabet], ema_decay=0.995, validate_every=10 ** 9,
                  checkpoint_every=500, max_minutes=args.minutes, progress=False,
                  command=" ".join(["byte_alphabet_rates.py", *(argv if argv is not None else sys.argv[1:])]))
            seconds = time.perf_counter() - t0
        model = load_model(out_dir)  # the EMA weights the run saved
        items = byte_items(held) if alphabet == "byte256" else held
        # K = 256 holds [batch, 256 bytes, K, K - 1] float64 component densities: small batches
        linf, ln_lr = per_window_bits(model, items, times, repeats=args.repeats, linf_repeats=args.linf_repeats,
                                      seed=args.seed, batch_size=64 if alphabet == "binary" else 2)
        row = {"alphabet": alphabet, "flow": FLOWS[alphabet], "parameters": model.num_parameters(),
               "steps": model.info["training"]["step"], "train_seconds": seconds,
               "heldout_windows": len(items), "n": codec["steps"], "grid_power": codec["grid_power"],
               "linf_per_window": linf.tolist(), "ln_plus_lr_per_window": ln_lr.tolist()}
        for name, v in (("linf", linf), ("ln_plus_lr", ln_lr)):
            row[f"{name}_bits_per_byte"], row[f"{name}_stderr"] = mean_stderr(v)
        print(json.dumps(row))
        rows.append(row)
    data = json.load(open(args.out)) if os.path.exists(args.out) else {"rows": []}
    names = {r["alphabet"] for r in rows}
    data["rows"] = [r for r in data["rows"] if r["alphabet"] not in names] + rows
    if not args.evaluate_only:
        data.update({"train": args.train, "minutes": args.minutes, "batch_size": args.batch_size, "lr": args.lr,
                     "seed": args.seed, "threads": args.threads, "network": network})
    data.update({"heldout": args.heldout, "repeats": args.repeats, "linf_repeats": args.linf_repeats})
    by = {r["alphabet"]: r for r in data["rows"]}
    if {"binary", "byte256"} <= set(by) and len(by["binary"].get("linf_per_window", [])) == \
            len(by["byte256"].get("linf_per_window", [])) > 1:
        # the same windows for both: the difference per window is far less noisy than either
        # mean (windows differ far more from each other than the alphabets do on one window)
        data["byte256_minus_binary"] = {
            name: dict(zip(("bits_per_byte", "stderr"), mean_stderr(
                np.array(by["byte256"][f"{name}_per_window"]) - np.array(by["binary"][f"{name}_per_window"]))))
            for name in ("linf", "ln_plus_lr")}
    write_result(args.out, data)


if __name__ == "__main__":
    main()
