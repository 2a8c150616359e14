"""exactmath: elementary functions from correctly rounded IEEE operations (bfn_codec/exactmath.py).
Their accuracy is measured against mpmath; their bits are pinned by a digest, since a coder
probability built on them must never change between releases."""
import hashlib

import mpmath as mp
import numpy as np
import pytest

from bfn_codec import exactmath as em

RNG = np.random.default_rng(20261202)


def _ulps(got, exact):
    """|got - exact| in units of the last place of exact (rounded to float64)."""
    out = []
    with mp.workdps(40):
        for g, e in zip(got, exact):
            ref = float(e)
            if ref == 0.0:
                out.append(0.0 if g == 0.0 else np.inf)
                continue
            out.append(float(abs(mp.mpf(float(g)) - e)) / np.spacing(abs(ref)))
    return np.array(out)


def _exact(fn, xs):
    with mp.workdps(40):
        return [fn(mp.mpf(float(x))) for x in xs]


def test_exp_is_within_one_ulp():
    xs = np.concatenate([RNG.uniform(-708, 709, 2000), RNG.uniform(-1, 1, 1000),
                         RNG.uniform(-1e-9, 1e-9, 100), [0.0, 1.0, -1.0, 0.5 * np.log(2.0)]])
    err = _ulps(em.exp(xs), _exact(mp.exp, xs))
    assert err.max() <= 1.0, (err.max(), xs[err.argmax()])


def test_log_is_within_one_ulp():
    xs = np.concatenate([np.exp(RNG.uniform(-700, 700, 2000)), RNG.uniform(0.5, 2.0, 1000),
                         1.0 + RNG.uniform(-1e-7, 1e-7, 100), [1e-300, 5e-324, 1.7e308, 2.0, 0.75]])
    err = _ulps(em.log(xs), _exact(mp.log, xs))
    assert err.max() <= 1.0, (err.max(), xs[err.argmax()])


def test_erfc_is_within_four_ulps_far_into_both_tails():
    """Relative accuracy where the coder needs it: Gaussian tails down to 1e-300 and below."""
    xs = np.concatenate([RNG.uniform(-6.0, 26.5, 4000), RNG.uniform(-0.6, 0.6, 1000),
                         np.array([0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 26.0, -0.5, -3.0])])
    err = _ulps(em.erfc(xs), _exact(mp.erfc, xs))
    assert err.max() <= 4.0, (err.max(), xs[err.argmax()])
    tiny = RNG.uniform(26.55, 27.2, 200)  # results below 2^-1022: subnormal, error absolute
    got, exact = em.erfc(tiny), _exact(mp.erfc, tiny)
    assert max(abs(float(mp.mpf(float(g)) - e)) for g, e in zip(got, exact)) <= 4 * 5e-324


def test_expm1_is_within_four_ulps_and_exact_at_zero():
    xs = np.concatenate([RNG.uniform(-40, 40, 1000), RNG.uniform(-0.4, 0.4, 1000), RNG.uniform(-1e-12, 1e-12, 100)])
    err = _ulps(em.expm1(xs), _exact(mp.expm1, xs))
    assert err.max() <= 4.0, (err.max(), xs[err.argmax()])
    assert em.expm1(np.array([0.0]))[0] == 0.0


def test_erfc_fast_is_within_2e_11_relative():
    xs = np.concatenate([RNG.uniform(0, 26.5, 3000), np.linspace(-6, 6, 601), [0.0, 1e-8]])
    got = em.erfc_fast(xs)
    ref = np.array([float(v) for v in _exact(mp.erfc, xs)])
    ok = ref > 1e-300
    rel = np.abs(got[ok] - ref[ok]) / ref[ok]
    assert rel.max() <= 2e-11, (rel.max(), xs[ok][rel.argmax()])
    assert em.erfc_fast(np.array([40.0]))[0] == 0.0


def test_sin_and_cos_are_within_two_to_the_minus_52_absolute():
    xs = np.concatenate([RNG.uniform(-1000, 1000, 2000), RNG.uniform(-2, 2, 1000),
                         RNG.uniform(-2.0 ** 20, 2.0 ** 20, 200)])
    s, c = em.sin_cos(xs)
    with mp.workdps(40):
        es = max(abs(float(mp.mpf(float(a)) - mp.sin(mp.mpf(float(x))))) for a, x in zip(s, xs))
        ec = max(abs(float(mp.mpf(float(a)) - mp.cos(mp.mpf(float(x))))) for a, x in zip(c, xs))
    assert max(es, ec) <= 2.0 ** -52, (es, ec)
    with pytest.raises(ValueError, match="sin_cos"):
        em.sin_cos(np.array([2.0 ** 21]))


def test_special_values():
    assert em.exp(np.array([0.0]))[0] == 1.0 and em.log(np.array([1.0]))[0] == 0.0
    e = em.exp(np.array([np.inf, -np.inf, np.nan, 710.0, -746.0]))
    assert e[0] == np.inf and e[1] == 0.0 and np.isnan(e[2]) and e[3] == np.inf and e[4] == 0.0
    lg = em.log(np.array([0.0, -1.0, np.inf, np.nan]))
    assert lg[0] == -np.inf and np.isnan(lg[1]) and lg[2] == np.inf and np.isnan(lg[3])
    ec = em.erfc(np.array([0.0, np.inf, -np.inf, 30.0, -30.0, np.nan]))
    assert list(ec[:5]) == [1.0, 0.0, 2.0, 0.0, 2.0] and np.isnan(ec[5])


def test_results_do_not_depend_on_array_size_layout_or_order():
    """numpy's SIMD loops and their scalar tails must agree: one element at a time, strided,
    reversed and in one block give the same bits."""
    xs = RNG.uniform(-30, 30, 257)
    for f in (em.exp, em.expm1, em.erfc, em.erfc_fast, lambda v: em.sin_cos(v)[0]):
        block = f(xs)
        single = np.array([f(np.array([x]))[0] for x in xs])
        assert block.tobytes() == single.tobytes()
        assert f(xs[::-1]).tobytes() == block[::-1].tobytes()
        wide = np.stack([xs, xs], axis=1)[:, 0]  # a strided view
        assert f(wide).tobytes() == block.tobytes()
    pos = np.abs(xs) + 1e-3
    assert em.log(pos).tobytes() == np.array([em.log(np.array([x]))[0] for x in pos]).tobytes()


def test_threads_and_pieces_give_the_same_bits():
    """exp and erfc_fast run large arrays in cache-sized pieces over threads: any thread count
    gives the bits of one pass over the whole array, specials and out-of-range inputs included
    (exp's in-range shortcut is taken by some pieces and not by others here)."""
    xs = np.concatenate([RNG.normal(0, 4, 70_000), RNG.uniform(-800, 800, 50_000),
                         [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-320, 709.8, -745.2]]).reshape(8, -1)
    assert em.CHUNK < xs.size and np.all(np.abs(xs.reshape(-1)[:em.CHUNK]) < 700)
    em.set_threads(1)
    try:
        with np.errstate(all="ignore"):
            one = [em._exp(xs), em._erfc_fast(xs)]
            for n in (2, 3):
                em.set_threads(n)
                assert [f.tobytes() for f in (em.exp(xs), em.erfc_fast(xs))] == [f.tobytes() for f in one]
                assert em.exp(xs).shape == xs.shape
    finally:
        em.set_threads(1)


# The bits of every function on a fixed set of inputs. A change here changes coder probabilities
# once the coder uses these functions: it needs a new arithmetic revision, never a silent edit.
GOLDEN_DIGEST = "aaa8fe343518777515fcdf13d71ccef532d8b4425b192244478c6bad6f90e1df"


def _golden_inputs():
    g = np.random.default_rng(7)
    return np.concatenate([g.uniform(-40, 40, 4096), g.standard_normal(4096), np.linspace(-3, 3, 1001)])


def _digest():
    xs = _golden_inputs()
    parts = [em.exp(xs), em.log(np.abs(xs) + 1e-12), em.erfc(xs), *em.sin_cos(xs)]
    return hashlib.sha256(b"".join(p.astype("<f8").tobytes() for p in parts)).hexdigest()


def test_the_bits_are_pinned():
    assert _digest() == GOLDEN_DIGEST


# The same for the functions coder revision 6 added (kept apart so the first digest still pins
# the functions it covered).
GOLDEN_DIGEST_6 = "4d3092b25a5fd45959f06e5e0a9dcc762c6e77af679a34dee0376480930a9ae0"


def test_the_bits_of_the_revision_6_functions_are_pinned():
    xs = _golden_inputs()
    parts = [em.expm1(xs), em.erfc_fast(xs)]
    digest = hashlib.sha256(b"".join(p.astype("<f8").tobytes() for p in parts)).hexdigest()
    assert digest == GOLDEN_DIGEST_6


def test_the_erfc_fast_coefficients_are_what_the_recorded_fit_gives():
    from bfn_codec.exactmath_fit import erfc_fast_table

    assert np.array_equal(em.ERFC_FAST_P, np.array(erfc_fast_table()))


def test_the_erfc_table_is_what_the_recorded_fit_gives():
    from bfn_codec.exactmath_fit import ERFC_DEGREE, ERFC_INTERVALS, erfc_table

    assert tuple(em.ERFC_INTERVALS) == tuple(a for a, _ in ERFC_INTERVALS) + (ERFC_INTERVALS[-1][1],)
    assert em.ERFC_G.shape == (len(ERFC_INTERVALS), ERFC_DEGREE + 1)
    assert np.array_equal(em.ERFC_G, np.array(erfc_table()))
