"""A large text file through a byte model's chain and back (mode bfn), verified byte for byte.

    python3 benchmarks/text_corpus.py --out runs/text          # the held-out files (once)
    python3 benchmarks/big_roundtrip.py --mb 1 --threads 2     # -> benchmarks/results/roundtrip-text-<weights8>-1mb.json

The file is the held-out text (the coreutils manual, then the Python modules n*-z*) cut at
``--mb`` MiB, so its size is not a multiple of the window. It is coded in mode bfn: every window
that is not in the chain's LZMA2 seed goes through the model's n + 1 network calls per side, so
this is the test of the chain at a size the unit tests cannot afford (CI keeps to a few KB), and
its speed at the model's defaults (bytes per second, encode and decode, on this machine).
"""
from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import torch

from bfn_codec.api import compress_bytes, decompress_bytes, load_model
from result_names import result_path, weights8, write_result

HELD_OUT = Path("runs/text/heldout")


def held_out_text(size: int) -> bytes:
    files = [HELD_OUT / "usr_share_info_coreutils.info"] + sorted(HELD_OUT.glob("usr_lib_python3.11_*.py"))
    out = bytearray()
    for f in files:
        out += f.read_bytes()
        if len(out) >= size:
            break
    if len(out) < size:
        raise SystemExit(f"the held-out files hold only {len(out):,} bytes (run benchmarks/text_corpus.py)")
    return bytes(out[:size])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="text-bytes")
    ap.add_argument("--mb", type=float, default=1.0, help="MiB of held-out text")
    ap.add_argument("--extra", type=int, default=77, help="bytes beyond whole MiB (not a multiple of 256)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    data = held_out_text(int(args.mb * (1 << 20)) + args.extra)
    t0 = time.perf_counter()
    blob, stats = compress_bytes(data, model, name="heldout.txt", mode="bfn", progress=True)
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    name, back = decompress_bytes(blob, model, progress=True)
    dec = time.perf_counter() - t0
    ok = back == data and name == "heldout.txt"
    items = stats["items"]
    row = {"model": args.model, "weights8": weights8(model.weights_sha256), "threads": args.threads,
           "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "file_bytes": len(blob),
           "bits_per_byte": 8 * len(blob) / len(data), "alphabet": stats["alphabet"],
           "seed_windows": items.get("seed_items"), "windows": -(-len(data) // 256),
           "encode_s": enc, "decode_s": dec, "encode_bytes_per_s": len(data) / enc,
           "decode_bytes_per_s": len(data) / dec, "round_trip_exact": ok}
    print(f"{len(data):,} bytes -> {len(blob):,} ({row['bits_per_byte']:.3f} bits/byte), "
          f"{row['seed_windows']} of {row['windows']} windows in the seed; encode {row['encode_bytes_per_s']:,.0f} B/s, "
          f"decode {row['decode_bytes_per_s']:,.0f} B/s; round trip {'exact' if ok else 'WRONG'}")
    if not ok:
        raise SystemExit("the round trip did not give back the original bytes")
    write_result(args.out or result_path("roundtrip", "text", weights8(model.weights_sha256), f"{args.mb:g}mb"), row)


if __name__ == "__main__":
    main()
