"""Any file through bfn-codec against the general-purpose compressors, every result decoded and verified.

    python3 benchmarks/text_corpus.py --out runs/text          # the held-out files (once)
    python3 benchmarks/text_bench.py            # -> benchmarks/results/text-files-<weights8>.json
    python3 benchmarks/text_bench.py runs/text/text8/heldout.txt --model text8-chars \
        --out benchmarks/results/text8-files-<weights8>.json   # the text8-style model (K = 27)

For each file: bfn-codec at defaults (mode auto: the smallest of the byte model's BFN stream,
LZMA2 and the stored bytes), the byte model's own stream (mode bfn) and its loss (L^n + L^r at
the codec's n and grid, and L^inf) on the file's first ``--bfn-bytes`` bytes (the chain costs
n + 1 network calls per window per side: a whole megabyte takes many minutes on 2 cores), and
gzip -9, bzip2 -9, xz -9e, zstd --ultra -22, brotli -q 11, PPMd (7z -m0=PPMd) and zpaq -m5 on
the whole file and on the same first bytes. A tool that is not installed is skipped
(``{"skipped": ...}``): apt-get install -y xz-utils bzip2 zstd brotli p7zip-full zpaq.
Bits per byte count every byte of each compressed file (headers included).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import torch

from bfn_codec.api import codec_settings, compress_bytes, decompress_bytes, load_model
from bfn_codec.bytecodec import ALPHABETS, alphabet_of
from bfn_codec.chain import power_times
from bfn_codec.evaluate import evaluate_loss, per_item_total_bits
from result_names import result_path, weights8, write_result

HELD_OUT = "runs/text/heldout"
DEFAULT_FILES = [f"{HELD_OUT}/usr_share_info_coreutils.info", f"{HELD_OUT}/usr_lib_python3.11_typing.py",
                 "/usr/share/doc/libtasn1-doc/libtasn1.pdf", "/usr/bin/sed"]

# (name, compress argv, decompress argv, suffix 7z/zpaq need); input on stdin or as a file
TOOLS = [
    ("gzip -9", ["gzip", "-9", "-c"], ["gzip", "-d", "-c"]),
    ("bzip2 -9", ["bzip2", "-9", "-c"], ["bzip2", "-d", "-c"]),
    ("xz -9e", ["xz", "-9e", "-c"], ["xz", "-d", "-c"]),
    ("zstd --ultra -22", ["zstd", "--ultra", "-22", "-c", "-q"], ["zstd", "-d", "-c", "-q"]),
    ("brotli -q 11", ["brotli", "-q", "11", "-c"], ["brotli", "-d", "-c"]),
]


def run_pipe(name, enc, dec, data: bytes) -> dict:
    if not shutil.which(enc[0]):
        return {"skipped": f"{enc[0]} not installed"}
    packed = subprocess.run(enc, input=data, capture_output=True, check=True).stdout
    back = subprocess.run(dec, input=packed, capture_output=True, check=True).stdout
    if back != data:
        raise SystemExit(f"{name} did not decode to the original")
    return {"bytes": len(packed), "bits_per_byte": 8 * len(packed) / len(data)}


def run_archiver(name, data: bytes) -> dict:
    """PPMd through 7z and zpaq -m5, which want files: the archive's size, extracted and compared."""
    tool = "7z" if name.startswith("PPMd") else "zpaq"
    if not shutil.which(tool):
        return {"skipped": f"{tool} not installed"}
    with tempfile.TemporaryDirectory() as d:
        src, out = Path(d) / "input", Path(d) / "out"
        src.write_bytes(data)
        out.mkdir()
        if tool == "7z":
            arc = Path(d) / "a.7z"
            subprocess.run(["7z", "a", "-bd", "-m0=PPMd", "-mx=9", str(arc), str(src)], capture_output=True, check=True)
            subprocess.run(["7z", "x", "-bd", f"-o{out}", str(arc)], capture_output=True, check=True)
        else:
            arc = Path(d) / "a.zpaq"
            subprocess.run(["zpaq", "a", str(arc), "input", "-m5"], cwd=d, capture_output=True, check=True)
            subprocess.run(["zpaq", "x", str(arc)], cwd=out, capture_output=True, check=True)
        if (out / "input").read_bytes() != data:
            raise SystemExit(f"{name} did not decode to the original")
        size = arc.stat().st_size
    return {"bytes": size, "bits_per_byte": 8 * size / len(data)}


def classical(data: bytes) -> dict:
    out = {name: run_pipe(name, enc, dec, data) for name, enc, dec in TOOLS}
    for name in ("PPMd (7z -m0=PPMd -mx=9)", "zpaq -m5"):
        out[name] = run_archiver(name, data)
    return out


def bfn(data: bytes, model, mode: str, name: str) -> dict:
    t0 = time.perf_counter()
    blob, stats = compress_bytes(data, model, name=name, mode=mode)
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = decompress_bytes(blob, model)
    dec = time.perf_counter() - t0
    if back != (name, data):
        raise SystemExit(f"bfn-codec ({mode}) did not decode {name} to the original")
    return {"bytes": len(blob), "bits_per_byte": 8 * len(blob) / len(data), "stream": stats["stream"],
            "candidates": stats["candidates"], "probes": stats.get("probes"), "encode_s": enc, "decode_s": dec,
            "encode_bytes_per_s": len(data) / enc, "decode_bytes_per_s": len(data) / dec}


def model_loss(data: bytes, model) -> dict:
    """The model's L^n + L^r (the codec's n and grid, all n steps, 2 message draws) and L^inf
    on the windows of ``data``, in bits per byte of data (the last window's padding counted)."""
    items = ALPHABETS[alphabet_of(model)].to_items(data)
    steps, _, p = codec_settings(model, None, None, None)
    with torch.inference_mode():
        bits = per_item_total_bits(model, items.reshape(len(items), -1), steps, batch_size=32,
                                   times=power_times(steps, p))
        linf = evaluate_loss(model, items, steps=steps, repeats=4, batch_size=32)
    per_byte = model.D / 256  # bits/dim -> bits/byte (256 bytes or characters per window)
    return {"steps": steps, "grid_power": p, "windows": len(items),
            "Ln_plus_Lr_bits_per_byte": float(bits.sum() / len(data)),
            "Linf_bits_per_byte": linf["infinity_bits_per_dim"]["mean"] * per_byte,
            "Linf_stderr": linf["infinity_bits_per_dim"]["stderr"] * per_byte}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", default=DEFAULT_FILES)
    ap.add_argument("--model", default="text-bytes")
    ap.add_argument("--bfn-bytes", type=int, default=65536, help="first bytes of each file coded in mode bfn")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="default: benchmarks/results/text-files-<weights8>.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    rows = []
    for path in args.files:
        if not os.path.isfile(path):
            print(f"SKIP {path}: not found (run benchmarks/text_corpus.py, or install the package)")
            continue
        data = Path(path).read_bytes()
        head = data[:args.bfn_bytes]
        name = Path(path).name
        row = {"file": path, "bytes": len(data), "head_bytes": len(head)}
        row["auto"] = bfn(data, model, "auto", name)
        row["bfn_head"] = bfn(head, model, "bfn", name)
        row["model_head"] = model_loss(head, model)
        row["classical"] = classical(data)
        row["classical_head"] = classical(head)
        rows.append(row)
        best = min((v["bits_per_byte"], k) for k, v in row["classical"].items() if "bytes" in v)
        print(f"{name}: {len(data):,} bytes; bfn-codec auto {row['auto']['bits_per_byte']:.3f} bits/byte "
              f"({row['auto']['stream']}), best classical {best[0]:.3f} ({best[1]}); first {len(head):,} bytes: "
              f"bfn stream {row['bfn_head']['bits_per_byte']:.3f}, L^n+L^r {row['model_head']['Ln_plus_Lr_bits_per_byte']:.3f}, "
              f"L^inf {row['model_head']['Linf_bits_per_byte']:.3f}, gzip {row['classical_head']['gzip -9'].get('bits_per_byte', float('nan')):.3f}; "
              f"bfn {row['bfn_head']['encode_bytes_per_s']:,.0f} / {row['bfn_head']['decode_bytes_per_s']:,.0f} B/s")
    out = {"command": "python3 benchmarks/text_bench.py " + " ".join(args.files) +
           f" --model {args.model} --bfn-bytes {args.bfn_bytes} --threads {args.threads}",
           "model": args.model, "weights8": weights8(model.weights_sha256), "threads": args.threads, "rows": rows}
    write_result(args.out or result_path("text", "files", weights8(model.weights_sha256)), out)


if __name__ == "__main__":
    main()
