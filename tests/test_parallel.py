"""Chunked files (format version 4) and compress --jobs N: parallel coding, random access."""
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import bfn_codec
from bfn_codec.api import chunk_index, decompress_chunk
from bfn_codec.cli import main
from bfn_codec.container import (FormatError, chunk_bytes, is_archive, read, read_archive, write_archive)
from bfn_codec.data import binarise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
sys.path.insert(0, GOLDEN)
from make_v4 import NAME, SETTINGS, golden_data  # noqa: E402
from conftest import bundled_with_bits  # noqa: E402

SAMPLE = np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))
BINARY = binarise(SAMPLE)


@pytest.fixture(scope="module")
def oracle_chunked():
    from fuzzlib import chunked_sample_files

    model, [(blob, x)] = chunked_sample_files()
    return model, blob, x


def test_chunked_file_round_trips_and_each_chunk_decodes_alone(oracle_chunked):
    model, blob, x = oracle_chunked
    assert is_archive(blob) and chunk_index(blob) == [(0, 25), (25, 25), (50, 10)]
    assert np.array_equal(bfn_codec.decompress(blob, model=model), x)
    for i, (first, count) in enumerate(chunk_index(blob)):
        part = decompress_chunk(blob, i, model=model)
        assert part.shape == (count, 1, 4, 4) and np.array_equal(part[:, 0], x[first:first + count])
    with pytest.raises(ValueError, match="out of range"):
        decompress_chunk(blob, 3, model=model)


def test_an_input_of_one_chunk_is_a_plain_file(oracle_chunked):
    model, _, x = oracle_chunked
    blob = bfn_codec.compress(x[:20], model=model, steps=3, chunk_items=25)
    assert not is_archive(blob) and chunk_index(blob) == [(0, 20)]


def test_the_chunk_index_is_checked_before_any_chunk_is_read(oracle_chunked):
    model, blob, x = oracle_chunked
    archive = read_archive(blob)
    bad = bytearray(blob)
    bad[7] ^= 1  # an index field: the index's own CRC-32 refuses it
    with pytest.raises(FormatError, match="CRC-32 mismatch in the chunk index"):
        bfn_codec.decompress(bytes(bad), model=model)
    with pytest.raises(FormatError, match="truncated or trailing garbage"):
        read_archive(blob[:-1])
    with pytest.raises(FormatError, match="truncated or trailing garbage"):
        read_archive(blob + b"\0")
    # a chunk whose bytes are damaged: its own CRC names it; the other chunks still decode alone
    last = archive.chunks[2]
    bad = bytearray(blob)
    bad[last.offset + last.length // 2] ^= 0x10
    with pytest.raises(FormatError, match="CRC"):
        decompress_chunk(bytes(bad), 2, model=model)
    assert np.array_equal(decompress_chunk(bytes(bad), 0, model=model)[:, 0], x[:25])
    # chunks that are valid files but disagree with the index
    parts = [chunk_bytes(blob, archive, i) for i in range(3)]
    swapped = write_archive((1, 4, 4), 60, "NHW", archive.data_hash, [(25, parts[0]), (25, parts[2]), (10, parts[1])])
    with pytest.raises(FormatError, match="the index says"):
        bfn_codec.decompress(swapped, model=model)
    # right chunks, wrong order: each chunk is fine, the whole array's checksum is not
    reordered = write_archive((1, 4, 4), 60, "NHW", archive.data_hash, [(25, parts[1]), (25, parts[0]), (10, parts[2])])
    with pytest.raises(FormatError, match="checksum"):
        bfn_codec.decompress(reordered, model=model)
    with pytest.raises(FormatError, match="chunked file"):
        read(blob)  # the version-3 reader names what the file is


@pytest.mark.slow
def test_jobs_2_codes_the_same_streams_as_jobs_1_and_decodes_in_parallel(tmp_path):
    x = BINARY[:64]
    settings = dict(steps=12, mode="bfn", chunk_items=32)
    one = bfn_codec.compress(x, "fmnist-binary", jobs=1, **settings)
    two = bfn_codec.compress(x, "fmnist-binary", jobs=2, **settings)
    a1, a2 = read_archive(one), read_archive(two)
    for i in range(2):  # the same coded streams; only the informational thread count may differ
        h1, p1 = read(chunk_bytes(one, a1, i))
        h2, p2 = read(chunk_bytes(two, a2, i))
        assert h1.mode == h2.mode == "bfn" and p1 == p2
    assert np.array_equal(bfn_codec.decompress(two, jobs=2), x)


@pytest.mark.slow
def test_golden_chunked_file_decodes_and_re_encodes_to_the_same_bytes():
    blob = open(os.path.join(GOLDEN, NAME + ".bfn"), "rb").read()
    x = np.load(os.path.join(GOLDEN, NAME + ".npy"))
    assert np.array_equal(x, golden_data())
    assert [c.count for c in read_archive(blob).chunks] == [32, 32, 6]
    assert np.array_equal(bfn_codec.decompress(blob), x)
    # conftest: 1 torch thread, as the writer; fmnist-binary's first calibration, as the writer
    settings = dict(SETTINGS, model=bundled_with_bits(SETTINGS["model"], 10, 12))
    assert bfn_codec.compress(x, **settings) == blob


def test_cli_jobs_info_chunk_and_test(tmp_path, oracle_chunked):
    path = tmp_path / "x.npy"
    x = BINARY[:40]
    np.save(path, x)
    run = CliRunner().invoke
    res = run(main, ["compress", str(path), "--model", "fmnist-binary", "--mode", "fallback", "--chunk-items", "16",
                     "-q"])
    assert res.exit_code == 0, res.output
    out = str(path) + ".bfn"
    res = run(main, ["info", out])
    assert res.exit_code == 0 and "chunks: 3" in res.output and "items 32..39" in res.output, res.output
    res = run(main, ["-d", out, "--chunk", "1", "-o", str(tmp_path / "c1.npy"), "-q"])
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.load(tmp_path / "c1.npy"), x[16:32])
    res = run(main, ["-d", out, "--chunk", "5", "-o", str(tmp_path / "c5.npy"), "-q"])
    assert res.exit_code == 1 and "out of range" in res.output and not (tmp_path / "c5.npy").exists()
    res = run(main, ["-t", out])
    assert res.exit_code == 0 and "OK ((40, 28, 28)" in res.output
    res = run(main, ["compress", str(path), "--chunk", "1"])
    assert res.exit_code == 2 and "--chunk is for decompressing" in res.output


@pytest.mark.slow
def test_cli_jobs_2_round_trip_through_worker_processes(tmp_path):
    path = tmp_path / "x.npy"
    x = BINARY[:20]
    np.save(path, x)
    cmd = [sys.executable, "-m", "bfn_codec.cli", "compress", str(path), "-j", "2", "--chunk-items", "8",
           "--mode", "fallback", "-q"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([sys.executable, "-m", "bfn_codec.cli", "-d", str(path) + ".bfn", "-j", "2", "-o",
                          str(tmp_path / "y.npy"), "-q"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), x)
