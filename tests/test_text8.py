"""text8-style text (K = 27 characters): the alphabet, the portable K-ary arithmetic, round
trips through the API and the CLI, and the choice between the text8 and the byte alphabet."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from bfn_codec import text8
from bfn_codec.revisions import PORTABLE_REVISION
from bfn_codec.api import compress_bytes, decompress_bytes
from bfn_codec.bytefile import read_bytefile
from bfn_codec.cli import main
from bfn_codec.container import FormatError, read
from bfn_codec.discrete import DiscreteBFN
from fuzzlib import tiny_byte_model, tiny_text8_model

TEXT = b"the receiver guesses the data from noisy messages and the coder pays for its surprise " * 8


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def model():
    return tiny_text8_model(calibrate_on=TEXT)


# ----- the alphabet ------------------------------------------------------------------------------
def test_normalise_lowercases_and_turns_everything_else_into_single_spaces():
    assert text8.normalise(b"  Hello, World!\n\n2nd  line\xc3\xa9t\xc3\xa9 ") == b"hello world nd line t"
    assert text8.normalise(b"") == b"" and text8.normalise(b"...") == b""
    assert text8.is_text8(text8.normalise(bytes(range(256)) * 2))


def test_is_text8_takes_only_lowercase_letters_and_spaces():
    assert text8.is_text8(b"abc xyz") and text8.is_text8(b" ")
    assert not text8.is_text8(b"") and not text8.is_text8(b"Abc") and not text8.is_text8(b"a\nb")


@pytest.mark.parametrize("length", [1, 255, 256, 257, 700])
def test_windows_hold_every_character_once_and_invert(length):
    rng = np.random.default_rng(length)
    data = text8.ALPHABET[0:0] + bytes(rng.choice(np.frombuffer(text8.ALPHABET, np.uint8), length))
    items = text8.to_items(data)
    assert items.shape == (-(-length // 256), 1, 4, 64) and items.max() < 27
    assert text8.from_items(items, length) == data
    assert text8.from_items(items, len(items) * 256)[length:] == b" " * (len(items) * 256 - length)  # padding


def test_characters_use_the_byte_windows_layout():
    items = text8.to_items(b"abcd" + b" " * 252)
    assert items[0, 0, :2, :2].tolist() == [[1, 2], [3, 4]]  # a 2x2 block: 4 consecutive characters
    with pytest.raises(ValueError, match="not in the text8 alphabet"):
        text8.to_items(b"abC")


# ----- the portable arithmetic for K > 2 ----------------------------------------------------------
@pytest.mark.parametrize("K", [3, 27])
def test_exact_network_input_and_output_match_the_float_forms(K):
    flow = DiscreteBFN(K)
    assert np.array_equal(flow._exact_basis(), flow.basis.numpy())
    rng = np.random.default_rng(K)
    S = rng.normal(0, 3, (4, 9, K - 1))
    params = rng.normal(0, 2, (4, 9, K))
    x = flow.net_input_exact(S, 0.5)
    assert np.abs(x - flow.net_input(torch.from_numpy(S), 0.5).numpy()).max() < 1e-14
    lo, p = flow.output_window_exact(params, S, 0.5)
    ref = flow.output_log_probs(torch.from_numpy(params), torch.from_numpy(S), 0.5).exp().numpy()
    assert lo is None and np.abs(p - ref).max() < 1e-14 and np.all(p > 0)
    # the same bits on every call (no reduction whose order could vary)
    assert np.array_equal(p, flow.output_window_exact(params.copy(), S.copy(), 0.5)[1])


def test_exact_softmax_survives_extreme_logits():
    flow = DiscreteBFN(27)
    params = np.zeros((1, 2, 27))
    params[0, 0, 5] = 800.0  # exp would overflow without the shift by the maximum
    params[0, 1, :] = -900.0
    _, p = flow.output_window_exact(params, np.zeros((1, 2, 26)), 1.0)
    assert np.all(np.isfinite(p)) and p[0, 0, 5] == 1.0 and np.allclose(p[0, 1], 1 / 27)


# ----- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("data", [b"a", b"z" * 300, TEXT[:257], TEXT], ids=["one", "repeated", "257", "text"])
def test_text8_round_trip_through_the_chain(model, data):
    blob, stats = compress_bytes(data, model, name="t.txt", steps=3, mode="bfn")
    index = read_bytefile(blob)
    assert index.stream == "bfn" and index.alphabet == "text8" and stats["alphabet"] == "text8"
    inner = read(blob[index.offset:index.offset + index.stream_length])[0]
    assert inner.K == 27 and inner.item_shape == text8.ITEM_SHAPE and inner.count == -(-len(data) // 256)
    assert not inner.batches or inner.coder_revision == PORTABLE_REVISION  # a single window may travel in the seed alone
    assert decompress_bytes(blob, model) == ("t.txt", data)


def test_auto_mode_probes_the_text8_model_and_keeps_the_smallest_stream(model):
    blob, stats = compress_bytes(TEXT, model, steps=3)
    assert "text8" in stats["probes"] and stats["probes"]["text8"]["windows"] == 3
    assert len(blob) - min(stats["candidates"].values()) < 40
    assert decompress_bytes(blob, model)[1] == TEXT


def test_a_text8_model_refuses_other_bytes_in_bfn_mode_and_auto_mode_falls_back(model):
    with pytest.raises(ValueError, match="a-z and spaces"):
        compress_bytes(b"Capital letters", model, steps=3, mode="bfn")
    blob, stats = compress_bytes(b"Capital letters", model, steps=3)
    assert stats["stream"] in ("stored", "lzma2") and not stats["probes"]
    assert decompress_bytes(blob, model)[1] == b"Capital letters"


def test_a_byte_model_does_not_take_the_text8_alphabet(model):
    blob, stats = compress_bytes(TEXT, tiny_byte_model(calibrate_on=TEXT), steps=3, mode="bfn")
    assert read_bytefile(blob).alphabet == "bytes8" and stats["alphabet"] == "bytes8"


def test_a_long_text8_file_runs_the_chain_and_a_wrong_model_is_refused(model):
    """Bits-back borrows its first bits from a seed (the first windows, LZMA2-coded): a text this
    long has windows left for the chain, so the model is needed to decode them."""
    rng = np.random.default_rng(5)
    data = bytes(rng.choice(np.frombuffer(text8.ALPHABET, np.uint8), 30000))
    blob, _ = compress_bytes(data, model, steps=3, mode="bfn")
    index = read_bytefile(blob)
    inner = read(blob[index.offset:index.offset + index.stream_length])[0]
    assert inner.batches and inner.seed_items < inner.count and inner.coder_revision == PORTABLE_REVISION
    assert decompress_bytes(blob, model)[1] == data
    with pytest.raises(Exception, match="model"):
        decompress_bytes(blob, tiny_byte_model(calibrate_on=TEXT))
    # in-memory models have no weights hash to compare: the stream or the checksum refuses it
    with pytest.raises(FormatError, match="written with model|corrupt|checksum"):
        decompress_bytes(blob, tiny_text8_model(seed=1, calibrate_on=TEXT))


def test_cli_codes_a_text8_file_with_a_text8_model(tmp_path, model):
    directory = tmp_path / "model"
    integer = model.integer
    model.save(directory)  # saving drops a calibration that names other weights; same weights here
    model.integer = integer
    model.save(directory)
    src = tmp_path / "words.txt"
    src.write_bytes(TEXT)
    res = cli("compress", src, "--model", directory, "--mode", "bfn", "-n", "3", "-v")
    assert res.exit_code == 0 and "stream bfn" in res.output and "(text8)" in res.output, res.output
    res = cli("-d", "-c", tmp_path / "words.txt.bfn", "--model", directory)
    assert res.exit_code == 0 and res.stdout_bytes == TEXT
    res = cli("info", "--json", tmp_path / "words.txt.bfn")
    assert res.exit_code == 0 and json.loads(res.output[res.output.index("{"):])["alphabet"] == "text8"


def test_bundle_half_stores_float16_weights_that_calibrate_and_code(tmp_path, monkeypatch):
    """`bundle --half`: the zoo copy holds float16 weights (half the bytes), drops the
    checkpoint's calibration (it named other weights), and once calibrated codes portably."""
    import bfn_codec.models
    import bfn_codec.zoo
    from safetensors.torch import load_file

    src = tmp_path / "ckpt"
    tiny_text8_model().save(src)
    (tmp_path / "corpus.txt").write_bytes(TEXT * 3)
    zoo = tmp_path / "zoo"
    monkeypatch.setattr(bfn_codec.zoo, "ZOO_DIR", zoo)
    monkeypatch.setattr(bfn_codec.models, "ZOO_DIR", zoo)
    res = cli("bundle", src, "tiny-chars", "-n", "3", "--half")
    assert res.exit_code == 0, res.output
    weights = load_file(str(zoo / "tiny-chars" / "model.safetensors"))
    assert {v.dtype for v in weights.values()} == {torch.float16}
    full = (src / "model.safetensors").stat().st_size
    assert (zoo / "tiny-chars" / "model.safetensors").stat().st_size < 0.6 * full
    cfg = json.loads((zoo / "tiny-chars" / "config.json").read_text())
    assert "integer" not in cfg and cfg["info"]["weights_dtype"] == "float16"
    res = cli("calibrate", zoo / "tiny-chars", "--dataset", f"text8:{tmp_path / 'corpus.txt'}", "--items", "4")
    assert res.exit_code == 0, res.output
    data = bytes(np.random.default_rng(8).choice(np.frombuffer(text8.ALPHABET, np.uint8), 30000))
    blob, stats = compress_bytes(data, "tiny-chars", mode="bfn")
    index = read_bytefile(blob)
    inner = read(blob[index.offset:index.offset + index.stream_length])[0]
    assert inner.coder_revision == PORTABLE_REVISION and inner.steps == 3 and stats["model"] == "tiny-chars"
    assert decompress_bytes(blob) == ("", data)  # the model found by its identity, in the zoo
