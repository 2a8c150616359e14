"""Coder revisions 6 and 7, the portable arithmetic: integer frequencies, escape-coded
Gaussians, revision 7's kept tables, files that decode the same under every kernel setting, and
golden files that pin every probability (bfn_codec/portable.py, docs/format.md 'Arithmetic
revisions')."""
import json
import os
import subprocess
import sys

import constriction
import numpy as np
import pytest
import torch

import bfn_codec
from bfn_codec import portable
from bfn_codec.container import FormatError, read
from bfn_codec.environment import PORTABLE_REVISION

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")
sys.path.insert(0, GOLDEN)
import check_golden  # noqa: E402
from make_rev6 import FILES, golden_data  # noqa: E402
from make_rev7 import FILES as FILES7, golden_data as golden_data7, settings as settings7  # noqa: E402
from make_rev8 import FILES as FILES8, settings as settings8  # noqa: E402
from make_rev8_w7a10 import FILES as FILES8W, settings as settings8w  # noqa: E402

# revision 7 and 8 golden files: (revision, the settings each was written with)
WRITTEN = {**{n: (7, settings7) for n in FILES7}, **{n: (8, settings8) for n in FILES8},
           **{n: (8, settings8w) for n in FILES8W}}


def _coder(seed=0):
    return constriction.stream.stack.AnsCoder(np.random.default_rng(seed).integers(1, 2 ** 32, 64, dtype=np.uint32))


def test_frequencies_sum_exactly_and_constriction_codes_with_them_plus_one():
    rng = np.random.default_rng(1)
    p = rng.random((50, 9)) ** 4
    p[0] = [1.0] + [0.0] * 8  # one certain symbol: the others still get frequency 1 each
    f = portable.frequencies(p)
    assert np.all(f == np.floor(f)) and np.all(f >= 0)
    assert np.all(f.sum(1) == portable.TOTAL - 9)
    # a symbol of frequency f_k + 1 costs exactly 24 - log2(f_k + 1) bits
    c = _coder()
    before = c.num_valid_bits()
    portable.push_frequencies(c, np.zeros(4000, dtype=np.int64), np.tile([2.0 ** 22 - 1, 3 * 2.0 ** 22 - 1], (4000, 1)))
    assert c.num_valid_bits() - before == 8000
    with pytest.raises(portable.RangeError):
        portable.frequencies(np.array([[0.0, 0.0]]))


@pytest.mark.parametrize("R, std", [(4, 2.0), (30, 2.0), (1300, 2.0), (200, 13.7)])
def test_gaussians_round_trip_across_the_whole_support(R, std):
    """Offsets inside the table and beyond it (the escape), to both ends of the support."""
    rng = np.random.default_rng(R)
    mean = rng.normal(0, 40, 300)
    j = np.rint(mean).astype(np.int64) + rng.integers(-R, R + 1, 300)
    j[:2] = np.rint(mean[:2]).astype(np.int64) + np.array([R, -R])
    c = _coder()
    before = c.num_valid_bits()
    portable.push_gaussian(c, j, mean, std, 1.0, R)
    assert np.array_equal(portable.pop_gaussian(c, mean, std, 1.0, R), j)
    assert c.num_valid_bits() == before
    with pytest.raises(portable.RangeError, match="outside its support"):
        portable.push_gaussian(c, j + 2 * R + 1, mean, std, 1.0, R)


def test_a_far_offset_costs_the_escape_and_the_uniform_code_only():
    c = _coder()
    before = c.num_valid_bits()
    portable.push_gaussian(c, np.array([900]), np.array([0.0]), 2.0, 1.0, 1300)
    cost = c.num_valid_bits() - before
    assert 24 + np.log2(2 * (1300 - portable.inner_half_width(2.0))) - 1 <= cost <= 24 + 13 + 1


def test_tables_do_not_depend_on_how_values_are_batched():
    mean = np.random.default_rng(3).normal(0, 5, 64)
    _, whole, _ = portable.TABLES.rows(mean, 2.5, 40)
    parts = np.concatenate([portable.TABLES.rows(mean[i:i + 1], 2.5, 40)[1] for i in range(64)])
    assert whole.tobytes() == parts.tobytes()


def test_power_times_are_exact_products():
    t = portable.power_times(50, 2.0)
    assert t[0] == 0.0 and t[-1] == 1.0 and t[7] == (7 / 50) * (7 / 50)
    assert np.all(np.diff(portable.power_times(10, 1.5)) > 0)


def _sample(name):
    return golden_data(name)


@pytest.mark.parametrize("name", sorted(FILES))
def test_golden_files_decode_and_their_data_reencodes_to_the_same_stream(name):
    """The compatibility promise: a revision-6 file decodes in every later release. Any change
    to a probability, a table or the network's integer arithmetic changes these streams."""
    blob = open(os.path.join(GOLDEN, name + ".bfn"), "rb").read()
    header, words = read(blob)
    assert header.coder_revision == 6 and header.batches
    original = np.load(os.path.join(GOLDEN, name + ".npy"))
    assert np.array_equal(bfn_codec.decompress(blob), original)
    model, _ = _sample(name)
    again = bfn_codec.compress(original, model=check_golden.writer(blob, model), mode="bfn", portable=6)
    h2, words2 = read(again)
    assert words2 == words and h2.batches == header.batches and h2.seed_items == header.seed_items


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_revision_7_and_8_golden_files_decode_and_their_data_reencodes_to_the_same_stream(name):
    blob = open(os.path.join(GOLDEN, name + ".bfn"), "rb").read()
    header, words = read(blob)
    revision, settings = WRITTEN[name]
    assert header.coder_revision == revision and header.batches
    original = np.load(os.path.join(GOLDEN, name + ".npy"))
    assert np.array_equal(original, golden_data7("rev7-fmnist-binary-32" if "binary" in name else "rev7-fmnist-6")[1])
    assert np.array_equal(bfn_codec.decompress(blob), original)
    spec = settings(name)
    h2, words2 = read(bfn_codec.compress(original, **dict(spec, model=check_golden.writer(blob, spec["model"]))))
    assert words2 == words and h2.batches == header.batches and h2.seed_items == header.seed_items


def test_a_file_written_on_a_gpu_decodes_on_the_cpu_and_reencodes_to_the_same_stream():
    """tests/golden/gpu-rev8-fmnist-binary-64.bfn was written with --device cuda on an NVIDIA H200
    (torch 2.11 + CUDA 13, numpy 2.5; benchmarks/gpu_check.py, results/gpu-check-all-rev8.json):
    the first 64 test images binarised, at the bundled defaults. Here, on the CPU, it decodes to
    those images, and the CPU writes the same stream (the header differs in its environment
    digest only, which names the device)."""
    from bfn_codec.data import binarise

    blob = open(os.path.join(GOLDEN, "gpu-rev8-fmnist-binary-64.bfn"), "rb").read()
    header, words = read(blob)
    assert header.coder_revision == 8 and header.batches
    images = binarise(np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))[:64])
    assert np.array_equal(bfn_codec.decompress(blob), images)
    h2, words2 = read(bfn_codec.compress(images, model=check_golden.writer(blob, "fmnist-binary"), mode="bfn", portable=8))
    assert words2 == words and h2.environment_digest != header.environment_digest


def _extreme_rows(rng, N=400, W=12):
    """Probability rows as the chain meets them late: a few plausible entries, the rest down to
    1e-200 (far below constriction's 2^-24), some rows with one entry only, some uniform."""
    logits = -rng.exponential(60.0, (N, W))
    logits[np.arange(N), rng.integers(0, W, N)] = 0.0
    logits[: N // 8] = 0.0  # uniform rows: nothing dropped
    p = np.exp(np.maximum(logits, -460.0))
    p[N // 8: N // 4, 1:] = 1e-200  # one entry kept
    p[N // 8: N // 4, 0] = 1.0
    return p


def test_kept_tables_pop_and_push_back_exactly_and_skip_the_impossible_entries():
    """Revision 7's posterior pop (portable.pop_kept): only entries >= 2^-26 of their row can
    come out, a row with one kept entry costs no bits, and push_kept restores the stack word
    for word."""
    rng = np.random.default_rng(3)
    p = _extreme_rows(rng)
    keep, counts = portable.kept(p)
    coder = _coder(5)
    before = coder.get_compressed().copy()
    k = portable.pop_kept(coder, p.reshape(20, 20, -1))
    assert k.shape == (20, 20)
    k = k.reshape(-1)
    assert keep[np.arange(len(p)), k].all()
    portable.push_kept(coder, k, p)
    assert np.array_equal(coder.get_compressed(), before)
    single = p[50:100]
    coder = _coder(6)
    bits = coder.num_bits()
    assert np.array_equal(portable.pop_kept(coder, single), np.zeros(50)) and coder.num_bits() == bits
    with pytest.raises(portable.RangeError, match="kept"):
        portable.push_kept(_coder(), np.full(len(single), 3), single)


def test_escaped_weights_take_every_entry_and_charge_the_kept_ones_no_floor():
    """Revision 7's weights push (portable.push_escaped): any entry can be coded, a dropped one
    through the escape, and pop_escaped gives every one back; a likely entry of a table with
    many impossible ones costs about its own -log2 p, not the W x 2^-24 of a floored table."""
    rng = np.random.default_rng(4)
    p = _extreme_rows(rng)
    k = rng.integers(0, p.shape[1], len(p))  # many of them dropped entries: escapes
    keep, _ = portable.kept(p)
    assert (~keep[np.arange(len(p)), k]).sum() > 100
    coder = _coder(7)
    portable.push_escaped(coder, k, p)
    assert np.array_equal(portable.pop_escaped(coder, p), k)
    row = np.full((2000, 200), 1e-120)
    row[:, 0] = 1.0
    from bfn_codec.driver import exact_bits

    plain, kept_coder = _coder(8), _coder(8)
    b0 = exact_bits(plain)
    portable.push_categorical(plain, np.zeros(2000, dtype=np.int64), row)
    portable.push_escaped(kept_coder, np.zeros(2000, dtype=np.int64), row)
    floored, escaped = exact_bits(plain) - b0, exact_bits(kept_coder) - b0
    # 199 floors of 2^-24 per symbol against the escape's one or two
    assert floored > 2000 * 190 * 2.0 ** -24 / np.log(2.0) and escaped < floored / 20, (floored, escaped)
    with pytest.raises(portable.RangeError):
        portable.push_escaped(_coder(), np.full(len(p), p.shape[1]), p)


def _per_group_reference(coder, k, probs, escape: bool, push: bool):
    """Revision 7's definition, one row group at a time: rows grouped by their kept count L (L
    increasing; decreasing for the side that must undo the other), each group's kept entries in
    column order (plus the escape symbol, the dropped mass, for weights), one constriction call
    per group. portable.py builds every group's table in one pass; this test holds it to the
    plain definition."""
    keep, counts = portable.kept(probs)
    W = probs.shape[1]
    Ls = np.unique(counts)
    out = np.zeros(len(probs), dtype=np.int64) if not push else None
    if escape and push:
        dropped = ~keep[np.arange(len(k)), k]
        if dropped.any():
            portable.push_categorical(coder, k[dropped], probs[dropped])
    for L in (Ls if push == escape else Ls[::-1]):
        rows = np.nonzero(counts == L)[0]
        cols = [np.nonzero(keep[i])[0] for i in rows]
        table = np.array([probs[i, c] for i, c in zip(rows, cols)])
        if escape and L < W:
            rest = np.maximum(portable.ordered_sum(probs[rows]) - portable.ordered_sum(table), 0.0)
            table = np.concatenate([table, rest[:, None]], 1)
        if table.shape[1] == 1:  # one symbol: nothing to code
            if not push:
                out[rows] = [c[0] for c in cols]
            continue
        if push:
            sym = [int(np.searchsorted(c, k[i])) if keep[i, k[i]] else L for i, c in zip(rows, cols)]
            portable.push_categorical(coder, np.array(sym), table)
        else:
            sym = portable.pop_categorical(coder, table)
            out[rows] = [c[s] if s < L else -1 for c, s in zip(cols, sym)]
    if escape and not push and (out < 0).any():
        out[out < 0] = portable.pop_categorical(coder, probs[out < 0])
    return out


@pytest.mark.parametrize("escape", [False, True])
def test_kept_tables_match_the_per_group_definition_word_for_word(escape):
    rng = np.random.default_rng(11)
    for trial in range(6):
        N, W = int(rng.integers(50, 300)), int(rng.integers(2, 120))
        logits = rng.normal(0.0, rng.uniform(1.0, 60.0), (N, W))
        p = np.exp(logits - logits.max(1, keepdims=True)) * rng.uniform(0.1, 10.0, (N, 1))
        if trial % 2:
            p[rng.random((N, W)) < 0.5] = 0.0
            p[:, 0] += 1e-3
        a, b = _coder(trial), _coder(trial)
        if escape:
            k = np.where(rng.random(N) < 0.2, rng.integers(0, W, N), p.argmax(1))
            portable.push_escaped(a, k, p)
            _per_group_reference(b, k, p, escape=True, push=True)
            assert np.array_equal(a.get_compressed(), b.get_compressed())
            assert np.array_equal(portable.pop_escaped(a, p), _per_group_reference(b, None, p, True, False))
        else:
            k = portable.pop_kept(a, p)
            assert np.array_equal(k, _per_group_reference(b, None, p, escape=False, push=False))
            assert np.array_equal(a.get_compressed(), b.get_compressed())
            portable.push_kept(a, k, p)
            _per_group_reference(b, k, p, escape=False, push=True)
        assert np.array_equal(a.get_compressed(), b.get_compressed())


def _oracle_overhead(revision: int, n: int, r: float, items: int = 64) -> float:
    """Bits per item the portable coder pays over -log2 pi(x) with the binary oracle source
    (per-pixel marginals: the ideal is exact; its outputs in the portable arithmetic,
    ``OracleModel.output_window_exact``), revision 6, 7 or 8; decoded and checked."""
    from bfn_codec.coder import GridChainCoder, KeptChainCoder, PortableChainCoder, make_plan
    from bfn_codec.data import binarise
    from bfn_codec.driver import AnsCoder, exact_bits
    from bfn_codec.models import OracleModel, make_flow

    x = binarise(np.load(os.path.join(ROOT, "bfn_codec", "samples", "fmnist-test-256.npy"))[:items])
    x = x.reshape(items, -1).astype(np.int64)
    p1 = np.clip(x.mean(0), 0.02, 0.98)
    model = OracleModel(make_flow({"data_type": "discrete", "K": 2}), np.stack([1 - p1, p1], 1), (1, 28, 28))
    base = {6: PortableChainCoder, 7: KeptChainCoder, 8: GridChainCoder}[revision]
    chain = base(model, make_plan(model.flow, n, r, times=portable.power_times(n, 2.0), exact=True))
    coder = AnsCoder(np.random.default_rng(0).integers(0, 2 ** 32, 1 << 20, dtype=np.uint32), seal=True)
    before = exact_bits(coder)
    chain.encode(coder, x)
    ideal = -np.log2(np.where(x == 1, p1, 1 - p1)).sum()
    net = exact_bits(coder) - before
    assert np.array_equal(chain.decode(coder, items), x)
    return (net - ideal) / items, ideal / items


@pytest.mark.parametrize("cfg", [{"data_type": "discrete", "K": 2}, {"data_type": "discrete", "K": 3},
                                 {"data_type": "discretised", "K": 256, "sigma1": 1e-3}],
                         ids=["binary", "K3", "bins256"])
def test_oracle_portable_outputs_are_its_float_outputs_to_rounding(cfg):
    """OracleModel.output_window_exact (the portable coders' oracle) is the Bayes-optimal output
    of ``oracle_log_probs`` up to float64 rounding, at the start, middle and end of the flow;
    the portable chain coder takes the oracle itself and round-trips with it."""
    from bfn_codec.api import chain_coder
    from bfn_codec.driver import AnsCoder
    from bfn_codec.models import ExactModel, OracleModel, make_flow

    flow = make_flow(cfg)
    rng = np.random.default_rng(7)
    pi = rng.dirichlet(np.full(flow.K, 0.5), size=12)
    model = OracleModel(flow, pi, (1, 3, 4))
    assert isinstance(model, ExactModel)
    for t in (0.0, 0.3, 1.0):
        beta = float(flow.schedule_exact(np.array([0.0, t]))[0][1])
        x = rng.integers(0, flow.K, (5, 12))
        S = flow.sample_stat(torch.as_tensor(x), torch.tensor(beta, dtype=torch.float64)).numpy()
        lo, exact = model.output_window_exact(S, t)
        assert lo is None and exact.shape == (5, 12, flow.K)
        np.testing.assert_allclose(exact, model.output_probs(torch.as_tensor(S), t), rtol=1e-9, atol=1e-13)
        assert np.all(exact >= 0) and np.allclose(exact.sum(-1), 1.0, atol=1e-12)
    x = rng.integers(0, flow.K, (4, 12))
    chain = chain_coder(model, PORTABLE_REVISION, 20, 2.0, 2.0)
    coder = AnsCoder(rng.integers(0, 2 ** 32, 1 << 12, dtype=np.uint32), seal=True)
    chain.encode(coder, x)
    assert np.array_equal(chain.decode(coder, len(x)), x)


@pytest.mark.slow
def test_revision_7_removes_most_of_the_per_step_overhead_with_an_oracle_source():
    """Issue #20 item 5: with an exact source the coder's overhead is its own. At n = 200
    revision 7 costs less than revision 6 on the same grid, at r = 4 (where revision 6's floors
    grow with the finer grid) under half as much, and within the oracle bound of +0.1%
    (measured: docs/design.md §16, benchmarks/coder_overhead.py)."""
    six, _ = _oracle_overhead(6, 200, 2.0)
    seven, _ = _oracle_overhead(7, 200, 2.0)
    six_fine, _ = _oracle_overhead(6, 200, 4.0)
    seven_fine, ideal = _oracle_overhead(7, 200, 4.0)
    assert seven < six, (six, seven)
    assert 0 < seven_fine < 0.5 * six_fine and seven_fine < 1e-3 * ideal, (six_fine, seven_fine, ideal)


@pytest.mark.slow
def test_revision_8_receivers_cut_the_grid_mismatch_with_an_oracle_source():
    """Revision 8's receivers follow the encoder's path distribution on the grids: with an
    exact source at n = 200 it pays under three quarters of revision 7's overhead at r = 2 and
    r = 4 (measured: 0.42 -> 0.22 and 0.14 -> 0.08 bits per item) and stays within the oracle
    bound of +0.1%; the batch decodes (``_oracle_overhead`` checks it)."""
    for r in (2.0, 4.0):
        seven, _ = _oracle_overhead(7, 200, r)
        eight, ideal = _oracle_overhead(8, 200, r)
        assert 0 < eight < 0.75 * seven and eight < 1e-3 * ideal, (r, seven, eight, ideal)


def test_grid_receivers_follow_the_encoder_variance_recursion():
    """coder.grid_receivers against a direct evaluation of its definition (regression of S_i on
    S_{i-1} under the encoder's marginal variances), and the limits it must meet: without
    rounding noise (r -> infinity) it tends to the plain receiver N(S_{i-1} + alpha_i m_k, v alpha_i);
    its supports never shrink below revision 7's by more than the Gaussians' own width allows."""
    from bfn_codec.coder import grid_receivers, make_plan
    from bfn_codec.models import make_flow

    flow = make_flow({"data_type": "discrete", "K": 2, "beta1": 9.0})
    m = flow.component_means.numpy()
    span = float((m.max(0) - m.min(0)).max())
    for r in (2.0, 1e3):
        plan = make_plan(flow, 30, r, times=portable.power_times(30, 2.0), exact=True)
        rc = grid_receivers(plan, flow.variance_factor, span)
        b, a, d, v = plan.betas, plan.alphas, plan.delta, flow.variance_factor
        V = {30: v * b[30] + d[30] ** 2 / 12}
        for i in range(30, 1, -1):
            rho = b[i - 1] / b[i]
            V[i - 1] = rho ** 2 * V[i] + v * (b[i - 1] - rho * b[i - 1]) + d[i - 1] ** 2 / 12
        for i in range(2, 31):
            rho = b[i - 1] / b[i]
            cov = rho * V[i]  # Cov(S_{i-1}, S_i) under the encoder
            assert rc.c[i] == pytest.approx(cov / V[i - 1], rel=1e-12)
            assert rc.var[i] == pytest.approx(V[i] - cov ** 2 / V[i - 1] - d[i] ** 2 / 12, rel=1e-6)
            assert rc.g[i] == pytest.approx(b[i] - rc.c[i] * b[i - 1], rel=1e-9)
        if r > 100:  # rounding noise of relative variance 1e-7: the plain receiver, nearly
            np.testing.assert_allclose(rc.c[2:], 1.0, rtol=1e-5)
            np.testing.assert_allclose(rc.var[1:], v * a[1:], rtol=1e-5)
            np.testing.assert_allclose(rc.g[1:], a[1:], rtol=1e-4)
        else:
            assert np.all(rc.support[1:] >= plan.support_receiver[1:] - 1)


def test_the_decoder_ignores_the_recorded_environment(monkeypatch):
    """Revision 6 decodes whatever packages and machine the encoder had (the environment is
    information only); revision 5 still refuses another environment."""
    import bfn_codec.api as api

    x = _sample("rev6-fmnist-binary-32")[1]
    blob6 = bfn_codec.compress(x, model="fmnist-binary", mode="bfn", portable=True)
    blob5 = bfn_codec.compress(x, model="fmnist-binary", mode="bfn", portable=False)
    assert read(blob6)[0].coder_revision == PORTABLE_REVISION and read(blob5)[0].coder_revision == 5
    monkeypatch.setattr(api, "environment", lambda device="cpu": "torch=99;numpy=99")
    assert np.array_equal(bfn_codec.decompress(blob6), x)
    with pytest.raises(FormatError, match="environment differs"):
        bfn_codec.decompress(blob5)


def test_a_model_calibrated_again_is_refused_by_name_not_by_checksum():
    """The file's model hash covers the weights and the integer calibration: a recalibrated
    model (other scales, same weights) must not be taken for the one that wrote the file."""
    from bfn_codec.models import load_model

    blob = open(os.path.join(GOLDEN, "rev6-fmnist-6.bfn"), "rb").read()
    model = load_model("fmnist")
    model.integer = dict(model.integer, scales={**model.integer["scales"], "conv_in": model.integer["scales"]["conv_in"] + 1})
    with pytest.raises(FormatError, match="weights and integer calibration"):
        bfn_codec.decompress(blob, model=model)
    assert read(blob)[0].model_hash != bytes.fromhex(model.weights_sha256)[:8]  # not the weights alone


def test_models_without_an_integer_calibration_code_with_revision_5_or_say_why(tmp_path):
    from bfn_codec.models import load_model
    from bfn_codec.zoo import ModelError

    model = load_model("fmnist-binary")
    model.integer = None
    x = _sample("rev6-fmnist-binary-32")[1]
    assert read(bfn_codec.compress(x, model=model, mode="bfn"))[0].coder_revision == 5
    with pytest.raises(ModelError, match="bfn-codec calibrate"):
        bfn_codec.compress(x, model=model, mode="bfn", portable=True)


# Each setting runs in its own process: ONEDNN_MAX_CPU_ISA and MKL's switch are read once, at
# load time. The integer network must give the same integers under every one of them, and so
# every file decodes under every one (each subprocess decodes the portable golden files of every
# bundled model and re-encodes their data to the same stream).
SETTINGS = {
    "4 threads": ({}, 4),
    "oneDNN AVX2": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}, 2),
    "oneDNN SSE4.1": ({"ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}, 1),
    # the exact arithmetic's compiled twins (kernels.py) turned off, and compiled for a generic
    # CPU of this architecture (no AVX): files must not depend on either
    "numpy arithmetic, no compiled twins": ({"BFN_CODEC_KERNELS": "numpy"}, 2),
    "twins compiled for a generic CPU": ({"NUMBA_CPU_NAME": "generic"}, 2),
}
_CHILD = """
import json, sys, torch
sys.path.insert(0, {golden!r})
torch.set_num_threads({threads})
import check_golden
from bfn_codec import exactmath
out = check_golden.check()
out["twins"] = exactmath.compiled("exp") is not None
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_files_decode_and_reencode_identically_under_other_kernels(setting):
    env_changes, threads = SETTINGS[setting]
    env = dict(os.environ, **env_changes)
    # the timeout guards against a hang, not a speed: the numpy-only setting took over 900 s on a
    # loaded 2-core machine
    res = subprocess.run([sys.executable, "-c", _CHILD.format(golden=GOLDEN, threads=threads)],
                         env=env, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out.pop("twins") == (env_changes.get("BFN_CODEC_KERNELS") != "numpy")
    assert out == {name: [True, True] for name in check_golden.NAMES}, out


def test_integer_outputs_agree_across_kernels_and_batch_splits():
    """The revision-6 network call itself: the same output integers from the float64
    convolution, the unfold + matmul path and float32 pieces (both sizings, and the default
    that picks per layer), whole batch or one item at a time."""
    from bfn_codec.models import load_model, portable_model

    pm = portable_model(load_model("fmnist"))
    x = _sample("rev6-fmnist-6")[1][:3].reshape(3, -1).astype(np.float64)
    S = (x[..., None] / 127.5 - 1.0) * 40.0 + np.random.default_rng(0).normal(0, 7, x.shape + (1,))
    outs = []
    for kernel in ("auto", "split", "conv2d", "unfold", "float32"):
        pm.inet.kernel = kernel
        outs.append(pm.params_exact(S, 0.37).tobytes())
        outs.append(b"".join(pm.params_exact(S[i:i + 1], 0.37).tobytes() for i in range(3)))
    pm.inet.kernel = "auto"
    assert len(set(outs)) == 1
