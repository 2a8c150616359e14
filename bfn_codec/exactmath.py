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
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from math import factorial

import numpy as np

# ln 2 = LN2_HI + LN2_LO, with LN2_HI's low 21 bits zero, so k * LN2_HI is exact for |k| < 2^21.
LN2_HI = float.fromhex("0x1.62e42feep-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")  # ln 2 - LN2_HI, rounded
INV_LN2 = float.fromhex("0x1.71547652b82fep+0")  # 1 / ln 2, rounded
SQRT_HALF = float.fromhex("0x1.6a09e667f3bcdp-1")
# pi / 2 = PIO2_1 + PIO2_2 + PIO2_3 (33 + 33 + 53 bits): k * PIO2_1 and k * PIO2_2 are exact
# for |k| < 2^20, which bounds the sin/cos argument to about 1.6e6.
PIO2_1 = float.fromhex("0x1.921fb544p+0")
PIO2_2 = float.fromhex("0x1.0b4611a6p-34")
PIO2_3 = float.fromhex("0x1.3198a2e037073p-69")
TRIG_LIMIT = float(2 ** 20)
SPLIT = float(2 ** 27 + 1)  # Dekker's splitter: x = hi + lo with hi of 26 significant bits
TWO_OVER_SQRT_PI = float.fromhex("0x1.20dd750429b6dp+0")


def _coefficients(values) -> np.ndarray:
    """Exact rationals rounded once to float64 (Python's float(Fraction) rounds correctly)."""
    return np.array([float(v) for v in values], dtype=np.float64)


EXP_C = _coefficients(Fraction(1, factorial(k)) for k in range(14))  # exp(r), |r| <= 0.3466
LOG_C = _coefficients(Fraction(2, 2 * k + 1) for k in range(1, 12))  # 2 s^(2k) / (2k + 1)
# erf(x) = 2/sqrt(pi) sum_k (-1)^k x^(2k+1) / (k! (2k+1)), |x| < 0.5: 13 terms to 2^-60
ERF_C = _coefficients(Fraction((-1) ** k, factorial(k) * (2 * k + 1)) for k in range(13))
SIN_C = _coefficients(Fraction((-1) ** k, factorial(2 * k + 1)) for k in range(10))
COS_C = _coefficients(Fraction((-1) ** k, factorial(2 * k)) for k in range(10))

ERFC_INTERVALS = np.array([0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 28.0])
ERFC_MAX = 27.3  # erfc(27.3) < 2^-1075: zero in float64
# G(x) = erfc(x) exp(x^2) on [a, b] = ERFC_INTERVALS[i : i + 2], as a polynomial in
# u = (2x - a - b) / (b - a) (constant first); derived by exactmath_fit.erfc_table
_ERFC_TABLE = (
    "0x1.038d54ea3d834p-1 -0x1.78cdd551ee51ap-4 0x1.d90093ae10928p-7 -0x1.09e77d40e0239p-9 0x1.1192f5bd6877dp-12 -0x1.054d68295b244p-15 0x1.d43a7c7a661b3p-19 -0x1.8c97dd4ea4906p-22 0x1.3f81897ce8651p-25 -0x1.ec0cf4e3344b9p-29 0x1.6b982c1d4a8b2p-32 -0x1.02b1604028d9ap-35 0x1.6372355c4ec65p-39 -0x1.d8bafbaebbacap-43 0x1.30ecbde8dc9d4p-46 -0x1.7e469e1525974p-50 0x1.d27f0024ead17p-54 -0x1.157780d05ed0ep-57 0x1.422cd300b17d0p-61 -0x1.6d766a2a1de5ap-65 0x1.95b1f1e62a0e3p-69 -0x1.c44b73852253cp-73 0x1.e16c03449d7d3p-77",
    "0x1.494daffa2ad68p-2 -0x1.4f1988444caf7p-4 0x1.37ea271bc54bdp-6 -0x1.0dc51d2941e6dp-8 0x1.b65944f34f7adp-11 -0x1.513ed7600d1c1p-13 0x1.ee705e736464dp-16 -0x1.5b0abfe65a31dp-18 0x1.d4509d0d417c7p-21 -0x1.30c0ec743ca2ep-23 0x1.7f99792354fbep-26 -0x1.d4157187d69e0p-29 0x1.156c936a5fb5bp-31 -0x1.4004f03d95a5bp-34 0x1.67cf5ef3b9c3cp-37 -0x1.8adbfc5ac441fp-40 0x1.a7798daa77c05p-43 -0x1.bc5fe6695ac0cp-46 0x1.c8a5b2c36df06p-49 -0x1.ca82b318739aap-52 0x1.c540dd474bdc7p-55 -0x1.de1ef968f85dfp-58 0x1.c6ad17203cba7p-61",
    "0x1.6e9827d229d2dp-3 -0x1.bd6ae4d14b16fp-5 0x1.043fe1a98c0cdp-6 -0x1.259061ba85692p-8 0x1.409cc2ed3fefcp-10 -0x1.53dec9d0895c0p-12 0x1.5e73930485048p-14 -0x1.6025103c14645p-16 0x1.595f1b5dc38f0p-18 -0x1.4b14628869c33p-20 0x1.369904b839826p-22 -0x1.1d7913ca8c531p-24 0x1.01508e2a05f87p-26 -0x1.c752340e1e034p-29 0x1.8bbf33f2279c5p-31 -0x1.522324439ba56p-33 0x1.1c3ea18cc44d4p-35 -0x1.d71be8245dba9p-38 0x1.7fef2c231cfc5p-40 -0x1.2cab14bcd45e3p-42 0x1.dcddffdf8032fp-45 -0x1.d7607bdf4ff45p-47 0x1.697db44fc4913p-49",
    "0x1.7c0348489d721p-4 -0x1.ed7f66d9d09fep-6 0x1.3c7764a81f462p-7 -0x1.9106a7cd79df8p-9 0x1.f64cd9c07b66cp-11 -0x1.370d06417ac40p-12 0x1.7d0e03edb2214p-14 -0x1.cde4ceca58c4bp-16 0x1.1513469ecdd63p-17 -0x1.491bb152f4eb5p-19 0x1.83201a8128c65p-21 -0x1.c312a78c5953ap-23 0x1.045ffc9dc9112p-24 -0x1.29e8afef4d7eep-26 0x1.51dac6bc001e4p-28 -0x1.7b931f0224871p-30 0x1.a73db2b330e91p-32 -0x1.d9806d433f62ap-34 0x1.03956f2260367p-35 -0x1.f7cd8661a9f33p-38 0x1.110fda41ea140p-39 -0x1.e8e59452fb60fp-41 0x1.028f1b8ae16b7p-42",
    "0x1.7fd46c5e0864dp-5 -0x1.fc477b46d665bp-7 0x1.4f67f473cc4f9p-8 -0x1.b92eddb6a4951p-10 0x1.21338ab42f122p-11 -0x1.79e921ac8bba3p-13 0x1.ec3b264bc4592p-15 -0x1.3f89d99e18e3bp-16 0x1.9d8bf916b8b2dp-18 -0x1.0ac36f2995aa8p-19 0x1.57157e74d941fp-21 -0x1.b7df47912c331p-23 0x1.191ed7882509bp-24 -0x1.664bc32a30b93p-26 0x1.c733c46816cb8p-28 -0x1.1f7321bad987ep-29 0x1.6b0de7e06ba73p-31 -0x1.d854413da80d5p-33 0x1.2858fee4b3671p-34 -0x1.1dd9cb8957547p-36 0x1.661b8dd0fb428p-38 -0x1.ef7ede5a49fbap-39 0x1.3286f33afb56ap-40",
    "0x1.a3bc12161d4ebp-6 -0x1.c8f37dc1645ebp-8 0x1.f0f552e2edc85p-10 -0x1.0df55507cd4a9p-11 0x1.24feef9a0ae7bp-13 -0x1.3dad41895eedep-15 0x1.5816a517dc716p-17 -0x1.7451fc87cb597p-19 0x1.9276a6dea2d94p-21 -0x1.b29c739ff15b8p-23 0x1.d4db9301e720fp-25 -0x1.f94c6cf2e3391p-27 0x1.1003fe011927bp-28 -0x1.2495d3603341dp-30 0x1.3a63d4d253edep-32 -0x1.513e3f455993fp-34 0x1.69aa7fc1a4cffp-36 -0x1.87d6dc5258b64p-38 0x1.a35d2faf46b2ep-40 -0x1.8f6a4a6f71245p-42 0x1.aae1f1a86eb78p-44 -0x1.809a71a832cc1p-45 0x1.99b74817c1991p-47",
)
ERFC_G = np.array([[float.fromhex(c) for c in row.split()] for row in _ERFC_TABLE])
_ERFC_COLUMNS = np.ascontiguousarray(ERFC_G.T)  # [power, interval]
# erfc_fast: erfc(x) = t exp(-x^2 + P(2t - 1)), t = 1 / (1 + x/2), P of degree 16 (constant
# first); derived by exactmath_fit.erfc_fast_table
ERFC_FAST_P = np.array([float.fromhex(c) for c in (
    "-0x1.57f564e956ebep-1 0x1.5864b151aaaf0p-1 0x1.83d61c76c2240p-5 -0x1.802b38ecd03d1p-5 -0x1.43823a6fe7fa3p-7 "
    "0x1.212cf442457cdp-7 0x1.cd2422aa7eb16p-10 -0x1.3379c1a6ed424p-9 -0x1.351bd4bbc3c1dp-13 0x1.61622234f12f0p-11 "
    "-0x1.78cd38bb85c76p-14 -0x1.7069072c81eeep-13 0x1.0bac85cca91bdp-14 0x1.237c56c0e5b41p-15 -0x1.6b92a2ddeaa76p-16 "
    "-0x1.f5f2bca83449cp-19 0x1.c68e309585212p-19").split()])


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
_pools: dict[int, ThreadPoolExecutor] = {}  # by size; never shut down, so a caller on another
_pools_lock = threading.Lock()              # thread (a Dask worker) never meets a closed pool


def set_threads(n: int) -> None:
    """Threads for large arrays in ``exp`` and ``erfc_fast`` (the caller's thread budget)."""
    global _threads
    _threads = max(1, int(n))


CHUNK = 1 << 16  # elements per piece of a large array: the piece's temporaries stay in cache


def _elementwise(fn, x: np.ndarray) -> np.ndarray:
    """fn(x) for an elementwise fn; a large x in pieces of ``CHUNK`` elements (fn runs a few
    dozen numpy operations, each a pass over its input: on pieces that fit in cache they run
    2-3x faster than on arrays of millions of elements), spread over ``_threads`` threads.
    Every element goes through the same operations either way, so the bits do not change."""
    if x.size <= CHUNK:
        return fn(x)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=np.float64)

    def piece(start: int) -> None:
        out[start:start + CHUNK] = fn(flat[start:start + CHUNK])

    starts = range(0, flat.size, CHUNK)
    n = _threads
    if n <= 1:
        for start in starts:
            piece(start)
    else:
        with _pools_lock:
            pool = _pools.get(n) or _pools.setdefault(n, ThreadPoolExecutor(max_workers=n, thread_name_prefix="exactmath"))
        list(pool.map(piece, starts))
    return out.reshape(x.shape)


def exp(x) -> np.ndarray:
    """e^x (``_exp``, on several threads for large arrays)."""
    return _elementwise(_exp, _f64(x))


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
    return _elementwise(_erfc_fast, _f64(x))


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
