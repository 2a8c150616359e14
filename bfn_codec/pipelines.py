"""Dask + Zarr: code the chunks of a large array in parallel, on one machine or a cluster.

    from dask.distributed import Client
    import dask.array as da
    from bfn_codec.pipelines import write_zarr, read_zarr

    client = Client()                        # or Client("tcp://scheduler:8786") on a cluster
    write_zarr(da.from_array(images, chunks=(500, 28, 28)), "images.zarr", model="fmnist")
    back = read_zarr("images.zarr").compute()

Every Dask task codes one Zarr chunk (one .bfn file) with the bfn serializer (zarr_codec.py), on
whichever worker Dask puts it; a worker process loads the model once and keeps it. The portable
arithmetic (the default) makes the stored chunks independent of the worker that wrote them.
Nothing here knows about the cluster: with a ``distributed.Client`` active, Dask sends the tasks
to its workers, otherwise they run in local threads.
"""
from __future__ import annotations


def write_zarr(array, path, model: str = "fmnist", chunk_items: int | None = None, **codec_options):
    """Write uint8 items ``array`` (a Dask or numpy array of shape (N, H, W)) to a new Zarr v3
    array at ``path`` (a directory or any store Zarr accepts), one chunk per ``chunk_items`` items
    (default: the Dask array's chunks along the first axis), each coded by the bfn serializer with
    ``model`` and ``codec_options`` (BFNCodec's: steps, r, grid_power, mode, arithmetic,
    weights_sha256). Returns the Zarr array."""
    import dask.array as da
    import numpy as np
    import zarr

    from .zarr_codec import BFNZarrCodec

    darr = da.asarray(array)
    if darr.dtype != np.uint8 or darr.ndim != 3:
        raise ValueError(f"write_zarr takes uint8 items of shape (N, H, W), got {darr.dtype} {darr.shape}")
    N, H, W = darr.shape
    chunk = int(chunk_items or darr.chunks[0][0] or 1)
    # Dask chunks on Zarr chunk boundaries: every task writes whole chunks, so no locks are needed
    darr = darr.rechunk((chunk, H, W))
    z = zarr.create_array(path, shape=(N, H, W), chunks=(chunk, H, W), dtype="uint8",
                          serializer=BFNZarrCodec(model=model, **codec_options), compressors=None)
    da.store(darr, z, lock=False)
    return z


def read_zarr(path):
    """A Dask array over a Zarr array written with the bfn codec (one task per chunk)."""
    import dask.array as da
    import zarr

    z = zarr.open_array(path, mode="r")
    return da.from_zarr(z)
