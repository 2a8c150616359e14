"""compress --jobs N: chunked coding in worker processes against one process, in one run.

    python3 benchmarks/jobs_bench.py --model fmnist-binary --limit 2000 --jobs 2
    python3 benchmarks/jobs_bench.py --model fmnist-binary --limit 2000 --jobs 2 --threads 1 --encode-only
    python3 benchmarks/jobs_bench.py --model fmnist-binary --limit 2000 --jobs 2 --sweep 250 500

On the first ``--limit`` test images at the model's defaults, without ``--sweep``:

* ``single``: today's file, one process with ``--threads`` torch threads (compress --jobs 1;
  ``--threads 1`` makes it one job of one thread, like each of the N workers below), encoded
  and decoded (``--no-single-decode``: encoded only, to halve the run);
* ``chunked``: --jobs N at the default chunk size (N worker processes of 1 thread each), encoded
  and decoded with --jobs N; then its last chunk decoded alone (with ``--threads`` threads).

``--encode-only`` skips both whole-file decodes (the chunked round trip is the tests' job); the
last chunk is still decoded alone and compared, so random access is measured in every run.

Every file is compared with the images. Writes results/jobs-<data>-<weights8>-<images>.json:
bytes, bits per value, encode and decode images/s, the speed ratios chunked / single and the
chunking cost in % of the single file. With ``--sweep C ...``: only the sizes of the chunked
files at those chunk sizes (encoded with --jobs N; not decoded: the chunked format's round trip
is the tests' job), for the cost of chunking against the chunk size; their times are not a
speed measurement (they may share the machine with other work). Writes results/jobs-sweep-<data>-<weights8>-<images>.json.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from portable_bench import model_and_test_images  # noqa: E402
from result_names import data_token, result_path, weights8, write_result  # noqa: E402

from bfn_codec.api import chunk_index, compress_with_stats, decompress, decompress_chunk  # noqa: E402
from bfn_codec.limits import DEFAULT_CHUNK_ITEMS  # noqa: E402


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def run(name, x, model, jobs, chunk_items, decode=True):
    (blob, info), enc = timed(compress_with_stats, x, model, jobs=jobs, chunk_items=chunk_items)
    row = {"jobs": jobs, "chunk_items": chunk_items, "bytes": len(blob), "bits_per_value": 8 * len(blob) / x.size,
           "encode_seconds": enc, "encode_images_per_s": len(x) / enc,
           "chunks": info.get("chunks", 1), "chunk_modes": info.get("chunk_modes", {info.get("mode"): 1})}
    if decode:
        y, dec = timed(decompress, blob, jobs=jobs)
        if not np.array_equal(y, x):
            raise SystemExit(f"{name}: round trip failed")
        row.update(decode_seconds=dec, decode_images_per_s=len(x) / dec)
    print(name, {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    return row, blob


def main(argv=None):
    def extra(ap):
        ap.add_argument("--jobs", type=int, default=2)
        ap.add_argument("--chunk-items", type=int, default=DEFAULT_CHUNK_ITEMS)
        ap.add_argument("--no-single-decode", action="store_true",
                        help="do not decode the single file (its decode speed is then not compared)")
        ap.add_argument("--encode-only", action="store_true",
                        help="decode neither whole file, only the chunked file's last chunk alone")
        ap.add_argument("--sweep", type=int, nargs="*", default=[],
                        help="only measure the file size at these chunk sizes (no single-process run)")

    args, model, x = model_and_test_images(__doc__, 2000, argv, extra)
    spec = args.model  # workers load the bundled model by name
    res = {"model": args.model, "model_sha256": model.weights_sha256, "images": len(x), "threads": args.threads,
           "cpus": os.cpu_count()}
    if args.sweep:
        res["sweep"] = [run(f"chunks of {c}", x, spec, args.jobs, c, decode=False)[0] for c in args.sweep]
        out = args.out or result_path("jobs-sweep", data_token(args.model), weights8(model.weights_sha256), len(x))
        return write_result(out, res)
    whole = not args.encode_only
    res["single"], _ = run("single", x, spec, 1, None, decode=whole and not args.no_single_decode)
    res["single"]["threads"] = args.threads
    res["chunked"], blob = run("chunked", x, spec, args.jobs, args.chunk_items, decode=whole)
    res["chunked"]["threads_per_job"] = 1
    last = len(chunk_index(blob)) - 1  # random access: the last chunk alone
    one, dt = timed(decompress_chunk, blob, last)
    first = chunk_index(blob)[last][0]
    if not np.array_equal(one[:, 0], x[first:first + len(one)]):
        raise SystemExit("single-chunk decode failed")
    res["single_chunk_decode"] = {"chunk": last, "items": len(one), "seconds": dt, "images_per_s": len(one) / dt,
                                  "threads": args.threads}
    s, c = res["single"], res["chunked"]
    res["ratios_chunked_over_single"] = {"encode_speed": c["encode_images_per_s"] / s["encode_images_per_s"]}
    if "decode_images_per_s" in s:
        res["ratios_chunked_over_single"]["decode_speed"] = c["decode_images_per_s"] / s["decode_images_per_s"]
    res["chunking_cost_percent"] = 100.0 * (c["bytes"] / s["bytes"] - 1.0)
    print(res["ratios_chunked_over_single"], res["chunking_cost_percent"], flush=True)
    out = args.out or result_path("jobs", data_token(args.model), weights8(model.weights_sha256), len(x))
    write_result(out, res)


if __name__ == "__main__":
    main()
