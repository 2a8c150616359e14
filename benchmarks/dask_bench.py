"""Dask + Zarr with the bfn codec: images/s written by 1 worker against 2 workers, in one run.

    python3 benchmarks/dask_bench.py --model fmnist-binary --images 256 --chunk 64

Each run starts a ``distributed.LocalCluster`` (worker processes of 1 thread), writes the first
``--images`` bundled sample images (binarised for the binary model) to a fresh Zarr array with
``bfn_codec.pipelines.write_zarr`` in chunks of ``--chunk`` items, and times it; the array is then
read back through the same cluster and compared. The model loads once per worker process (the
first chunk of each worker pays it; it is in the times). On a real cluster only the Client's
address changes (docs/pipelines.md). Writes results/dask-<data>-<weights8>-<images>.json.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import data_token, result_path, weights8, write_result  # noqa: E402


def run(x, workers: int, chunk: int, model: str) -> dict:
    import dask.array as da
    from distributed import Client, LocalCluster

    from bfn_codec.pipelines import read_zarr, write_zarr

    with tempfile.TemporaryDirectory() as tmp, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=40) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        path = os.path.join(tmp, "x.zarr")
        t0 = time.perf_counter()
        write_zarr(da.from_array(x, chunks=(chunk, *x.shape[1:])), path, model=model)
        write = time.perf_counter() - t0
        t0 = time.perf_counter()
        back = read_zarr(path).compute()
        read = time.perf_counter() - t0
        if not np.array_equal(back, x):
            raise SystemExit(f"{workers} workers: round trip failed")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(path, "c")) for f in fs)
    row = {"workers": workers, "threads_per_worker": 1, "chunk_items": chunk, "chunks": -(-len(x) // chunk),
           "stored_bytes": size, "write_seconds": write, "read_seconds": read,
           "write_images_per_s": len(x) / write, "read_images_per_s": len(x) / read}
    print(row, flush=True)
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="fmnist-binary", choices=["fmnist-binary", "fmnist"])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from bfn_codec.data import binarise, sample_images
    from bfn_codec.models import load_model

    x = sample_images()[: args.images]
    x = binarise(x) if args.model == "fmnist-binary" else x
    sha = load_model(args.model).weights_sha256
    res = {"model": args.model, "model_sha256": sha, "images": len(x), "cpus": os.cpu_count(),
           "runs": [run(x, w, args.chunk, args.model) for w in (1, 2)]}
    one, two = res["runs"]
    res["ratio_2_over_1_workers"] = {"write": two["write_images_per_s"] / one["write_images_per_s"],
                                     "read": two["read_images_per_s"] / one["read_images_per_s"]}
    print(res["ratio_2_over_1_workers"])
    write_result(args.out or result_path("dask", data_token(args.model), weights8(sha), len(x)), res)


if __name__ == "__main__":
    main()
