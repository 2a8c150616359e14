"""Training, checkpoints, evaluation, sampling and the command line."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import bfn_codec
from bfn_codec.revisions import PORTABLE_REVISION
from bfn_codec.cli import main
from bfn_codec.data import DataError, load_dataset, read_idx, validation_split
from bfn_codec.models import ModelError, load_model
from bfn_codec.train import learning_rate, train, validation_loss

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_NET = {"kind": "unet", "channels": 8, "channel_mult": [1], "num_res_blocks": 1, "unshuffle": 2,
            "attention": False, "dropout": 0.0}


def structured_binary(N=512, seed=0):
    """8x8 binary images with structure a model can learn (random bars on a fixed frame)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((N, 8, 8), np.uint8)
    x[:, 0, :] = 1
    x[:, :, 0] = 1
    rows = rng.integers(2, 7, N)
    x[np.arange(N), rows, 2:7] = 1
    return x


@pytest.fixture(scope="module")
def npy_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "bars.npy"
    np.save(path, structured_binary())
    return str(path)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, npy_data):
    out = tmp_path_factory.mktemp("run") / "tiny"
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    train(tr, va, out, steps=60, batch_size=32, lr=3e-3, seed=0, network=TINY_NET,
          validate_every=1000, checkpoint_every=30, progress=False, log=lambda m: None)
    return str(out)


def test_loss_falls_during_a_short_training_run(npy_data, tmp_path):
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    va.images = tr.images[:100]  # more items for a tighter estimate
    model, _ = train(tr, va, tmp_path / "a", steps=1, batch_size=32, lr=3e-3, network=TINY_NET,
                     progress=False, log=lambda m: None)
    before = validation_loss(load_model(tmp_path / "a"), va, n_items=100, repeats=8)[0]
    train(tr, va, tmp_path / "a", steps=80, batch_size=32, lr=3e-3, network=TINY_NET, resume=True,
          progress=False, log=lambda m: None)
    after = validation_loss(load_model(tmp_path / "a"), va, n_items=100, repeats=8)[0]
    assert after < 0.7 * before


def test_fine_tuning_with_the_discrete_time_loss_lowers_it(tiny_run, npy_data, tmp_path):
    """--loss-steps n: resume from weights and train on L^n + L^r; its validation value (same
    items, same random numbers) falls and the history records which loss was validated."""
    import shutil

    run = tmp_path / "ft"
    shutil.copytree(tiny_run, run)
    (run / "train_state.safetensors").unlink()
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    va.images = tr.images[:100]
    # on the codec's time grid t_i = (i/n)^2
    before = validation_loss(load_model(run), va, n_items=100, repeats=8, loss_steps=4, grid_power=2.0)[0]
    train(tr, va, run, steps=140, batch_size=32, lr=3e-3, network=TINY_NET, resume=True,
          validate_every=80, progress=False, log=lambda m: None, loss_steps=4, grid_power=2.0)
    after = validation_loss(load_model(run), va, n_items=100, repeats=8, loss_steps=4, grid_power=2.0)[0]
    assert after < 0.9 * before, (before, after)
    info = json.loads((run / "config.json").read_text())["info"]["training"]
    assert info["history"][-1]["metric"] == "L^4+L^r (grid p=2)" and "best_val_L4_bits_per_dim_p2" in info
    assert info["loss"] == {"steps": 4, "grid_power": 2.0}


def test_checkpoint_save_load_gives_identical_outputs(tiny_run, tmp_path):
    a = load_model(tiny_run)
    a.save(tmp_path / "copy")
    b = load_model(tmp_path / "copy")
    S = torch.randn(3, 64, 1, dtype=torch.float64) * 3
    assert np.array_equal(a.output_probs(S, 0.4), b.output_probs(S, 0.4))
    assert a.weights_sha256 == b.weights_sha256
    cfg = json.loads(open(os.path.join(tiny_run, "config.json")).read())
    assert cfg["info"]["training"]["seed"] == 0 and cfg["flow"]["data_type"] == "discrete"
    assert not any(f.endswith((".pt", ".pkl", ".pth")) for f in os.listdir(tiny_run))


def test_resume_continues_from_the_checkpoint(tiny_run, npy_data, tmp_path):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(tiny_run, run)
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    train(tr, va, run, steps=70, batch_size=32, network=TINY_NET, resume=True, progress=False,
          log=lambda m: None)
    assert json.loads((run / "config.json").read_text())["info"]["training"]["step"] == 70


def test_cosine_learning_rate_anneal():
    sched = {"kind": "cosine", "lr": 1e-4, "lr_final": 1e-5, "from_step": 1000, "to_step": 2000}
    assert learning_rate(100, 1e-4) == pytest.approx(5e-5)  # warm-up at the start of a run
    assert learning_rate(1000, 1e-4, sched) == pytest.approx(1e-4)
    assert learning_rate(1500, 1e-4, sched) == pytest.approx(5.5e-5)
    assert learning_rate(2000, 1e-4, sched) == pytest.approx(1e-5)
    lrs = [learning_rate(s, 1e-4, sched) for s in range(1000, 2001, 50)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_annealing_resume_keeps_its_schedule(tiny_run, npy_data, tmp_path):
    import shutil

    run = tmp_path / "a"
    shutil.copytree(tiny_run, run)
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    kw = dict(batch_size=8, network=TINY_NET, resume=True, progress=False, log=lambda m: None,
              lr=1e-3, lr_final=1e-4, command="anneal", validate_every=1000)
    train(tr, va, run, steps=65, **kw)  # interrupted: stops at 65 of 70
    train(tr, va, run, steps=70, **kw)  # resumed with the same command (and its --steps)
    info = json.loads((run / "config.json").read_text())["info"]["training"]
    assert info["step"] == 70
    assert info["lr_schedule"]["from_step"] == 60 and info["lr_schedule"]["lr_final"] == 1e-4
    # a later constant-rate command drops the schedule and records the annealing one
    train(tr, va, run, steps=72, batch_size=8, network=TINY_NET, resume=True, progress=False,
          log=lambda m: None, command="constant")
    info = json.loads((run / "config.json").read_text())["info"]["training"]
    assert "lr_schedule" not in info and info["earlier_commands"][-1]["command"] == "anneal"


def test_trained_tiny_model_roundtrip(tiny_run, npy_data):
    model = load_model(tiny_run)
    x = np.load(npy_data)[:30]
    blob = bfn_codec.compress(x, model=model, steps=8, mode="bfn")
    assert np.array_equal(bfn_codec.decompress(blob, model=tiny_run), x)


def test_calibrate_makes_a_trained_model_write_portable_files(tiny_run, npy_data, tmp_path):
    """Your own model: revision 5 files until `bfn-codec calibrate`, revision 6 after it; the
    calibration records the weights it is for, and retraining (new weights) drops it."""
    import shutil

    from bfn_codec.container import read

    run = tmp_path / "mine"
    shutil.copytree(tiny_run, run)
    x = np.load(npy_data)[:200]
    assert read(bfn_codec.compress(x, model=str(run), steps=8, mode="bfn"))[0].coder_revision == 5
    res = CliRunner().invoke(main, ["calibrate", str(run), "--dataset", f"npy:{npy_data}", "--items", "16"])
    assert res.exit_code == 0, res.output
    cal = json.loads((run / "config.json").read_text())["integer"]
    assert cal["weights_sha256"] == load_model(str(run)).weights_sha256 and "calibrate" in cal["command"]
    blob = bfn_codec.compress(x, model=str(run), steps=8, mode="bfn")
    assert read(blob)[0].coder_revision == PORTABLE_REVISION
    assert np.array_equal(bfn_codec.decompress(blob, model=str(run)), x)
    # a narrower calibration: another model for new files, and the first one is kept for the old
    res = CliRunner().invoke(main, ["calibrate", str(run), "--dataset", f"npy:{npy_data}", "--items", "16",
                                    "--act-bits", "10", "--weight-bits", "7"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["integer"]["act_bits"], cfg["integer"]["weight_bits"]) == (10, 7)
    assert cfg["integer_earlier"] == [cal]
    blob2 = bfn_codec.compress(x, model=str(run), steps=8, mode="bfn")
    assert read(blob2)[0].model_hash != read(blob)[0].model_hash
    for b in (blob, blob2):
        assert np.array_equal(bfn_codec.decompress(b, model=str(run)), x)
    model = load_model(str(run))
    with torch.no_grad():
        model.net.conv_out.bias.add_(0.01)
    model.save(run)
    cfg = json.loads((run / "config.json").read_text())
    assert "integer" not in cfg and "integer_earlier" not in cfg


def test_validation_split_is_deterministic():
    a, b = validation_split(1000)
    c, d = validation_split(1000)
    assert np.array_equal(a, c) and np.array_equal(b, d) and len(b) == 10
    assert len(np.intersect1d(a, b)) == 0


def test_idx_reader_validates(tmp_path):
    p = tmp_path / "x.idx"
    p.write_bytes(b"\x00\x00\x08\x03" + (2).to_bytes(4, "big") + (2).to_bytes(4, "big") * 2 + bytes(8))
    assert read_idx(p).shape == (2, 2, 2)
    p.write_bytes(b"\x00\x00\x08\x03" + (1000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + bytes(8))
    with pytest.raises(DataError, match="IDX header"):
        read_idx(p)


def test_missing_fashion_mnist_names_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("BFN_FMNIST_DIR", str(tmp_path))
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        load_dataset("fmnist", "test")


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(ModelError, match="available"):
        load_model("no-such-model")


# ----- command line ----------------------------------------------------------------------------
COMMANDS = ["train", "loss", "sample", "compress", "decompress", "info", "test", "models", "bundle", "demo",
            "calibrate"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_command_has_help(cmd):
    res = CliRunner().invoke(main, [cmd, "--help"])
    assert res.exit_code == 0 and "Usage" in res.output and len(res.output) > 200


@pytest.mark.parametrize("args", [["-r", "100"], ["-r", "0"], ["--steps", "0"], ["--steps", "20000"],
                                  ["--grid-power", "10"]])
def test_compress_option_ranges_are_what_a_file_can_carry(tmp_path, args):
    """Out-of-range codec settings are a usage error (exit 2) before anything is written."""
    src = tmp_path / "x.npy"
    np.save(src, np.zeros((2, 28, 28), np.uint8))
    res = CliRunner().invoke(main, ["compress", str(src), *args])
    assert res.exit_code == 2 and "range" in res.output, res.output
    assert not (tmp_path / "x.npy.bfn").exists()


def test_cli_train_loss_sample(tmp_path, npy_data):
    r = CliRunner()
    out = tmp_path / "m"
    res = r.invoke(main, ["train", "--dataset", f"npy:{npy_data}", "--out", str(out), "--steps", "12",
                          "--channels", "8", "--channel-mult", "1", "--validate-every", "6",
                          "--checkpoint-every", "6", "--batch-size", "16"])
    assert res.exit_code == 0, res.output
    assert "validation L^inf" in res.output and (out / "model.safetensors").is_file()
    res = r.invoke(main, ["loss", "--model", str(out), "--dataset", f"npy:{npy_data}", "--steps", "5",
                          "--limit", "50", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["n_step_plus_reconstruction_bits_per_dim"]["mean"] > 0
    png = tmp_path / "s.png"
    res = r.invoke(main, ["sample", "--model", str(out), "-n", "4", "-o", str(png), "--steps", "5"])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_stops_at_its_time_budget_with_a_checkpoint(tmp_path, npy_data):
    """--max-minutes ends a run long before --steps, writes a checkpoint of the step it reached
    (not a multiple of --checkpoint-every) and --resume continues from it."""
    r, out = CliRunner(), tmp_path / "m"
    common = ["train", "--dataset", f"npy:{npy_data}", "--out", str(out), "--channels", "8", "--channel-mult", "1",
              "--validate-every", "1000", "--checkpoint-every", "1000", "--batch-size", "8"]
    res = r.invoke(main, [*common, "--steps", "5000", "--max-minutes", "0.0001"])
    assert res.exit_code == 0, res.output
    assert "time budget of 0.0001 minutes is spent" in res.output
    step = json.loads((out / "config.json").read_text())["info"]["training"]["step"]
    assert 1 <= step < 1000
    res = r.invoke(main, [*common, "--steps", str(step + 2), "--resume"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["info"]["training"]["step"] == step + 2


def run_cli(*args, input_bytes=None):
    """The command line in a child process, torch on one thread (two would fight pytest's own)."""
    return subprocess.run([sys.executable, os.path.join(ROOT, "cli.py"), *args], input=input_bytes,
                          capture_output=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_cli_compress_decompress_files(tmp_path, tiny_run, npy_data):
    src = tmp_path / "x.npy"
    np.save(src, np.load(npy_data)[:200])
    res = run_cli("compress", str(src), "--model", tiny_run, "--steps", "5", "-q", "--mode", "bfn")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "x.npy.bfn").is_file() and src.is_file()  # input kept
    res = run_cli("compress", str(src), "--model", tiny_run, "--steps", "5", "-q")
    assert res.returncode == 1 and b"already exists" in res.stderr and b"Traceback" not in res.stderr
    src.rename(tmp_path / "orig.npy")
    res = run_cli("decompress", str(tmp_path / "x.npy.bfn"), "-q")
    assert res.returncode == 1 and b"no model" in res.stderr  # tiny model is not bundled
    res = run_cli("decompress", str(tmp_path / "x.npy.bfn"), "--model", tiny_run, "-q")
    assert res.returncode == 0, res.stderr
    assert np.array_equal(np.load(tmp_path / "x.npy"), np.load(tmp_path / "orig.npy"))
    res = run_cli("test", str(tmp_path / "x.npy.bfn"), "--model", tiny_run, "-q")
    assert res.returncode == 0 and b"OK" in res.stdout
    res = run_cli("info", str(tmp_path / "x.npy.bfn"), "--model", tiny_run, "--json", "--estimate")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["items"] == 200 and info["mode"] == "bfn" and "overhead_percent" in info
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_cli_stdin_stdout(tiny_run, npy_data):
    import io

    buf = io.BytesIO()
    np.save(buf, np.load(npy_data)[:150])
    res = run_cli("compress", "-", "--model", tiny_run, "--steps", "3", "-q", "--mode", "bfn",
                  input_bytes=buf.getvalue())
    assert res.returncode == 0, res.stderr
    back = run_cli("decompress", "-", "--model", tiny_run, "-q", input_bytes=res.stdout)
    assert back.returncode == 0, back.stderr
    assert np.array_equal(np.load(io.BytesIO(back.stdout)), np.load(npy_data)[:150])


@pytest.mark.parametrize("payload,message", [(b"", b"not a bfn-codec file"), (b"BFN\x1a" + bytes(40), b"version"),
                                             (b"hello world", b"not a bfn-codec file")])
def test_cli_bad_compressed_input_is_a_one_line_error(tmp_path, payload, message):
    p = tmp_path / "bad.bfn"
    p.write_bytes(payload)
    res = run_cli("decompress", str(p), "-q")
    assert res.returncode == 1 and message in res.stderr
    assert b"Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_bad_raw_input_is_a_one_line_error(tmp_path):
    # an array of another dtype is not coded as values: as a file of bytes, saying why
    p = tmp_path / "x.npy"
    np.save(p, np.zeros((2, 4, 4), np.float32))
    res = run_cli("compress", str(p))
    assert res.returncode == 0 and b"uint8" in res.stderr and b"file of bytes" in res.stderr
    res = run_cli("-d", "-c", str(p) + ".bfn")
    assert res.returncode == 0 and res.stdout == p.read_bytes()
    res = run_cli("compress", str(tmp_path / "missing.npy"))
    assert res.returncode == 1 and b"cannot read" in res.stderr


def test_resume_from_weights_alone(tiny_run, npy_data, tmp_path):
    """A bundled model (weights + config, no optimiser state) can be trained further."""
    import shutil

    run = tmp_path / "w"
    run.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(os.path.join(tiny_run, name), run / name)
    tr, va = load_dataset(f"npy:{npy_data}", "train"), load_dataset(f"npy:{npy_data}", "validation")
    train(tr, va, run, steps=65, batch_size=32, network=TINY_NET, resume=True, progress=False,
          log=lambda m: None)
    assert json.loads((run / "config.json").read_text())["info"]["training"]["step"] == 65
    assert (run / "train_state.safetensors").is_file()


@pytest.mark.slow
def test_torchrun_on_two_cpu_processes_is_the_single_process_run_split_in_two(npy_data, tmp_path):
    """DDP (gloo) on 2 ranks with a global batch of 16 against one process with the same batch:
    the ranks end with identical weights (recorded by rank 0), and the losses and the weights
    match the single-process run to float tolerance (only the all-reduce's summation differs)."""
    from safetensors.numpy import load_file

    common = ["--dataset", f"npy:{npy_data}", "--steps", "4", "--batch-size", "16", "--lr", "3e-3",
              "--channels", "8", "--channel-mult", "1", "--validate-every", "2", "--checkpoint-every", "2",
              "--seed", "3", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run([sys.executable, "-m", "bfn_codec", "train", "--out", str(tmp_path / "one"), *common],
                         capture_output=True, text=True, timeout=600, env=env)
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "bfn_codec", "train", "--out", str(tmp_path / "two"), *common],
                         capture_output=True, text=True, timeout=600, env=env)
    assert two.returncode == 0, two.stderr[-3000:]
    cfg1, cfg2 = (json.loads((tmp_path / d / "config.json").read_text())["info"]["training"] for d in ("one", "two"))
    dist = cfg2["distributed"]
    assert dist["world_size"] == 2 and dist["backend"] == "gloo" and "distributed" not in cfg1
    assert [r["rows"] for r in dist["ranks"]] == ["0::2", "1::2"]
    assert dist["ranks"][0]["weights_sha256"] == dist["ranks"][1]["weights_sha256"]
    for h1, h2 in zip(cfg1["history"], cfg2["history"], strict=True):
        assert h1["step"] == h2["step"]
        assert h2["train_bits_per_dim"] == pytest.approx(h1["train_bits_per_dim"], rel=1e-5)
        assert h2["val_bits_per_dim"] == pytest.approx(h1["val_bits_per_dim"], rel=1e-4)
    w1, w2 = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("one", "two"))
    assert w1.keys() == w2.keys()
    for k in w1:
        np.testing.assert_allclose(w2[k], w1[k], rtol=0, atol=1e-5, err_msg=k)
    # --resume continues the data-parallel run from rank 0's checkpoint
    more = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "bfn_codec", "train", "--out", str(tmp_path / "two"), "--resume",
                           *[a if a != "4" else "6" for a in common]],
                          capture_output=True, text=True, timeout=600, env=env)
    assert more.returncode == 0, more.stderr[-3000:]
    cfg3 = json.loads((tmp_path / "two" / "config.json").read_text())["info"]["training"]
    assert cfg3["step"] == 6 and cfg3["history"][-1]["step"] == 6


def test_cli_loss_uses_the_models_own_time_grid_unless_told(tmp_path):
    """`loss -n 10` on a bundled model estimates L^n + L^r on the grid its files are coded with
    (info.codec.grid_power, 2 for fmnist): the same numbers as --grid-power 2, not the uniform
    grid's."""
    from bfn_codec.api import model_defaults
    from bfn_codec.data import sample_images

    path = tmp_path / "x.npy"
    np.save(path, sample_images()[:16])
    r = CliRunner()

    def run(*extra):
        res = r.invoke(main, ["loss", "--model", "fmnist", "--dataset", f"npy:{path}", "--split", "train",
                              "--steps", "10", "--limit", "16", "--json", *extra])
        assert res.exit_code == 0, res.output
        return json.loads(res.output)

    default, explicit, uniform = run(), run("--grid-power", "2"), run("--grid-power", "1")
    assert model_defaults(load_model("fmnist"))["grid_power"] == 2.0 == default["grid_power"]
    key = "n_step_plus_reconstruction_bits_per_dim"
    assert default[key] == explicit[key] and uniform["grid_power"] == 1.0
    assert uniform["n_step_bits_per_dim"]["mean"] != default["n_step_bits_per_dim"]["mean"]
