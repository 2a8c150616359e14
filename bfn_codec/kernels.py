"""numba-compiled twins of the portable arithmetic's hot loops: the same operations, fused.

Each function performs, for every element or row, the operations of its numpy original (named
in its comment) in the same order, with the same constants (exactconst.py, which numba freezes
into the code), so it gives the same bits (exactmath.py's "compiled twins" section says why
that holds and how it is checked). They run one element at a time instead of one numpy pass per
operation over arrays of millions of values, which is where the 8-bit coder's time went.
Compiled code is cached next to this file (or in numba's user cache directory) so that a process
compiles only once per machine. exactmath.compiled imports this module on first use; nothing
does when numba is missing or disabled.
"""
from __future__ import annotations

import numba
import numpy as np

from .exactconst import ERFC_FAST_P, EXP_C, INV_LN2, LN2_HI, LN2_LO

_C = np.concatenate([[INV_LN2, LN2_HI, LN2_LO], EXP_C[2:]])  # exp's reduction, then its polynomial
_P = np.array(ERFC_FAST_P, dtype=np.float64)  # erfc_fast's polynomial, constant first
_HI, _LO = 709.782712893384, -745.1332191019412  # exactmath._exp's range


def _jit(**options):
    """numba.njit without fast-math (no contraction into FMAs, no reassociation), cached where a
    cache directory is writable."""
    def wrap(fn):
        try:
            return numba.njit(cache=True, fastmath=False, error_model="numpy", **options)(fn)
        except RuntimeError:  # no writable cache location: compile in every process
            return numba.njit(fastmath=False, error_model="numpy", **options)(fn)
    return wrap


_inline = _jit(inline="always")
_kernel = _jit(nogil=True)


@_inline
def pow2(k):  # 2^k for an integer k in [-1022, 1023], from its bit pattern (exactmath._pow2)
    return np.int64((k + 1023) << 52).view(np.float64)


@_inline
def exp1(x):
    # exactmath._exp for one value. Out-of-range inputs are clamped for the arithmetic and
    # their results replaced after it (selects rather than branches, so the loops
    # vectorise); in range the clamp is the identity and the operations are _exp's.
    nan = x != x
    v = 0.0 if nan else x
    v = min(max(v, -746.0), 710.0)
    k = np.rint(v * _C[0])
    r = (v - k * _C[1]) - k * _C[2]
    h = _C[_C.size - 1]
    for i in range(_C.size - 2, 2, -1):
        h = h * r + _C[i]
    p = r * r
    p = p * h
    p = p + r
    p = p + 1.0
    ki = np.int64(k)
    half = ki >> 1
    p = p * pow2(half)
    p = p * pow2(ki - half)
    p = np.inf if x > _HI else p
    p = 0.0 if x < _LO else p
    return np.nan if nan else p  # numpy's NaN (_exp's np.where), whatever NaN came in


@_inline
def erfc1(v):
    # exactmath._erfc_fast for one value: t = 1 / (1 + |x|/2), erfc = t exp(P(2t - 1) - x^2),
    # and 2 - that for x < 0
    a = abs(v)
    t = 0.5 * a
    t = t + 1.0
    t = 1.0 / t
    u = 2.0 * t
    u = u - 1.0
    p = _P[_P.size - 1]
    for j in range(_P.size - 2, -1, -1):
        p = p * u + _P[j]
    p = p - a * a
    e = exp1(p) * t
    return 2.0 - e if v < 0 else e


@_inline
def maximum0(x):  # np.maximum(x, 0.0): NaN stays NaN
    return x if (x >= 0.0 or x != x) else 0.0


@_inline
def minimum0(x):  # np.minimum(x, 0.0): NaN stays NaN
    return x if (x <= 0.0 or x != x) else 0.0


@_kernel
def exp(x, out):
    for i in range(x.size):
        out[i] = exp1(x[i])


@_kernel
def erfc_fast(x, out):
    for i in range(x.size):
        out[i] = erfc1(x[i])


@_kernel
def row_sums(x, out):
    # exactmath.ordered_sum on rows [N, W]: r = x_0, then r = r + x_j, left to right
    for i in range(x.shape[0]):
        s = x[i, 0]
        for j in range(1, x.shape[1]):
            s = s + x[i, j]
        out[i] = s


@_kernel
def window_masses(a, b, lo, mu, inv, centre, K, out):
    # discretised.output_window_exact's bin masses for rows a..b-1 of out [N, W]: edge e of
    # row i at -1 + 2 (lo_i + e) / K, w = (edge - mu_i) inv_i, twice its tail erfc_fast(|w|)
    # (zero at the open outer edges), a bin's mass half the difference of its edges' tails,
    # and the bin that holds the mean 1 - (its two tails) / 2, at least 0
    W = out.shape[1]
    tail2 = np.empty(W + 1)
    step = 2.0 / K
    for i in range(a, b):
        for e in range(W + 1):
            w = ((-1.0 + np.float64(lo[i] + e) * step) - mu[i]) * inv[i]
            tail2[e] = erfc1(abs(w))
        if lo[i] == 0:
            tail2[0] = 0.0
        if lo[i] == K - W:
            tail2[W] = 0.0
        for j in range(W):
            out[i, j] = 0.5 * abs(tail2[j + 1] - tail2[j])
        c = centre[i] - lo[i]
        if c >= 0 and c < W:
            out[i, c] = maximum0(1.0 - 0.5 * (tail2[c] + tail2[c + 1]))


@_kernel
def posterior_rows(a, b, base, m, step, ha, w, out, total):
    # portable.posterior_1d for rows a..b-1: d_j = base_i + j step, expo = ha m_i^2 - ha d_j^2,
    # post = exp(min(expo, 0)) w_ij, and each row's ordered sum
    for i in range(a, b):
        mm = ha * (m[i] * m[i])
        s = 0.0
        for j in range(w.shape[1]):
            d = base[i] + np.float64(j) * step
            q = exp1(minimum0(mm - ha * (d * d))) * w[i, j]
            out[i, j] = q
            s = q if j == 0 else s + q
        total[i] = s


@_kernel
def frequencies(a, b, probs, target, out, bad):
    # portable.frequencies for rows a..b-1: floor(p_k target / sum p), the floors' shortfall
    # added to the row's first largest entry; bad[i] where a row is not finite, sums to 0 or
    # so little that target / sum overflows
    for i in range(a, b):
        W = probs.shape[1]
        s = probs[i, 0]
        finite = s - s == 0.0
        for j in range(1, W):
            s = s + probs[i, j]
            finite = finite and (probs[i, j] - probs[i, j] == 0.0)
        scale = target[i] / s
        if not (finite and s > 0.0 and scale - scale == 0.0):
            bad[i] = True
            continue
        top = 0
        for j in range(W):
            f = np.floor(probs[i, j] * scale)
            out[i, j] = f
            if f > out[i, top]:
                top = j
        fs = out[i, 0]
        for j in range(1, W):
            fs = fs + out[i, j]
        out[i, top] = out[i, top] + (target[i] - fs)


@_kernel
def kept_counts(a, b, probs, fraction, totals, counts):
    # portable._kept for rows a..b-1: each row's ordered sum, and how many entries reach
    # fraction x that sum
    for i in range(a, b):
        s = probs[i, 0]
        for j in range(1, probs.shape[1]):
            s = s + probs[i, j]
        totals[i] = s
        threshold = s * fraction
        c = 0
        for j in range(probs.shape[1]):
            if probs[i, j] >= threshold:
                c += 1
        counts[i] = c


@_kernel
def pack_kept(a, b, probs, fraction, totals, escape, table, cols):
    # portable._Packed for rows a..b-1 of a zeroed table [N, width]: the kept entries packed to
    # the left with their columns, and with ``escape`` the dropped mass, the row's ordered sum
    # less the packed row's (zeros included, as numpy sums it), at least 0, after them
    W = probs.shape[1]
    for i in range(a, b):
        threshold = totals[i] * fraction
        L = 0
        for j in range(W):
            if probs[i, j] >= threshold:
                table[i, L] = probs[i, j]
                cols[i, L] = j
                L += 1
        if escape and L < W:
            s = table[i, 0]
            for j in range(1, table.shape[1]):
                s = s + table[i, j]
            table[i, L] = maximum0(totals[i] - s)


def build() -> dict:
    """The kernels by name (exactmath.compiled checks them against the numpy originals)."""
    return {"exp": exp, "erfc_fast": erfc_fast, "row_sums": row_sums, "window_masses": window_masses,
            "posterior_rows": posterior_rows, "frequencies": frequencies, "kept_counts": kept_counts,
            "pack_kept": pack_kept}
