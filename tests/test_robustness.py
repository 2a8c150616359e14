"""A container that never lies: hostile input, determinism, files, models."""
import math
import os
import signal
import struct
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest

import bfn_codec
from bfn_codec.api import compress_with_stats
from bfn_codec.environment import CODER_REVISION, PORTABLE_REVISION, environment
from bfn_codec.container import MAGIC, FormatError, Header, _rle, environment_digest, read, read_archive, write

from fuzzlib import (bytefile_sample_files, text8_sample_files, check_bytes, check_files, check_one, chunked_sample_files, discretised_sample_files, imageset_sample_files, mutate,
                     pooled_sample_files, portable_sample_files, sample_files, with_crc)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def files():
    return sample_files()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["binary-oracle", "discretised-windows", "portable", "chunked", "imageset",
                                  "pooled", "bytes", "text8"])
def test_fuzz_fixed_seed(files, kind):
    """Thousands of mutated files: each ends in a FormatError or the exact original data."""
    model, samples = {"binary-oracle": lambda: files, "discretised-windows": discretised_sample_files,
                      "portable": portable_sample_files, "chunked": chunked_sample_files,
                      "imageset": imageset_sample_files, "pooled": pooled_sample_files,
                      "bytes": bytefile_sample_files, "text8": text8_sample_files}[kind]()
    check = check_one
    if kind == "bytes":
        from bfn_codec.bytefile import read_bytefile

        assert [read_bytefile(b).stream for b, _ in samples] == ["bfn", "lzma2", "stored"]
        check = check_bytes
    elif kind == "text8":
        from bfn_codec.bytefile import read_bytefile

        index = read_bytefile(samples[0][0])
        inner = read(samples[0][0][index.offset:index.offset + index.stream_length])[0]
        assert index.alphabet == "text8" and inner.batches and inner.coder_revision == PORTABLE_REVISION  # the chain ran
        check = check_bytes
    elif kind == "pooled":
        from bfn_codec.imageset import read_imageset

        assert {e.stream for e in read_imageset(samples[0][0]).entries} == {"pool"}
        check = check_files
    elif kind == "imageset":
        from bfn_codec.imageset import read_imageset

        streams = [read_imageset(b).entries[0].stream for b, _ in samples]
        assert streams[0] == "bfn" and set(streams[1:]) <= {"png", "webp"}, streams
    elif kind == "chunked":
        assert [c.count for c in read_archive(samples[0][0]).chunks] == [25, 25, 10]
    else:
        assert read(samples[0][0])[0].coder_revision == (PORTABLE_REVISION if kind == "portable" else CODER_REVISION)
    rng = np.random.default_rng(12345)
    failures, cases = [], 0
    mutations = 1200 if kind == "binary-oracle" else 1000
    for blob, original in samples:
        for cut in range(len(blob)):  # every truncation
            cases += 1
            if (f := check(blob[:cut], model, original)) is not None:
                failures.append(("cut", cut, f))
        for _ in range(mutations):
            cases += 1
            bad = mutate(blob, rng)
            if (f := check(bad, model, original)) is not None:
                failures.append(("mutation", bad[:40].hex(), f))
    assert cases > (2 * mutations + 100 if kind == "binary-oracle" else mutations + 100)
    assert not failures, failures[:5]


def _rewrite(blob, **changes):
    header, payload = read(blob)
    fields = dict(header.__dict__)
    fields.update(changes)
    return write(Header(**fields), payload)


def _patch(blob, offset, fmt, value):
    body = bytearray(blob[:-4])
    struct.pack_into(fmt, body, offset, value)
    return with_crc(bytes(body))


@pytest.mark.parametrize("change,message", [
    (dict(count=10**12), "item count"),
    (dict(count=0), "seed covers|do not add up"),
    (dict(item_shape=(1, 100000, 100000)), "item shape"),
    (dict(item_shape=(1, 0, 4)), "item shape"),
    # found by benchmarks/fuzz.py (seed 4, case 7,775): the product of these overflowed int64
    # and passed the size check, then crashed the seed decoder with an OverflowError
    (dict(item_shape=(1, 3087007748, 3355443204)), "item shape"),
    # a seed cannot expand more than LZMA2 allows: refused before anything is decompressed
    (dict(count=10**7, seed_items=10**7), "cannot hold"),
    (dict(steps=10**9), "steps"),
    (dict(steps=0), "steps"),
    (dict(r=0.0), "grid ratio"),
    (dict(r=100.0), "grid ratio"),
    (dict(grid_power=0.0), "time-grid power"),
    (dict(grid_power=4e6), "time-grid power"),  # beyond the field's limit: refused while parsing
    (dict(K=1), "classes"),
    (dict(K=70000), "classes"),
    (dict(seed_items=10**6), "seed"),
    (dict(seed_bytes=10**12), "seed"),
    (dict(batches=[10**6]), "batch"),
    (dict(model_hash=b"\1" * 8), "written with model"),
    (dict(data_hash=b"\1" * 8), "checksum"),
    (dict(environment_digest=b"\1" * 4), "environment differs"),
    (dict(threads=0), "thread count"),
    (dict(threads=5000), "thread count"),
    (dict(coder_revision=1), "coder revision 1"),
    (dict(coder_revision=4), "coder revision 4"),
    (dict(coder_revision=CODER_REVISION + 1), "written with model .*weights and integer calibration"),
    (dict(coder_revision=PORTABLE_REVISION), "written with model .*weights and integer calibration"),
    (dict(coder_revision=PORTABLE_REVISION + 1), f"coder revision {PORTABLE_REVISION + 1}"),
    # found by benchmarks/fuzz.py (case 55,491 of seed 1): a changed layout byte returned the
    # first image only, without an error; the layout is now validated and inside the checksum
    (dict(layout="HW"), "layout HW holds one item"),
    (dict(layout="IDX"), "checksum"),
    (dict(layout="NCHW"), "checksum"),
])
def test_absurd_header_fields_give_clear_errors(files, change, message):
    model, samples = files
    blob = _rewrite(samples[0][0], **change)
    with pytest.raises(FormatError, match=message):
        bfn_codec.decompress(blob, model=model)


@pytest.mark.parametrize("setting,message", [
    (dict(steps=0), "number of steps"),
    (dict(steps=10_001), "number of steps"),
    (dict(steps=2.5), "must be an integer"),
    (dict(r=0.0), "grid ratio"),
    (dict(r=100.0), "grid ratio"),
    (dict(r=float("nan")), "grid ratio"),
    (dict(grid_power=0.0), "time-grid power"),
    (dict(grid_power=10.0), "time-grid power"),
])
def test_compress_refuses_settings_no_file_can_carry(files, setting, message):
    """0 used to mean "the model's default" (``steps or default``), and r = 100 or p = 10 wrote a
    file that decompress then refused: the encoder now applies the reader's own rule up front."""
    model, samples = files
    data = bfn_codec.decompress(samples[0][0], model=model)
    with pytest.raises(ValueError, match=message):
        bfn_codec.compress(data, model=model, **setting)
    # the same values in a header are what the reader refuses
    if not isinstance(setting.get("steps", 1), float) and all(map(math.isfinite, setting.values())):
        with pytest.raises(FormatError, match=message):
            bfn_codec.decompress(_rewrite(samples[0][0], **setting), model=model)


def test_compress_never_returns_a_file_its_reader_refuses(files, monkeypatch):
    """A second line of defence behind the settings check: the writer's output is parsed back."""
    import bfn_codec.api as api
    model, samples = files
    data = bfn_codec.decompress(samples[0][0], model=model)
    monkeypatch.setattr(api, "codec_settings", lambda *a: (3, 100.0, 1.0))  # r outside the format
    with pytest.raises(RuntimeError, match="its own reader refuses.*grid ratio"):
        bfn_codec.compress(data, model=model, mode="bfn")


def test_unusable_codec_defaults_in_a_model_config_are_the_models_error(monkeypatch):
    from bfn_codec.models import ModelError
    model = bfn_codec.load_model("fmnist-binary")
    monkeypatch.setitem(model.info["codec"], "r", 100.0)
    with pytest.raises(ModelError, match="codec defaults.*grid ratio"):
        bfn_codec.compress(np.zeros((1, 28, 28), np.uint8), model=model)


def test_a_hostile_batch_claim_stops_as_soon_as_the_stream_runs_out(files, monkeypatch):
    """A valid-CRC file that claims an extra batch of 4,096 items at n = 10,000 would take hours
    to decode in full; the stack sinks below the encoder's guaranteed floor within the first
    steps, so decoding stops there with a clear error."""
    from bfn_codec.coder import ChainCoder

    model, samples = files
    blob = next(b for b, _ in samples if read(b)[0].batches)
    header = read(blob)[0]
    calls = []
    original = ChainCoder._output
    monkeypatch.setattr(ChainCoder, "_output", lambda self, *a: calls.append(1) or original(self, *a))
    bad = _rewrite(blob, steps=10_000, batches=header.batches + [4096], count=header.count + 4096)
    with pytest.raises(FormatError, match="ran out|corrupt"):
        bfn_codec.decompress(bad, model=model)
    assert len(calls) < 50, len(calls)


def test_schedules_that_would_exhaust_memory_are_refused(files):
    """The batch schedule is run-length coded, so a few header bytes could describe billions of
    batches, or batches whose [B, D, K] tables need terabytes: both refused by the reader."""
    from bfn_codec.container import MAX_BATCHES, MAX_TABLE_ENTRIES

    model, samples = files
    blob = next(b for b, _ in samples if read(b)[0].batches)
    h = read(blob)[0]
    many = [1] * (MAX_BATCHES + 1)
    with pytest.raises(FormatError, match="more than"):
        read(_rewrite(blob, batches=many, count=h.seed_items + len(many)))
    B = MAX_TABLE_ENTRIES // (1 << 20) + 1  # items of 1 Mi variables, K = 2
    with pytest.raises(FormatError, match="tables"):
        read(_rewrite(blob, item_shape=(1, 1024, 1024), seed_items=0, batches=[B], count=B))


@pytest.mark.slow
def test_encoder_batches_respect_the_table_limit():
    # the encoder's memory cap (api.ENCODE_TABLE_ENTRIES) is below what the decoder accepts
    from bfn_codec.api import ENCODE_TABLE_ENTRIES
    from bfn_codec.container import MAX_TABLE_ENTRIES
    from conftest import draw, random_pi

    flow = bfn_codec.models.make_flow({"data_type": "discretised", "K": 256, "sigma1": 1e-3})
    pi = random_pi(64 * 64, 256, seed=0)
    model = bfn_codec.OracleModel(flow, pi, shape=(1, 64, 64))
    x = draw(pi, 30, seed=1).reshape(30, 64, 64)
    blob, stats = compress_with_stats(x, model=model, steps=2, mode="bfn", batch_size=4096)
    assert ENCODE_TABLE_ENTRIES <= MAX_TABLE_ENTRIES
    assert max(stats["batches"]) * 64 * 64 * 256 <= ENCODE_TABLE_ENTRIES
    assert max(stats["batches"]) == ENCODE_TABLE_ENTRIES // (64 * 64 * 256)  # the cap, not something smaller
    assert np.array_equal(bfn_codec.decompress(blob, model=model), x)


def test_low_level_header_corruptions(files):
    model, samples = files
    blob = samples[0][0]
    flags = blob[5]
    cases = {
        "bad magic": b"XXXX" + blob[4:],
        "unsupported format version 7": _patch(blob, 4, "<B", 7),
        "unsupported format version 1": _patch(blob, 4, "<B", 1),
        "flags": _patch(blob, 5, "<B", flags & ~0x20 | 0x80),
        "unknown data type": _patch(blob, 5, "<B", flags & ~3),
        "layout code": _patch(blob, 5, "<B", flags | 0x1C),
        "number too large": with_crc(blob[:6] + b"\xff" * 12 + blob[6:-4]),
        "CRC-32": blob[:-1] + bytes([blob[-1] ^ 1]),
        "truncated or trailing": blob[:-4] + b"\0" * 2 + blob[-4:],
        "truncated": blob[:7],
    }
    for message, bad in cases.items():
        with pytest.raises(FormatError, match=message):
            bfn_codec.decompress(bad, model=model)


GOLDEN = os.path.join(ROOT, "tests", "golden")


def _decode_float_golden(name):
    """Decode a golden file of the float arithmetic (coder revision 5), or skip where it cannot
    decode: such a file decodes only where the float network gives the writer's outputs, and
    neither the recorded environment nor any kernel switch pins that across CPU families (the
    goldens were written on an AVX-512 CPU; one with AMX and AVX-512 FP16 kernels computes other
    last bits at every ISA cap tried). That is the non-portability revision 6 removes. Before
    skipping, the same data must round-trip in revision 5 here: the float codec itself works."""
    blob = open(os.path.join(GOLDEN, name + ".bfn"), "rb").read()
    header, _ = read(blob)
    if header.batches and header.environment_digest != environment_digest(environment()):
        pytest.skip(f"written in {header.environment}, not this environment")
    x = np.load(os.path.join(GOLDEN, name + ".npy"))
    try:
        return header, bfn_codec.decompress(blob)
    except FormatError as e:
        if "network outputs differ" not in str(e):
            raise
    again = bfn_codec.compress(x, model="fmnist-binary", mode="bfn", portable=False)
    assert read(again)[0].coder_revision == 5 and np.array_equal(bfn_codec.decompress(again), x)
    pytest.skip("this CPU's float kernels give other network outputs than the golden file's writer's")


@pytest.mark.parametrize("name", ["v2-fallback-3", "v2-fmnist-binary-40"])
@pytest.mark.slow
def test_version_2_files_still_decode(name):
    """Files written by 0.1.0 (container version 2, full SHA-256 sums, fingerprint in words)
    decode with this release, the bundled model found by name or by its weights' hash."""
    header, decoded = _decode_float_golden(name)
    assert header.version == 2
    assert np.array_equal(decoded, np.load(os.path.join(GOLDEN, name + ".npy")))


@pytest.mark.slow
def test_version_3_writes_the_same_stream_as_version_2():
    """Only the header changed between container versions 2 and 3: the same images at the same
    settings give the same ANS words, so no probability moved."""
    from bfn_codec.data import binarise

    old = open(os.path.join(GOLDEN, "v2-fmnist-binary-40.bfn"), "rb").read()
    h2, words2 = read(old)
    _decode_float_golden("v2-fmnist-binary-40")  # skips where this CPU cannot reproduce it
    x = binarise(np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))[:40])
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(h2.threads)
    try:
        new = bfn_codec.compress(x, model="fmnist-binary", mode="bfn", portable=False)  # revision 5
    finally:
        torch.set_num_threads(threads)
    h3, words3 = read(new)
    assert h3.version == 3 and words3 == words2 and h3.batches == h2.batches
    assert h3.data_hash == h2.data_hash[:8] and h3.model_hash == h2.model_hash[:8] and h3.model_id == ""
    assert len(new) - len(words3) < 48 + 2 * len(_rle(h3.batches)) + 1


def test_magic_is_checked_first():
    with pytest.raises(FormatError, match="bad magic"):
        bfn_codec.decompress(b"\x89PNG\r\n\x1a\n" + bytes(100))
    assert MAGIC == b"BFN\x1a"


# ----- determinism across processes and thread counts ------------------------------------------
SCRIPT = """
import sys, numpy as np, torch
torch.set_num_threads(int(sys.argv[1]))
import bfn_codec
from bfn_codec.models import load_model
model = load_model(sys.argv[2])
if sys.argv[3] == "enc":
    x = np.load(sys.argv[4])
    open(sys.argv[5], "wb").write(bfn_codec.compress(x, model=model, steps=6, mode="bfn"))
else:
    np.save(sys.argv[5], bfn_codec.decompress(open(sys.argv[4], "rb").read(), model=model))
"""


@pytest.mark.slow
def test_decoding_in_another_process_with_another_thread_count(tmp_path):
    import torch

    from conftest import tiny_network
    from bfn_codec.models import make_flow

    model = tiny_network(make_flow({"data_type": "discretised", "K": 256}), shape=(1, 8, 8), scale=0.2)
    model.save(tmp_path / "m")
    x = np.random.default_rng(0).integers(0, 256, (40, 8, 8)).astype(np.uint8)
    np.save(tmp_path / "x.npy", x)
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    run = lambda *a: subprocess.run([sys.executable, str(script), *map(str, a)], capture_output=True, timeout=300)
    r = run(2, tmp_path / "m", "enc", tmp_path / "x.npy", tmp_path / "x.bfn")
    assert r.returncode == 0, r.stderr
    r = run(1, tmp_path / "m", "dec", tmp_path / "x.bfn", tmp_path / "y.npy")
    assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), x)
    del torch


# ----- files -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_interrupted_compress_leaves_no_partial_output(tmp_path):
    x = np.random.default_rng(0).integers(0, 2, (3000, 28, 28)).astype(np.uint8)
    np.save(tmp_path / "big.npy", x)
    import threading

    for sig in (signal.SIGINT, signal.SIGTERM):
        # PYTHONFAULTHANDLER: if the child ever ignores the signal, SIGABRT below makes it print
        # every thread's Python stack, so a failure says where it was stuck
        # preexec_fn: a job started in the background by a non-interactive shell (`cmd &`) inherits
        # SIGINT ignored, and Python then installs no KeyboardInterrupt handler, so the child would
        # rightly ignore Ctrl-C (found that way: SigIgn had SIGINT set). Give it a terminal's default.
        p = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), "compress", str(tmp_path / "big.npy"),
                              "--mode", "bfn"], stderr=subprocess.PIPE, env={**os.environ, "PYTHONFAULTHANDLER": "1", "OMP_NUM_THREADS": "1"},
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # signal only once coding has begun (its progress bar is on stderr): on a loaded machine a
        # fixed delay could land in the interpreter's own start-up (torch import)
        lines, started = [], threading.Event()

        def read():
            for line in p.stderr:
                lines.append(line)
                if b"compress [" in line:
                    started.set()
            started.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert started.wait(timeout=120), b"".join(lines)
        time.sleep(1.0)
        p.send_signal(sig)
        try:
            p.wait(timeout=120)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGABRT)
            p.wait(timeout=30)
            reader.join(timeout=10)
            pytest.fail(f"compress did not exit within 120 s of {sig!r}; its stderr:\n"
                        + b"".join(lines)[-6000:].decode(errors="replace"))
        reader.join(timeout=10)
        err = b"".join(lines)
        assert p.returncode != 0
        assert b"Traceback" not in err
        assert sorted(os.listdir(tmp_path)) == ["big.npy"], os.listdir(tmp_path)


def test_existing_output_is_never_overwritten_without_force(tmp_path):
    from bfn_codec.files import write_output_atomic
    from bfn_codec.data import DataError

    target = tmp_path / "out.bin"
    target.write_bytes(b"precious")
    with pytest.raises(DataError, match="already exists"):
        write_output_atomic(str(target), b"new", force=False)
    assert target.read_bytes() == b"precious"
    write_output_atomic(str(target), b"new", force=True)
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_unknown_model_in_header_lists_the_available_ones(files):
    _, samples = files
    blob = _rewrite(samples[0][0], model_id="no-such-model")
    with pytest.raises(bfn_codec.ModelError, match="available"):
        bfn_codec.decompress(blob)


def test_weights_load_through_safetensors_only(tmp_path):
    from conftest import tiny_network
    from bfn_codec.models import load_model, make_flow

    model = tiny_network(make_flow({"data_type": "discrete", "K": 2}))
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(bfn_codec.ModelError, match="cannot load weights"):
        load_model(tmp_path / "m")
