"""Large inputs in independent chunks, coded by worker processes (``compress --jobs N``).

The items are cut into chunks of ``chunk_items`` consecutive items; each chunk is coded on its
own into a complete version-3 file (its own LZMA2 seed, chain, checksum), and a version-4 file
indexes them (container.write_archive, docs/format.md). Chunks are independent, so

- encoding and decoding run one chunk per worker process (1 torch thread each: on a machine of
  N cores, N single-threaded coders beat one N-threaded coder, whose small batches leave the
  threads idle; docs/pipelines.md);
- one chunk decodes alone (``decompress_chunk``: random access);
- the file does not depend on the number of workers: the same chunk size gives the same bytes.

The price is one seed per chunk: the first items of every chunk go through LZMA2 (docs/pipelines.md
measures it against the chunk size; the default size, limits.DEFAULT_CHUNK_ITEMS, comes from it).
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import numpy as np

from .container import (DATA_HASH_BYTES, FormatError, chunk_bytes, data_checksum, read_archive,
                        write_archive)
from .progress import Progress


class WorkerError(RuntimeError):
    """A worker process died before it returned its chunk (its own exceptions pass unchanged)."""


def chunk_bounds(count: int, chunk_items: int) -> list[tuple[int, int]]:
    """[(start, stop)] of the chunks of ``count`` items: all of ``chunk_items`` but the last."""
    if chunk_items < 1:
        raise ValueError(f"chunk size must be at least 1 item, not {chunk_items}")
    return [(s, min(count, s + chunk_items)) for s in range(0, count, chunk_items)]


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run(tasks, jobs: int, progress: Progress, sizes):
    """Results of ``tasks`` [(fn, args)], in order: in this process for jobs = 1, else in a pool
    of ``jobs`` spawned workers (spawn: a forked copy of a process that has run torch's thread
    pool can hang), at most 2 * jobs chunks in flight so memory stays bounded."""
    results = [None] * len(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        for i, (fn, args) in enumerate(tasks):
            results[i] = fn(*args)
            progress.update(sizes[i])
        return results
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=ctx,
                             initializer=_init_worker, initargs=(1,)) as pool:
        pending, next_task = {}, 0
        while next_task < len(tasks) or pending:
            while next_task < len(tasks) and len(pending) < 2 * jobs:
                fn, args = tasks[next_task]
                pending[pool.submit(fn, *args)] = next_task
                next_task += 1
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i = pending.pop(future)
                try:
                    results[i] = future.result()  # a worker's exception surfaces here, unchanged
                except BrokenProcessPool:
                    raise WorkerError(
                        "a worker process died (out of memory, killed, or started from a script "
                        "without an `if __name__ == \"__main__\":` guard, which jobs above 1 need)") from None
                progress.update(sizes[i])
    return results


def _model_spec(model):
    """What a worker process can load the model from: its bundled name or checkpoint path."""
    if model is None or isinstance(model, str):
        return model
    import os

    if isinstance(model, os.PathLike):
        return os.fspath(model)
    raise ValueError("--jobs above 1 needs the model as a bundled name or a checkpoint directory "
                     "(worker processes load it themselves), not a model object")


def compress_chunked(encode, items: np.ndarray, layout: str, model, jobs: int, chunk_items: int,
                     progress: bool = False) -> tuple[bytes, dict]:
    """A version-4 file of ``items`` [N, C, H, W] (the user's array shape: ``layout``) in chunks of
    ``chunk_items``, coded by ``jobs`` processes with ``encode(items, model) -> (bytes, stats)``
    (api's compress with its settings bound: a picklable top-level function or partial)."""
    bounds = chunk_bounds(len(items), chunk_items)
    spec = _model_spec(model) if jobs > 1 else model
    tasks = [(encode, (np.ascontiguousarray(items[a:b]), spec)) for a, b in bounds]
    sizes = [b - a for a, b in bounds]
    with Progress(len(items), f"encode ({len(bounds)} chunks, {jobs} jobs)", unit="item",
                  enabled=progress) as bar:
        results = _run(tasks, jobs, bar, sizes)
    blob = write_archive(tuple(items.shape[1:]), len(items), layout,
                         data_checksum(items, layout)[:DATA_HASH_BYTES],
                         [(n, part) for n, (part, _) in zip(sizes, results)])
    modes = [stats.get("mode") for _, stats in results]
    info = {"mode": "chunked", "chunks": len(bounds), "chunk_items": chunk_items, "jobs": jobs,
            "chunk_modes": {m: modes.count(m) for m in sorted(set(modes), key=str)},
            "chunk_bytes": [len(part) for part, _ in results]}
    return blob, info


def decompress_archive(decode, blob, model=None, jobs: int = 1, progress: bool = False) -> tuple[np.ndarray, str]:
    """(items [N, C, H, W], layout) of a version-4 file, each chunk decoded by ``decode(part,
    model)`` (api's decompress), every chunk's checksum and the whole array's checksum verified."""
    archive = read_archive(blob)
    parts = [chunk_bytes(blob, archive, i) for i in range(len(archive.chunks))]
    spec = _model_spec(model) if jobs > 1 else model
    sizes = [c.count for c in archive.chunks]
    with Progress(archive.count, f"decode ({len(parts)} chunks, {jobs} jobs)", unit="item",
                  enabled=progress) as bar:
        decoded = _run([(decode, (p, spec)) for p in parts], jobs, bar, sizes)
    C, H, W = archive.item_shape
    items = np.concatenate([np.asarray(d).reshape(-1, C, H, W) for d in decoded]) if decoded else \
        np.zeros((0, C, H, W), np.uint8)
    if data_checksum(items, archive.layout)[:len(archive.data_hash)] != archive.data_hash:
        raise FormatError("decoded data does not match the stored checksum: the file is corrupt")
    return items, archive.layout


def chunk_of_item(blob, item: int) -> int:
    """The chunk holding item ``item`` of a version-4 file."""
    archive = read_archive(blob)
    if not 0 <= item < archive.count:
        raise ValueError(f"item {item} out of range (the file holds {archive.count})")
    starts = [c.first for c in archive.chunks]
    return int(np.searchsorted(starts, item, side="right") - 1)

