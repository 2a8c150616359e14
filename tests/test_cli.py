"""The command line as zstd users expect it: no tracebacks, no surprises, small files stay small.

In-process (CliRunner) where possible; the few subprocess tests run torch on one thread.
"""
import io
import json
import os
import pty
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import bfn_codec
from bfn_codec.baselines import classical_sizes
from bfn_codec.cli import main
from bfn_codec.container import _rle, _varint, read
from bfn_codec.data import binarise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def cli(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def one_line_error(res, *fragments):
    assert res.exit_code == 1, (res.exit_code, res.output)
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    for fragment in fragments:
        assert fragment in res.output, res.output


@pytest.fixture
def images(tmp_path):
    np.save(tmp_path / "four.npy", SAMPLE[:4])
    np.save(tmp_path / "one.npy", SAMPLE[0])
    np.save(tmp_path / "bin.npy", binarise(SAMPLE[:3]))
    np.save(tmp_path / "empty.npy", SAMPLE[:0])
    return tmp_path


def no_work(monkeypatch):
    """Make the coders fail loudly if reached: the checks must come before any work."""
    import bfn_codec.api as api

    def boom(*a, **k):
        raise AssertionError("coding started before the output was checked")

    for name in ("compress", "decompress", "compress_with_stats", "decompress_with_stats"):
        monkeypatch.setattr(api, name, boom)


# ----- 1. output = input, unwritable outputs -------------------------------------------------------
@pytest.mark.parametrize("force", [[], ["-f"]])
def test_output_that_is_the_input_is_refused_even_with_force(images, monkeypatch, force):
    src = images / "one.npy"
    before = src.read_bytes()
    os.link(src, images / "hard.npy")
    os.symlink(src, images / "soft.npy")
    no_work(monkeypatch)
    for out in (src, images / "hard.npy", images / "soft.npy", images / "." / "one.npy"):
        one_line_error(cli("compress", *force, src, "-o", out), "would overwrite the input")
    one_line_error(cli("decompress", *force, src, "-o", src), "would overwrite the input")
    assert src.read_bytes() == before


def test_unwritable_output_location_fails_before_any_work(images, monkeypatch):
    no_work(monkeypatch)
    one_line_error(cli("compress", images / "four.npy", "-o", "/nonexistent/dir/x.bfn"),
                   "directory /nonexistent/dir does not exist")
    one_line_error(cli("decompress", images / "four.npy", "-o", "/nonexistent/dir/x.npy"),
                   "does not exist")
    one_line_error(cli("compress", images / "four.npy", "-o", images), "is a directory")
    (images / "four.npy.bfn").write_bytes(b"precious")
    one_line_error(cli("compress", images / "four.npy"), "already exists; use -f")
    assert (images / "four.npy.bfn").read_bytes() == b"precious"


def test_filesystem_errors_of_the_other_commands_are_one_line_errors(tmp_path):
    one_line_error(cli("sample", "--model", "fmnist-binary", "-n", 1, "--steps", 1, "-o", "/nonexistent/s.png"),
                   "/nonexistent/s.png", "No such file")


def test_missing_input_and_bad_input_are_one_line_errors(images):
    one_line_error(cli("compress", images / "missing.npy"), "cannot read")
    one_line_error(cli("decompress", images / "four.npy"), "not a bfn-codec file")
    assert not [f for f in os.listdir(images) if f.endswith(".tmp")]


# ----- 2. devices --------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["compress", "decompress", "test"])
def test_a_device_torch_lacks_is_a_one_line_error(images, monkeypatch, command):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has a CUDA device")
    no_work(monkeypatch)
    one_line_error(cli(command, images / "four.npy", "--device", "cuda"), torch.__version__, "CUDA build")
    if not torch.backends.mps.is_available():
        one_line_error(cli(command, images / "four.npy", "--device", "mps"), "MPS")


# ----- 3. binary data and terminals ----------------------------------------------------------------
def _run_on_a_terminal(args):
    """Run the CLI with its standard output on a pseudo-terminal; (exit code, what it printed)."""
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, os.path.join(ROOT, "cli.py"), *map(str, args)], stdout=slave,
                         stderr=subprocess.PIPE, env=ENV)
    os.close(slave)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the terminal's other side closed
            break
        if not chunk:
            break
        shown += chunk
    err = p.communicate(timeout=120)[1]
    os.close(master)
    return p.returncode, shown, err


def test_binary_output_to_a_terminal_is_refused_unless_forced(images):
    code, shown, err = _run_on_a_terminal(["compress", "-c", "-q", images / "one.npy"])
    assert code == 1 and b"refusing to write compressed data to a terminal" in err and shown == b""
    assert b"Traceback" not in err
    code, shown, err = _run_on_a_terminal(["compress", "-c", "-q", "-f", images / "one.npy"])
    assert code == 0 and shown.startswith(b"BFN\x1a"), err


# ----- 4. permissions and times ------------------------------------------------------------------
def test_outputs_take_the_inputs_permissions_and_modification_time(images):
    src = images / "four.npy"
    os.chmod(src, 0o640)
    os.utime(src, ns=(1_500_000_000_000_000_000, 1_600_000_000_123_456_789))
    assert cli("compress", "-q", src).exit_code == 0
    packed = images / "four.npy.bfn"
    assert oct(packed.stat().st_mode & 0o777) == oct(0o640)
    assert packed.stat().st_mtime_ns == 1_600_000_000_123_456_789
    os.chmod(packed, 0o604)
    res = cli("decompress", "-q", packed, "-o", images / "back.npy")
    assert res.exit_code == 0, res.output
    back = images / "back.npy"
    assert oct(back.stat().st_mode & 0o777) == oct(0o604)
    assert back.stat().st_mtime_ns == packed.stat().st_mtime_ns
    assert np.array_equal(np.load(back), SAMPLE[:4])


def test_an_output_from_standard_input_gets_the_default_permissions(images):
    old = os.umask(0o027)
    try:
        res = cli("compress", "-q", "-", "-o", images / "s.bfn", input=(images / "one.npy").read_bytes())
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert oct((images / "s.bfn").stat().st_mode & 0o777) == oct(0o640)


# ----- 5. small files stay small -----------------------------------------------------------------
def _npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


# the binary model seeds its chain with 22 images, the 8-bit one with 3: two or three chain items each
@pytest.mark.parametrize("model,data", [("fmnist-binary", binarise(SAMPLE[:24])), ("fmnist", SAMPLE[:6])])
def test_the_fixed_cost_of_a_bundled_model_file_is_under_48_bytes(model, data):
    blob = bfn_codec.compress(data, model=model, mode="bfn")
    header, payload = read(blob)
    assert header.batches and header.model_id == ""  # a bundled model is named by its hash alone
    runs = _rle(header.batches)  # the batch schedule grows with the input: not a fixed cost
    schedule = len(_varint(len(runs))) + sum(len(_varint(v)) + len(_varint(c)) for v, c in runs)
    # the recorded trajectory cost grows with the input too (a varint of its bits)
    trajectory = len(_varint(header.trajectory_bits))
    assert trajectory <= 3 and len(blob) - len(payload) - schedule - trajectory < 48, (len(blob) - len(payload), schedule)
    assert np.array_equal(bfn_codec.decompress(blob), data)


@pytest.mark.parametrize("mode", ["auto", "bfn", "fallback"])
@pytest.mark.parametrize("count", [0, 1, 4])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "8bit"])
def test_tiny_inputs_cost_at_most_30_bytes_over_xz_and_zstd(mode, count, binary):
    data = binarise(SAMPLE[:count]) if binary else SAMPLE[:count]
    if count == 4 and not binary and mode == "bfn":
        pytest.skip("the chain on 4 8-bit images is covered by the fixed-cost test")
    blob = bfn_codec.compress(data, mode=mode)
    sizes = classical_sizes(_npy_bytes(data))
    best = min(v for v in sizes.values() if v is not None)
    assert len(blob) <= best + 30, (len(blob), sizes)
    back = bfn_codec.decompress(blob)
    assert back.shape == data.shape and np.array_equal(back, data)


def test_empty_input_reports_no_bits_per_value(images):
    res = cli("compress", images / "empty.npy")
    assert res.exit_code == 0, res.output
    assert "0 values -> 25 bytes" in res.output and "bits/value" not in res.output
    res = cli("-l", images / "empty.npy.bfn")
    assert res.exit_code == 0 and "achieved_bits_per_dim: -" in res.output, res.output
    assert np.load(io.BytesIO(cli("-d", "-c", "-f", images / "empty.npy.bfn").stdout_bytes)).shape == (0, 28, 28)


# ----- 7. zstd habits ----------------------------------------------------------------------------
def test_several_inputs_each_to_its_own_output_and_failures_do_not_stop_the_rest(images):
    res = cli(images / "one.npy", images / "missing.npy", images / "bin.npy", images / "empty.npy")
    assert res.exit_code == 1
    lines = res.output.strip().splitlines()
    assert sum("->" in line for line in lines) == 3 and "1 of 4 files failed" in lines[-1]
    assert sum(line.startswith("Error:") and "missing.npy" in line for line in lines) == 1
    for name, original in (("one", SAMPLE[0]), ("bin", binarise(SAMPLE[:3])), ("empty", SAMPLE[:0])):
        assert (images / f"{name}.npy.bfn").is_file()
        os.rename(images / f"{name}.npy", images / f"{name}.orig.npy")
    res = cli("-d", "-q", images / "one.npy.bfn", images / "bin.npy.bfn", images / "empty.npy.bfn")
    assert res.exit_code == 0 and res.output == "", res.output
    for name in ("one", "bin", "empty"):
        assert np.array_equal(np.load(images / f"{name}.npy"), np.load(images / f"{name}.orig.npy"))


def test_zstd_style_flags(images):
    src = images / "four.npy"
    res = cli("-c", "-q", src)
    assert res.exit_code == 0 and res.stdout_bytes.startswith(b"BFN\x1a")
    (images / "x.bfn").write_bytes(res.stdout_bytes)
    res = cli("-t", images / "x.bfn")
    assert res.exit_code == 0 and "OK" in res.output
    res = cli("-l", images / "x.bfn")  # info: the header and the achieved bits, at once
    assert res.exit_code == 0 and "fmnist" in res.output and "achieved_bits_per_dim" in res.output, res.output
    assert "overhead_percent" not in res.output
    res = cli("info", "--estimate", images / "x.bfn")  # and the model's own loss on the same items
    assert res.exit_code == 0 and "overhead_percent" in res.output, res.output
    res = cli("-d", "-c", "-f", images / "x.bfn")
    assert np.array_equal(np.load(io.BytesIO(res.stdout_bytes)), SAMPLE[:4])
    res = cli("-v", src, "-o", images / "v.bfn")
    assert res.exit_code == 0 and "seed" in res.output and "network" in res.output, res.output
    res = cli("--rm", "-q", images / "bin.npy")
    assert res.exit_code == 0 and not (images / "bin.npy").exists() and (images / "bin.npy.bfn").exists()
    res = cli("-d", "-n", "5", images / "x.bfn")
    assert res.exit_code == 2 and "for compressing" in res.output
    res = cli("-c", src, images / "one.npy")
    assert res.exit_code == 2 and "one input" in res.output
    res = cli("-c", "--rm", src)
    assert res.exit_code == 2 and "input is kept" in res.output and src.exists()
    res = cli("compress", "--help")
    for flag in ("-d, --decompress", "-c, --stdout", "-l, --list", "-t, --test", "-q, --quiet", "-v, --verbose",
                 "-f, --force", "-k, --keep", "--rm"):
        assert flag in res.output, flag


def test_info_answers_from_the_header_without_decoding(images, monkeypatch):
    assert cli("-q", images / "four.npy").exit_code == 0
    no_work(monkeypatch)
    for args in (["info"], ["-l"]):
        res = cli(*args, images / "four.npy.bfn")
        assert res.exit_code == 0 and "batches" in res.output and "mode: bfn" in res.output, res.output
    # achieved bits of the chain items against the trajectory cost the encoder recorded
    res = json.loads(cli("info", "--json", images / "four.npy.bfn").output)
    assert res["trajectory_bits_per_dim"] > 0, res
    assert abs(res["chain_bits_per_dim"] / res["trajectory_bits_per_dim"] - 1) < 0.05, res
    assert res["overhead_vs_trajectory_percent"] == pytest.approx(
        100 * (res["chain_bits_per_dim"] / res["trajectory_bits_per_dim"] - 1), abs=1e-3)
    old = os.path.join(ROOT, "tests", "golden", "v2-fmnist-binary-40.bfn")  # written before the field
    res = cli("info", old)
    assert res.exit_code == 0 and "not recorded" in res.output and "--estimate" in res.output, res.output


def test_the_group_passes_files_to_compress_and_keeps_typos_as_typos(images):
    res = cli("compres", "x")
    assert res.exit_code == 2 and "No such command" in res.output
    res = cli("-q", images / "one.npy")
    assert res.exit_code == 0 and (images / "one.npy.bfn").is_file()


# ----- 6. every long step shows progress ---------------------------------------------------------
def test_the_lzma2_fallback_of_a_large_input_shows_progress_and_writes_the_same_stream(capsys, monkeypatch):
    import bfn_codec.seed
    from bfn_codec.seed import seed_bytes as _seed_bytes

    monkeypatch.setattr(bfn_codec.seed, "LZMA_PROGRESS_BYTES", 1 << 16)  # the bar and its chunks, on less data
    rng = np.random.default_rng(0)
    x = (rng.random((400, 28, 28)) < 0.02).astype(np.uint8) * rng.integers(0, 256, (400, 28, 28), np.uint8)
    quiet = _seed_bytes(x, 256)
    capsys.readouterr()
    shown = _seed_bytes(x, 256, progress=True)
    err = capsys.readouterr().err
    assert shown == quiet  # liblzma's stream does not depend on how the input is fed
    assert "lzma2 fallback [" in err and "ETA" in err


# ----- 8. the demo has a yardstick ---------------------------------------------------------------
def test_demo_prints_xz_and_zstd_beside_ours_and_says_what_it_is_doing():
    res = cli("demo", "--limit", 4)
    assert res.exit_code == 0, res.output
    for name in ("fmnist-binary", "fmnist"):
        assert f"{name}: estimating the model's L^n + L^r" in res.output
        line = next(line for line in res.output.splitlines() if line.startswith(f"{name}: 4 images ->"))
        assert "round trip verified" in line
    assert res.output.count("xz -9e") == 2 and res.output.count("zstd -19") == 2


# ----- the bundled models still compress as well as their committed results say ------------------
@pytest.mark.slow
@pytest.mark.parametrize("model,images,result", [
    ("fmnist-binary", 64, "small-files-binary-f1b771f2.json"),
    ("fmnist", 16, "small-files-8bit-7894bafd.json"),
])
def test_bundled_models_code_the_sample_within_one_percent_of_the_committed_result(model, images, result):
    """The first test images (the bundled sample) with each bundled model at its defaults, everything
    in the file counted, against benchmarks/results (written on 2 threads: another thread count
    changes the network's last bits and so the trajectory, by a few bytes, hence the 1%)."""
    import json

    committed = next(r for r in json.load(open(os.path.join(ROOT, "benchmarks", "results", result)))
                     if r["images"] == images)
    data = binarise(SAMPLE[:images]) if model == "fmnist-binary" else SAMPLE[:images]
    blob = bfn_codec.compress(data, model=model)
    assert read(blob)[0].mode == committed["mode"] == "bfn"
    assert len(blob) <= 1.01 * committed["bytes"], (len(blob), committed["bytes"])
    assert np.array_equal(bfn_codec.decompress(blob), data)


def test_listing_a_file_loads_no_torch(images):
    """-l answers from the header: no network, so no torch import (about 0.2 s, not 2)."""
    assert cli("-q", images / "four.npy").exit_code == 0
    code = ("import sys\nfrom bfn_codec.cli import main\nsys.argv = ['bfn-codec', '-l', sys.argv[1]]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "print('torch loaded' if 'torch' in sys.modules else 'no torch')")
    out = subprocess.run([sys.executable, "-c", code, str(images / "four.npy.bfn")], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "mode: bfn" in out.stdout and out.stdout.strip().endswith("no torch"), out


def test_an_nchw_npy_file_round_trips_through_the_command_line(tmp_path):
    src = tmp_path / "nchw.npy"
    np.save(src, SAMPLE[:5, None])  # (N, C, H, W) with C = 1, the bundled models' item shape
    assert cli("-q", src).exit_code == 0
    src.rename(tmp_path / "orig.npy")
    res = cli("-d", "-q", tmp_path / "nchw.npy.bfn")
    assert res.exit_code == 0, res.output
    back = np.load(src)
    assert back.shape == (5, 1, 28, 28) and np.array_equal(back, SAMPLE[:5, None])
