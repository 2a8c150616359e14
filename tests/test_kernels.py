"""The compiled twins (bfn_codec/kernels.py) against the numpy originals they replace: every
result to the bit, on random values, edge cases and the coder's real table shapes. A twin that
differed in one bit would change a probability and so a file; these tests, the golden files
(decoded with and without twins in test_portable.py's subprocesses) and the check that
exactmath runs before first use are what keep that from happening."""
import warnings

import constriction
import numpy as np
import pytest

from bfn_codec import exactmath, portable
from bfn_codec.discretised import DiscretisedBFN


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a.view(np.uint8), b.view(np.uint8)))


def both_ways(fn):
    """fn() with the compiled twins, then with the numpy originals."""
    assert exactmath.compiled("exp") is not None, "the compiled twins are not in use here"
    fast = fn()
    with exactmath.numpy_only():
        slow = fn()
    return fast, slow


EDGES = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 5e-324, -5e-324, 1e-300, 709.782712893384, 709.7827128933841,
                  -745.1332191019412, -745.1332191019411, -745.1332191019413, 710.0, -746.0, 1e300, -1e300,
                  27.3, -27.3, 0.5, -0.5, 0.34657359027997264, -0.34657359027997264])


@pytest.mark.parametrize("threads", [1, 2])
def test_exp_and_erfc_fast_twins_give_numpys_bits(threads):
    rng = np.random.default_rng(1)
    x = np.concatenate([EDGES, rng.uniform(-760.0, 720.0, 1_000_000), rng.normal(0.0, 6.0, 1_000_000),
                        rng.normal(0.0, 1e-8, 10_000), -np.abs(rng.normal(0.0, 30.0, 200_000))])[:2_200_000].reshape(-1, 1000)
    exactmath.set_threads(threads)
    try:
        for f in (exactmath.exp, exactmath.erfc_fast):
            with np.errstate(all="ignore"):
                fast, slow = both_ways(lambda: f(x))
            assert fast.shape == x.shape and same_bits(fast, slow), f.__name__
    finally:
        exactmath.set_threads(1)


def test_scalars_and_nans_come_back_as_numpy_gives_them():
    fast, slow = both_ways(lambda: exactmath.exp(0.7))
    assert type(fast) is type(slow) and fast == slow
    # any NaN in gives numpy's NaN out (the coder refuses non-finite tables either way)
    weird = np.array([0x7FF8000000000001, 0xFFF8000000000000, 0x7FF0000000000001], dtype=np.uint64).view(np.float64)
    fast, slow = both_ways(lambda: exactmath.exp(weird))
    assert same_bits(fast, slow)


def test_ordered_sum_twin_is_the_left_to_right_accumulation():
    rng = np.random.default_rng(2)
    for shape in [(7, 1), (300, 257), (4, 5, 33), (1, 100_000)]:
        x = rng.standard_normal(shape) * 10.0 ** rng.integers(-30, 30, shape)
        fast, slow = both_ways(lambda: exactmath.ordered_sum(x))
        assert same_bits(fast, slow) and same_bits(fast, np.add.accumulate(x, axis=-1)[..., -1])
    # the order matters: 1 + 2^-53 + 2^-53 left to right is 1, pairwise could be 1 + 2^-52
    x = np.array([[1.0] + [2.0 ** -53] * 64])
    assert exactmath.ordered_sum(x)[0] == 1.0


@pytest.mark.parametrize("K,t,z_max", [(256, 0.3, 4.0), (256, 0.97, 4.0), (256, 0.5, None), (16, 0.8, 4.0),
                                       (256, 0.0001, 4.0)])
def test_window_bin_masses_twin_gives_numpys_bits(K, t, z_max):
    rng = np.random.default_rng(3)
    flow = DiscretisedBFN(K=K)
    params = rng.normal(0.0, 2.0, (3, 200, 2))
    params[0, :5, 1] = [-40.0, 40.0, -10.0, 10.0, 0.0]  # the clamps of log sigma
    S = rng.normal(0.0, 50.0, (3, 200, 1))
    for p in (params, params[0]):  # the second broadcast against S's items
        fast, slow = both_ways(lambda: flow.output_window_exact(p, S, t, z_max))
        assert (fast[0] is None) == (slow[0] is None)
        if fast[0] is not None:
            assert np.array_equal(fast[0], slow[0])
        assert same_bits(fast[1], slow[1])


@pytest.mark.parametrize("windowed", [False, True])
def test_posterior_twin_gives_numpys_bits_including_the_log_space_rows(windowed):
    rng = np.random.default_rng(4)
    N, W = 500, 40
    u = rng.normal(0.0, 30.0, N)
    w = rng.random((N, W)) ** 4
    w[:20] = 0.0
    w[:20, 0] = 1e-300  # weights that vanish where u lies: the log-space fallback
    lo = rng.integers(0, 200, N) if windowed else None
    for a in (0.999, 1e-3, 30.0):
        fast, slow = both_ways(lambda: portable.posterior_1d(u, -3.0, 0.25, a, w, lo))
        assert same_bits(fast, slow)


def test_posterior_summary_is_the_kept_tables_own_and_codes_the_same_words():
    """posterior_1d's KeptSummary (each row's ordered sum and kept count, from the posterior's
    kernel; the log-space rows' recomputed) is what the kept tables compute from the rows
    themselves, and pop_kept / push_kept with it write and read the same words."""
    from bfn_codec.driver import AnsCoder

    if exactmath.compiled("posterior_rows") is None:
        pytest.skip("no compiled kernels here")
    rng = np.random.default_rng(8)
    N, W = 400, 64
    u = rng.normal(0.0, 30.0, N)
    w = rng.random((N, W)) ** 8
    w[:20] = 0.0
    w[:20, 0] = 1e-300  # the log-space rows
    post, summary = portable.posterior_1d(u, -3.0, 0.25, 0.999, w, None, summary=True)
    assert same_bits(post, portable.posterior_1d(u, -3.0, 0.25, 0.999, w, None))
    _, counts, totals = portable._kept(post)
    assert same_bits(summary.totals, totals) and np.array_equal(summary.counts, counts)
    assert counts.max() > 1 and counts.max() < W  # rows of several kept entries, all with some dropped
    seed, words = rng.integers(0, 2 ** 32, 64, dtype=np.uint32), []
    for given in (None, summary):
        coder = AnsCoder(seed, seal=True)
        before = coder.get_compressed()
        k = portable.pop_kept(coder, post, given)
        middle = coder.get_compressed()
        portable.push_kept(coder, k, post, given)
        assert np.array_equal(coder.get_compressed(), before)  # bits back: the push undid the pop
        words.append((k, middle))
    assert np.array_equal(words[0][0], words[1][0]) and np.array_equal(words[0][1], words[1][1])


@pytest.mark.parametrize("z_max", [None, 3.0])
def test_window_summary_is_the_kept_tables_own(z_max):
    """The bin-mass kernel's KeptSummary of its rows (their ordered sums and kept counts) is
    what the kept tables compute from the rows, on windows and whole tables."""
    from bfn_codec.models import make_flow

    if exactmath.compiled("window_masses") is None:
        pytest.skip("no compiled kernels here")
    flow = make_flow({"data_type": "discretised", "K": 256, "sigma1": 1e-3})
    rng = np.random.default_rng(11)
    p = rng.normal(0.0, 2.0, (3, 50, 2))
    S = rng.normal(0.0, 3.0, (3, 50, 1))
    lo, probs, summary = flow.output_window_exact(p, S, 0.6, z_max, summary=True)
    lo2, probs2 = flow.output_window_exact(p, S, 0.6, z_max)
    assert same_bits(probs, probs2) and (lo is None) == (lo2 is None)
    _, counts, totals = portable._kept(probs.reshape(-1, probs.shape[-1]))
    assert same_bits(summary.totals, totals) and np.array_equal(summary.counts, counts)
    assert counts.min() < probs.shape[-1]  # entries dropped somewhere: the counts are tested


def test_frequencies_twin_gives_numpys_bits_and_errors():
    rng = np.random.default_rng(5)
    p = rng.random((3000, 37)) ** 12
    p[:10] = 0.0
    p[:10, 0], p[:10, 3] = 1e-300, 5e-320  # tiny rows, a subnormal entry
    p[10:20] = 1.0  # ties: the remainder goes to the first largest
    # rows with a negative entry and a tiny sum, whose floors exceed 2^24: the twin's int64 sum
    # of the floors covers |floor| <= 2^24, and these rows take its left-to-right branch
    p[20:30, :2] = [[1.0, -1.0 + 1e-9]] * 10
    widths = rng.integers(1, 38, 3000)
    padded = np.where(np.arange(37)[None, :] < widths[:, None], p, 0.0)
    for args in ((p,), (padded, widths), (p.reshape(100, 30, 37),)):
        fast, slow = both_ways(lambda: portable.frequencies(*args))
        assert same_bits(fast, slow)
    for bad in (np.nan, np.inf, -np.inf):
        q = p.copy()
        q[7, 5] = bad
        for use_numpy in (False, True):
            with pytest.raises(portable.RangeError), (exactmath.numpy_only() if use_numpy else _nothing()):
                portable.frequencies(q)
    # rows summing to 0, or so little that 2^24 / sum overflows: refused both ways
    for q in (np.zeros((2, 4)), np.array([[1e-310, 0.0]]), np.array([[1e-310, 0.0, 1e-310]])):
        for use_numpy in (False, True):
            with pytest.raises(portable.RangeError), (exactmath.numpy_only() if use_numpy else _nothing()):
                portable.frequencies(q)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _extreme(rng, N=2000, W=60):
    logits = rng.normal(0.0, 60.0, (N, W))
    logits[: N // 8] = 0.0  # uniform rows: nothing dropped
    p = np.exp(np.maximum(logits - logits.max(1, keepdims=True), -700.0))
    p[N // 8: N // 4, 1:] = 1e-200  # one entry kept
    return p


@pytest.mark.parametrize("escape", [False, True])
def test_kept_table_twins_pack_and_code_as_numpy_does(escape):
    rng = np.random.default_rng(6)
    p = _extreme(rng)
    k = np.array([rng.choice(np.nonzero(row >= row.sum() * 2.0 ** -26)[0]) if i % 3 else rng.integers(0, p.shape[1])
                  for i, row in enumerate(p)])
    if not escape:
        keep, _ = portable.kept(p)
        k = np.where(keep[np.arange(len(p)), k], k, np.argmax(p, 1))

    def run():
        packed = portable._Packed(p, escape)
        given_k = portable._Packed(p, escape, k=k)  # the fused kernel computes the symbols too
        coder = constriction.stream.stack.AnsCoder(np.array([0x9E3779B9, 0x7F4A7C15] * 8, dtype=np.uint32))
        (portable.push_escaped if escape else portable.push_kept)(coder, k, p)
        words = coder.get_compressed().copy()
        back = (portable.pop_escaped if escape else portable.pop_kept)(coder, p)
        # what the coder reads: each row's first `width` frequencies and its kept entries' columns
        slots = np.arange(packed.frequencies().shape[1])[None, :] < packed.widths[:, None]
        kept = np.arange(packed.cols.shape[1])[None, :] < packed.counts[:, None]
        return (packed.cols[kept].astype(np.int64), packed.counts, packed.widths, packed.order, packed.symbols(k),
                given_k.symbols(k), packed.frequencies()[slots], given_k.frequencies()[slots], words, back)

    fast, slow = both_ways(run)
    for f, s in zip(fast, slow):
        assert same_bits(f, s)
    assert np.array_equal(fast[-1], k)
    assert not np.array_equal(fast[1], np.full(len(p), p.shape[1]))  # rows dropped entries
    if escape:
        assert (fast[4] == fast[1]).any() and (fast[4] < fast[1]).any()  # escapes and kept entries


def test_kept_tables_refuse_what_frequencies_refuse():
    """A NaN row keeps nothing, a zero row sums to 0: both are refused, compiled or not."""
    for rows in (np.array([[0.5, np.nan, 0.5]]), np.zeros((2, 3))):
        for escape in (False, True):
            for use_numpy in (False, True):
                with pytest.raises(portable.RangeError), (exactmath.numpy_only() if use_numpy else _nothing()):
                    portable._Packed(rows, escape).frequencies()


def test_a_twin_that_disagrees_with_numpy_is_not_used(monkeypatch):
    """exactmath checks every twin against its original before first use and falls back to
    numpy (same bits, slower) with a warning when one differs, e.g. a stale or miscompiled cache."""
    from bfn_codec import kernels

    def wrong_exp(x, out):
        out[:] = x + 1.0

    real = kernels.build()
    monkeypatch.setattr(kernels, "build", lambda: {**real, "exp": wrong_exp})
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert exactmath._build_twins() is None
    assert any("differ from the numpy originals" in str(w.message) for w in seen)
    monkeypatch.setenv("BFN_CODEC_KERNELS", "numpy")
    assert exactmath._build_twins() is None

