"""What a window borrows before bits-back returns it, for the bundled byte and text8-style models.

    python3 benchmarks/text_corpus.py --out runs/text          # the held-out files (once)
    python3 benchmarks/window_deficit.py                       # -> benchmarks/results/deficit-text-<w8>-<w8>.json

For each model at its codec defaults (n, grid): the first held-out windows, each coded alone on
a large scratch stack (float arithmetic, as the driver measures it): the deficit (the lowest point
of the stack below where it started) and the net bits the window adds. Then the first 64 KB of
the held-out text in mode bfn: how many windows the LZMA2 seed had to take, since the seed must
cover the first window's deficit.
"""
from __future__ import annotations

import argparse

import constriction
import numpy as np
import torch

from bfn_codec.api import chain_coder, codec_settings, compress_bytes, load_model
from bfn_codec.bytecodec import ALPHABETS, alphabet_of
from result_names import result_path, weights8, write_result

SOURCES = {"text-bytes": "runs/text/heldout/usr_share_info_coreutils.info",
           "text8-chars": "runs/text/text8/heldout.txt"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--windows", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, keys = [], []
    for name, path in SOURCES.items():
        model = load_model(name)
        alphabet = ALPHABETS[alphabet_of(model)]
        data = open(path, "rb").read()
        flat = alphabet.to_items(data[:256 * args.windows]).reshape(args.windows, -1).astype(np.int64)
        steps, r, p = codec_settings(model, None, None, None)
        chain = chain_coder(model, 5, steps, r, p)
        deficits, nets = [], []
        for x in flat:
            stack = constriction.stream.stack.AnsCoder(np.full(1 << 18, 0x9E3779B9, dtype=np.uint32), seal=True)
            before = stack.num_valid_bits()
            low = chain.encode(stack, x[None])
            deficits.append(int(before - low))
            nets.append(int(stack.num_valid_bits() - before))
        _, stats = compress_bytes(data[:65536], model, mode="bfn")
        row = {"model": name, "weights8": weights8(model.weights_sha256), "alphabet": alphabet.name,
               "steps": steps, "grid_power": p, "deficit_bits": deficits, "net_bits": nets,
               "seed_windows_of_64kb": stats["items"]["seed_items"], "windows_of_64kb": 256}
        print(f"{name}: deficit {np.mean(deficits):,.0f} bits per window, net {np.mean(nets):,.0f}; "
              f"the first 64 KB put {row['seed_windows_of_64kb']} of 256 windows in the seed")
        rows.append(row)
        keys.append(row["weights8"])
    write_result(result_path("deficit", "text", *keys), {"threads": args.threads, "rows": rows})


if __name__ == "__main__":
    main()
