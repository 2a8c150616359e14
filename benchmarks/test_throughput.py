"""Encode / decode throughput of the bundled models (pytest-benchmark).

    python3 -m pytest benchmarks/test_throughput.py --benchmark-enable \
        --benchmark-json benchmarks/results/throughput-both-<binary weights8>-<8-bit weights8>.json

(pytest names the file, so the command names it: throughput-both-f1b771f2-7894bafd.json for the
bundled weights; benchmarks/README.md has the scheme.)

Not part of the unit tests (``testpaths = tests``; benchmarks are disabled by default in
``addopts``, hence ``--benchmark-enable``). A fixed subset of Fashion-MNIST test images (the
first ``BFN_BENCH_ITEMS``, default 256; the bundled 256-image sample when the data set is not
installed) is compressed and decompressed once per round at the model's default n and r, on one
torch thread. Each result's ``extra_info`` holds images/s, the network's and the coder's
share of the time, and bits/pixel; compare runs as ratios measured in the same session.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import bfn_codec
from bfn_codec.api import compress_with_stats, decompress_with_stats
from bfn_codec.data import DataError, binarise, load_fmnist

ITEMS = int(os.environ.get("BFN_BENCH_ITEMS", "256"))
ROUNDS = int(os.environ.get("BFN_BENCH_ROUNDS", "1"))


def _images(binary: bool) -> tuple[np.ndarray, str]:
    try:
        x, source = load_fmnist("test")[:ITEMS], "fmnist test"
    except DataError:
        path = os.path.join(os.path.dirname(bfn_codec.__file__), "samples", "fmnist-test-256.npy")
        x, source = np.load(path)[:ITEMS], "bundled sample"
    return (binarise(x) if binary else x), source


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _record(benchmark, model, x, stats, blob, source):
    """Time split of the last round: the network itself (trunk), its output table p_O, and the
    coder (posteriors, ANS, seed, batching: everything else)."""
    seconds = benchmark.stats.stats.mean
    trunk = stats.get("trunk_seconds", 0.0)  # absent when the seed took every item
    table = stats.get("network_seconds", 0.0) - trunk
    benchmark.extra_info.update(
        items=len(x), source=source, mode=stats.get("mode", "bfn"), images_per_second=len(x) / seconds,
        network_share=trunk / seconds, output_table_share=table / seconds,
        coder_share=1.0 - (trunk + table) / seconds,
        bits_per_pixel=8 * len(blob) / x.size, threads=1, model_sha256=model.weights_sha256)


@pytest.mark.parametrize("name", ["fmnist-binary", "fmnist"])
def test_encode(benchmark, name):
    x, source = _images(name == "fmnist-binary")
    model = bfn_codec.load_model(name)
    stats = {}

    def run():
        blob, coded = compress_with_stats(x, model, mode="bfn")
        stats.clear()
        stats.update(coded)
        return blob

    blob = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    _record(benchmark, model, x, stats, blob, source)


@pytest.mark.parametrize("name", ["fmnist-binary", "fmnist"])
def test_decode(benchmark, name):
    x, source = _images(name == "fmnist-binary")
    model = bfn_codec.load_model(name)
    blob = bfn_codec.compress(x, model=model, mode="bfn")
    stats = {}

    def run():
        y, coded = decompress_with_stats(blob, model)
        stats.clear()
        stats.update(coded)
        return y

    y = benchmark.pedantic(run, rounds=ROUNDS, iterations=1)
    assert np.array_equal(x, y)
    _record(benchmark, model, x, stats, blob, source)
