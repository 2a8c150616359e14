"""Elementary functions from correctly rounded IEEE operations only: the same bits everywhere.

libm, SLEEF, MKL/VML and CUDA's exp, log, erf, erfc and sin may differ in the last bit between
instruction sets, library versions and devices. A probability that feeds the entropy coder must
not: the decoder has to rebuild the encoder's numbers exactly (docs/design.md §12). The
functions here use only numpy's float64 +, -, *, / (correctly rounded by IEEE 754 on every
platform numpy supports, one ufunc per operation, so nothing can be fused or reordered) and
exact operations (rint, floor, comparisons, frexp, ldexp, selecting elements), in a fixed order,
with constants given as exact float64 values. So each result is a deterministic function of its
input, whatever the machine, thread count or array size.

Accuracy, measured against mpmath on thousands of points (tests/test_exactmath.py bounds it):
exp 0.88 ulp, log 0.75 ulp, expm1 3.2 ulp, erfc 2.9 ulp relative over its whole range (below 2^-1022 the result
is subnormal and the error absolute), erfc_fast 1.6e-11 relative (10x faster than erfc), sin and
cos 1.4e-16 absolute for |x| <= 2^20.

The forms are textbook: exp by Cody-Waite reduction x = k ln 2 + r and a Taylor polynomial for
exp(r); log by log(1 + f) = 2 atanh(f / (2 + f)); erfc by the series of erf below 0.5 and
erfc(x) = exp(-x^2) G(x) above, G a polynomial per interval (exactmath_fit.py derives the table),
with x^2 split exactly (Dekker) so exp(-x^2) keeps full precision; sin and cos by reduction
modulo pi/2 with pi/2 in three parts and their Taylor polynomials on [-pi/4, pi/4].

The hot functions (exp, erfc_fast, ordered row sums) also have compiled twins (the end of this
file): the same operations in the same order, fused into one numba loop per array, several
times faster, and the same bits (why, and how that is checked, is explained there).
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import numpy as np

from .exactconst import (  # noqa: F401  (also read as exactmath.SQRT_HALF etc.)
    _ERFC_COLUMNS, COS_C, ERF_C, ERFC_FAST_P, ERFC_G, ERFC_INTERVALS, ERFC_MAX, EXP_C, INV_LN2,
    LN2_HI, LN2_LO, LOG_C, PIO2_1, PIO2_2, PIO2_3, SIN_C, SPLIT, SQRT_HALF, TRIG_LIMIT, TWO_OVER_SQRT_PI,
)


def _horner(coefs, x):
    """sum_k coefs[k] x^k, highest power first: one multiply and one add per coefficient
    (in place: the same operations without a new array per step, twice as fast)."""
    p = np.full_like(x, coefs[-1])
    for c in coefs[-2::-1]:
        p *= x
        p += c
    return p


def _f64(x) -> np.ndarray:
    return np.array(x, dtype=np.float64, copy=True)


def _pow2(k: np.ndarray) -> np.ndarray:
    """2^k for integer k in [-1022, 1023], built from its bit pattern (exact)."""
    return ((k + 1023) << 52).view(np.float64)


def _times_pow2(y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """y 2^k for y in [1/2, 2] and k in [-1077, 1025], as np.ldexp gives it: the first factor
    keeps y 2^(k//2) normal, so only the second multiplication can round (into the subnormals),
    and a correctly rounded product is ldexp's result. Several times faster than np.ldexp."""
    half = k >> 1
    y = y * _pow2(half)
    y *= _pow2(k - half)
    return y


# ----- threads: exp and erfc_fast are elementwise, so chunks of a large array can run on
# several threads (numpy releases the GIL inside its loops) and give the same bits
_threads = 1
_pools: dict[tuple, ThreadPoolExecutor] = {}  # by use and size; never shut down, so a caller on another
_pools_lock = threading.Lock()              # thread (a Dask worker) never meets a closed pool
if hasattr(os, "register_at_fork"):  # a forked child has none of the parent's pool threads
    os.register_at_fork(after_in_child=_pools.clear)


def set_threads(n: int) -> None:
    """Threads for large arrays in ``exp`` and ``erfc_fast`` (the caller's thread budget)."""
    global _threads
    _threads = max(1, int(n))


CHUNK = 1 << 16  # elements per piece of a large array: the piece's temporaries stay in cache


def _elementwise(fn, x: np.ndarray, twin: str | None = None) -> np.ndarray:
    """fn(x) for an elementwise fn; a large x in pieces of ``CHUNK`` elements (fn runs a few
    dozen numpy operations, each a pass over its input: on pieces that fit in cache they run
    2-3x faster than on arrays of millions of elements), spread over ``_threads`` threads.
    Where fn has a compiled ``twin`` (``compiled``), that runs instead, in the same pieces.
    Every element goes through the same operations either way, so the bits do not change."""
    kernel = compiled(twin) if twin and x.ndim else None  # a 0-d input: numpy's scalar result
    flat = x.reshape(-1)
    if kernel is not None:
        out = np.empty(flat.shape, dtype=np.float64)

        def piece(start: int) -> None:
            kernel(flat[start:start + CHUNK], out[start:start + CHUNK])
    else:
        if x.size <= CHUNK:
            return fn(x)
        out = np.empty(flat.shape, dtype=np.float64)

        def piece(start: int) -> None:
            out[start:start + CHUNK] = fn(flat[start:start + CHUNK])

    _run(piece, range(0, flat.size, CHUNK))
    return out.reshape(x.shape)


def _run(piece, starts: range) -> None:
    """piece(start) for every start, on the ``set_threads`` threads when there are several."""
    n = _threads
    if n <= 1 or len(starts) <= 1:
        for start in starts:
            piece(start)
        return
    list(thread_pool(n).map(piece, starts))


def thread_pool(n: int, name: str = "exactmath") -> ThreadPoolExecutor:
    """A kept pool of n threads for one purpose (``name``: callers whose tasks may submit work
    of their own use different names, so that no pool waits on itself)."""
    with _pools_lock:
        key = (name, n)
        if key not in _pools:
            _pools[key] = ThreadPoolExecutor(max_workers=n, thread_name_prefix=name)
        return _pools[key]


def exp(x) -> np.ndarray:
    """e^x (``_exp``, on several threads for large arrays)."""
    return _elementwise(_exp, _f64(x), "exp")


def _exp(x: np.ndarray) -> np.ndarray:
    """e^x. Reduction x = k ln 2 + r, |r| <= ln 2 / 2: k * LN2_HI is exact and x - k * LN2_HI
    too (the two are within a factor of 2 of each other or r is tiny), so r carries x's error
    only; e^r by its Taylor polynomial to r^13 (the next term < 2^-57 relative); 2^k by ldexp.
    Out-of-range inputs are clamped for the arithmetic and their results replaced after it, so
    every element goes through the same operations (no masked copies: 4x faster)."""
    # inputs all in range (and no NaN, which fails both comparisons) skip the clamping and the
    # replacements, which would leave every element unchanged
    plain = x.size > 0 and -745.1332191019412 <= x.min() and x.max() <= 709.782712893384
    nan = None if plain else np.isnan(x)
    v = x if plain else np.clip(np.where(nan, 0.0, x), -746.0, 710.0)
    k = np.rint(v * INV_LN2)
    r = (v - k * LN2_HI) - k * LN2_LO
    # e^r = 1 + (r + r^2 (1/2 + r/6 + ...)): the small part is summed before the 1, so only the
    # last addition rounds at the result's scale (computed in place: the same operations)
    with np.errstate(over="ignore", under="ignore"):  # the clamped ends; replaced below
        p = r * r
        p *= _horner(EXP_C[2:], r)
        p += r
        p += 1.0
        out = _times_pow2(p, k.astype(np.int64))
    if plain:
        return out
    out = np.where(x > 709.782712893384, np.inf, out)
    out = np.where(x < -745.1332191019412, 0.0, out)
    return np.where(nan, np.nan, out)


def expm1(x) -> np.ndarray:
    """e^x - 1, accurate near 0: with the reduction of ``exp``, e^x - 1 = 2^k (1 + p) - 1 where
    p = r + r^2 (1/2 + r/6 + ...); for k = 0 (|x| < ln 2 / 2) that is p itself, with no
    cancellation; otherwise the subtraction loses at most a factor 1 / (1 - e^-0.35) ~ 3.4."""
    x = _f64(x)
    nan = np.isnan(x)
    v = np.clip(np.where(nan, 0.0, x), -746.0, 710.0)
    k = np.rint(v * INV_LN2)
    r = (v - k * LN2_HI) - k * LN2_LO
    p = r + r * r * _horner(EXP_C[2:], r)
    with np.errstate(over="ignore"):
        big = _times_pow2(1.0 + p, k.astype(np.int64)) - 1.0
    out = np.where(k == 0, p, big)
    out = np.where(x > 709.782712893384, np.inf, out)
    return np.where(nan, np.nan, out)


def log(x) -> np.ndarray:
    """Natural log. x = 2^e m with m in [sqrt(1/2), sqrt(2)), f = m - 1 (exact), s = f / (2 + f):
    log(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + R(s)), R(s) = sum_k 2 s^(2k) / (2k+1)
    (from 2s = f - s f; |s| <= 0.172, so 11 terms reach 2^-60), then + e ln 2 in two parts."""
    x = _f64(x)
    out = np.full_like(x, np.nan)
    ok = (x > 0) & np.isfinite(x)
    m, e = np.frexp(x[ok])
    low = m < SQRT_HALF
    m = np.where(low, m * 2.0, m)  # exact
    e = (e - low).astype(np.float64)
    f = m - 1.0  # exact (Sterbenz: m in [1/2, 2])
    s = f / (2.0 + f)
    s2 = s * s
    hfsq = 0.5 * f * f
    R = s2 * _horner(LOG_C, s2)
    out[ok] = e * LN2_HI + (f - (hfsq - (s * (hfsq + R) + e * LN2_LO)))
    out[x == 0] = -np.inf
    out[x == np.inf] = np.inf
    return out


def _exp_minus_square(x):
    """exp(-x^2) without the rounding of x^2: x = hi + lo (Dekker split, exact), hi^2 exact,
    exp(-x^2) = exp(-hi^2) exp(-(2 hi lo + lo^2))."""
    c = SPLIT * x
    hi = c - (c - x)
    lo = x - hi
    d = -(lo * (2.0 * hi + lo))  # |d| < 2^-19 for x < 28: three Taylor terms reach 2^-75
    return exp(-(hi * hi)) * (1.0 + (d + d * d * (0.5 + d * float(Fraction(1, 6)))))


def erfc(x) -> np.ndarray:
    """Complementary error function, accurate in relative terms far into the tail (what the
    coder's Gaussian tails need): 1 - erf(x) from the series for |x| < 0.5, exp(-x^2) G(x) from
    the per-interval polynomials for 0.5 <= x < 27.3, 0 beyond; erfc(-x) = 2 - erfc(x)."""
    x = _f64(x)
    a = np.abs(x)
    out = np.empty_like(x)
    near = a < 0.5
    v = x[near]  # erf is odd: the series keeps the sign of x
    out[near] = 1.0 - TWO_OVER_SQRT_PI * (v * _horner(ERF_C, v * v))
    mid = (a >= 0.5) & (a < ERFC_MAX)
    v = a[mid]
    i = np.searchsorted(ERFC_INTERVALS, v, side="right") - 1
    lo, hi = ERFC_INTERVALS[i], ERFC_INTERVALS[i + 1]
    u = (2.0 * v - (lo + hi)) / (hi - lo)
    g = _ERFC_COLUMNS[-1].take(i)
    for column in _ERFC_COLUMNS[-2::-1]:  # Horner, each element with its interval's coefficients
        g = g * u + column.take(i)
    out[mid] = _exp_minus_square(v) * g
    out[a >= ERFC_MAX] = 0.0
    out[np.isnan(x)] = np.nan
    neg = (x < 0) & ~near
    out[neg] = 2.0 - out[neg]
    return out


def erfc_fast(x) -> np.ndarray:
    """erfc with relative error <= 1.6e-11 (where erfc(x) >= 1e-300), a tenth of ``erfc``'s
    cost: one polynomial for the whole half-line, erfc(x) = t exp(-x^2 + P(2t - 1)) with
    t = 1 / (1 + x/2) (exactmath_fit.erfc_fast_table), erfc(-x) = 2 - erfc(x). Enough for
    probabilities that are quantised to 2^-24 (the coder's tables): what matters there is that
    the bits are the same everywhere, which the fixed sequence of IEEE operations guarantees.
    Large arrays run on ``set_threads`` threads."""
    return _elementwise(_erfc_fast, _f64(x), "erfc_fast")


def _erfc_fast(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    t = 0.5 * a
    t += 1.0
    np.divide(1.0, t, out=t)  # t = 1 / (1 + x/2)
    u = 2.0 * t
    u -= 1.0
    with np.errstate(under="ignore"):
        p = _horner(ERFC_FAST_P, u)
        a *= a
        p -= a
        out = _exp(p)
        out *= t
    np.subtract(2.0, out, out=out, where=x < 0)
    return out


def _reduce_quadrant(x):
    """x = k pi/2 + r, |r| <= pi/4 (about), with pi/2 in three parts; k mod 4 and r."""
    k = np.rint(x * float.fromhex("0x1.45f306dc9c883p-1"))  # 2 / pi
    r = ((x - k * PIO2_1) - k * PIO2_2) - k * PIO2_3
    return np.mod(k, 4.0).astype(np.int64), r


def _sin_cos_reduced(r):
    r2 = r * r
    return r * _horner(SIN_C, r2), _horner(COS_C, r2)


def sin_cos(x) -> tuple[np.ndarray, np.ndarray]:
    """(sin x, cos x) for |x| <= 2^20 (ValueError beyond: the reduction would lose bits)."""
    x = _f64(x)
    if np.any(~(np.abs(x) <= TRIG_LIMIT)):
        raise ValueError(f"sin_cos needs finite |x| <= {TRIG_LIMIT:g}")
    q, r = _reduce_quadrant(x)
    s, c = _sin_cos_reduced(r)
    sin = np.choose(q, [s, c, -s, -c])
    cos = np.choose(q, [c, -s, -c, s])
    return sin, cos


def ordered_sum(x) -> np.ndarray:
    """Sum over the last axis, left to right: the same rounding on every machine. numpy's sum
    uses pairwise blocks whose layout is an implementation detail; an accumulation is
    sequential by definition (r_j = r_{j-1} + x_j), so its last element is the ordered sum."""
    x = np.asarray(x)
    kernel = compiled("row_sums") if x.dtype == np.float64 and x.ndim and x.shape[-1] > 0 else None
    if kernel is None:
        return np.add.accumulate(x, axis=-1)[..., -1]
    rows = np.ascontiguousarray(x.reshape(-1, x.shape[-1]))
    out = np.empty(rows.shape[0], dtype=np.float64)
    kernel(rows, out)
    return out.reshape(x.shape[:-1])


def softmax(logits) -> np.ndarray:
    """softmax over the last axis: exp(l - max) (every factor <= 1, the largest exactly 1),
    normalised by the ordered sum."""
    logits = np.asarray(logits, dtype=np.float64)
    e = exp(logits - logits.max(-1, keepdims=True))
    return e / ordered_sum(e)[..., None]


# ----- compiled twins -------------------------------------------------------------------------
# exp and erfc_fast above are a few dozen numpy passes each (one ufunc per operation is what
# keeps them identical everywhere), and an accumulation writes a whole table to keep one column.
# Their twins run the same operations one element (or row) at a time in numba-compiled loops.
# Why the bits cannot change:
# * every +, -, *, /, rint, min/max and comparison is an IEEE operation that LLVM compiles to
#   one correctly rounded instruction, vectorised or not;
# * numba compiles without fast-math, so LLVM may neither contract a * b + c into a fused
#   multiply-add (its IR carries no "contract" flag) nor reassociate: a running sum stays
#   sequential, as np.add.accumulate is by definition;
# * there is no libm call: 2^k is built from its bit pattern, exp is the polynomial above.
# And it is checked: ``compiled`` runs each twin against its numpy original on a probe of edge
# cases and random values before first use, and falls back to numpy (with a warning) on any
# difference (a cache compiled from other constants, say); tests/test_kernels.py compares every
# twin with its original to the bit on millions of values, and tests/test_portable.py decodes
# the golden files without twins and with twins compiled for a generic CPU, in subprocesses.
# numba is a dependency, but nothing needs it: without it (or with BFN_CODEC_KERNELS=numpy)
# the numpy originals run, slower, with the same bits. The loops themselves are in kernels.py
# (which also holds fused twins of the coder's bin masses, posteriors and frequencies); the
# constants are this file's.
_twins: dict = {}
_twins_lock = threading.Lock()
_numpy_only = [False]


@contextlib.contextmanager
def numpy_only():
    """Inside, every function here and its callers run the numpy originals (the tests and
    benchmarks compare the two ways; not for use while other threads code)."""
    before, _numpy_only[0] = _numpy_only[0], True
    try:
        yield
    finally:
        _numpy_only[0] = before


def compiled(name: str):
    """The compiled twin ``name`` (kernels.build lists them), or None where numba is
    missing, disabled (BFN_CODEC_KERNELS=numpy, ``numpy_only``) or failed its check here."""
    if _numpy_only[0]:
        return None
    if "all" not in _twins:
        with _twins_lock:
            if "all" not in _twins:
                _twins["all"] = _build_twins()
    table = _twins["all"]
    return None if table is None else table[name]


def _build_twins():
    if os.environ.get("BFN_CODEC_KERNELS", "").lower() == "numpy":
        return None
    try:
        table = _compile_twins()
        same = _probe_twins(table)
    except Exception:  # no numba, or no compiler for this platform: the numpy originals run
        return None
    bad = [name for name, ok in same.items() if not ok]
    if bad:
        warnings.warn(f"bfn-codec: compiled {', '.join(bad)} differ from the numpy originals here; "
                      "using numpy (same files, slower)", RuntimeWarning, stacklevel=3)
        return None
    return table


def _probe_twins(table) -> dict:
    """Each twin against its numpy original, to the bit, on edge cases and random values."""
    edges = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-300, 5e-324, -5e-324, 709.782712893384,
                      -745.1332191019412, 709.79, -745.14, 710.0, -746.0, 1e300, -1e300, 27.3, -27.3, 0.5])
    rng = np.random.default_rng(20261204)
    x = np.concatenate([edges, rng.uniform(-760.0, 720.0, 4000), rng.normal(0.0, 4.0, 4000)])
    same = {}
    with np.errstate(all="ignore"):
        for name, fn in (("exp", _exp), ("erfc_fast", _erfc_fast)):
            out = np.empty_like(x)
            table[name](x, out)
            same[name] = bool(np.array_equal(out.view(np.int64), fn(x).view(np.int64)))
        rows = rng.random((64, 33)) ** 9
        out = np.empty(64)
        table["row_sums"](rows, out)
        same["row_sums"] = bool(np.array_equal(out.view(np.int64), np.add.accumulate(rows, axis=1)[:, -1].view(np.int64)))
        # the coder's kernels, compiled (or loaded) now with the argument types their callers
        # pass, so that a platform where one cannot compile falls back here, not mid-file;
        # tests/test_kernels.py compares their results with the numpy originals
        i64, f64, one = np.zeros(2, dtype=np.int64), np.zeros(2), np.ones((2, 3))
        table["window_masses"](0, 2, i64, f64, np.ones(2), i64, 256, np.empty((2, 3)), 2.0 ** -26, np.empty(2),
                               np.empty(2, dtype=np.int64))
        table["posterior_rows"](0, 2, f64, f64, 0.5, 0.5, one, np.empty((2, 3)), np.empty(2), 2.0 ** -26,
                                np.empty(2, dtype=np.int64))
        table["frequencies"](0, 2, one, np.ones(2), np.empty((2, 3)), np.zeros(2, dtype=bool))
        table["kept_counts"](0, 2, one, 2.0 ** -26, np.empty(2), np.empty(2, dtype=np.int64))
        for k in (np.full(2, -1, dtype=np.int64), i64):
            table["kept_tables"](0, 2, one, 2.0 ** -26, np.ones(2), True, k, np.array([0, 4]),
                                 np.zeros((2, 3), dtype=np.int32), np.zeros(8), np.empty(2, dtype=np.int64),
                                 np.zeros(2, dtype=bool))
        # the integer network's (integer_net.py's fused path; tests/test_integer_net.py
        # compares their integers with its torch steps)
        a32, c3 = np.ones((1, 2, 3), dtype=np.float32), np.ones(3)  # [B, L, C]: channels-last
        for y in (a32, np.ones((1, 1, 3))):
            table["conv_requant"](0, 2, a32, np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), 2.0, c3, True, c3,
                                  7.0, 1.0, y, 1.0, True, np.empty_like(a32))
            table["add_requant"](0, 2, a32, 0.5, y, 2.0, 7.0, np.empty_like(a32))
        table["requant_into"](a32, 0.5, 7.0, np.empty((1, 2, 6), dtype=np.float32), 3)
        table["piece_split"](a32.reshape(1, 6), 4.0, np.zeros(1, dtype=np.int64), np.full(1, 2, dtype=np.int64),
                             np.empty((2, 6), dtype=np.float32))
        table["patch_energy"](a32, 1, 2, 3, 3, 1, 1, np.empty(1, dtype=np.int64))
        table["norm_silu"](0, 1, a32, 1, 6.0, 1e-5, c3, c3, 7.0, np.zeros(15), np.empty_like(a32))
    return same


def _compile_twins() -> dict:
    from . import kernels  # imports numba: only here, on first use

    return kernels.build()


def for_rows(fn, rows: int, width: int) -> None:
    """fn(a, b) for row ranges [a, b) covering 0..rows, about CHUNK values each, on the
    ``set_threads`` threads: for compiled kernels that treat rows independently (nogil), so
    that any split gives the same bits."""
    step = max(1, CHUNK // max(1, width))
    _run(lambda a: fn(a, min(a + step, rows)), range(0, rows, step))

