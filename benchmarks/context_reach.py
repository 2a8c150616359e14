"""How much of a general-purpose compressor's rate on text comes from what it has seen before
the window (issue #21: why a model that codes 256-byte windows alone stays above gzip).

Deflate (zlib, level 9, raw) codes each 256-byte window of a file's first --bytes with a preset
dictionary of the `c` bytes before it, for each context length c; the same compressor over the
whole prefix is the reference. Deflate is a yardstick here, not a model: a window coded alone
pays its own block overhead (a few bytes), so read the differences between context lengths.

    python3 benchmarks/context_reach.py [FILE] [--bytes 65536] [--contexts 0,256,1024,4096,32768]

FILE defaults to the held-out coreutils manual (/usr/share/info/coreutils.info.gz, read through
gzip); writes results/context-reach-text-<file>-<KB>k.json.
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import sys
import zlib

from bfn_codec.bytestream import WINDOW  # the byte codec's window, 256 bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, write_result  # noqa: E402

HELD_OUT = "/usr/share/info/coreutils.info.gz"


def deflate_size(data: bytes, history: bytes = b"") -> int:
    """Bytes of raw deflate (level 9, 32 KB window) of ``data`` after ``history`` as a preset
    dictionary (the decoder knows it: it has decoded it already)."""
    args = (9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY)
    c = zlib.compressobj(*args, zdict=history) if history else zlib.compressobj(*args)
    return len(c.compress(data) + c.flush())


def windows_with_context(data: bytes, context: int) -> float:
    """Bits per byte when every window is coded with the ``context`` bytes before it known."""
    total = 0
    for start in range(0, len(data), WINDOW):
        total += deflate_size(data[start:start + WINDOW], data[max(0, start - context):start] if context else b"")
    return 8.0 * total / len(data)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=HELD_OUT)
    ap.add_argument("--bytes", type=int, default=65536, help="the file's first N bytes")
    ap.add_argument("--contexts", default="0,256,1024,4096,32768",
                    help="context lengths in bytes (deflate's window is 32 KB: no more)")
    ap.add_argument("--out", default=None, help="default results/context-reach-text-<file>-<KB>k.json")
    args = ap.parse_args(argv)
    stem = re.sub(r"[^a-z0-9]+", "_", os.path.basename(args.file).split(".")[0].lower())
    out = args.out or result_path("context-reach", "text", stem, f"{args.bytes // 1024}k")
    contexts = [int(c) for c in args.contexts.split(",")]
    if any(c < 0 or c > 32768 for c in contexts):
        raise SystemExit("context lengths must be 0 ... 32768 bytes (deflate's window)")
    opener = gzip.open if args.file.endswith(".gz") else open
    with opener(args.file, "rb") as f:
        data = f.read(args.bytes)
    rows = [{"context_bytes": c, "bits_per_byte": windows_with_context(data, c)} for c in contexts]
    for r in rows:
        print(f"context {r['context_bytes']:>6} bytes: {r['bits_per_byte']:.3f} bits/byte")
    whole = 8.0 * deflate_size(data) / len(data)
    print(f"whole prefix in one stream: {whole:.3f} bits/byte")
    write_result(out, {"file": args.file, "bytes": len(data), "window": WINDOW, "compressor": "Raw deflate (zlib, level 9)",
                            "rows": rows, "whole_bits_per_byte": whole})


if __name__ == "__main__":
    main()
