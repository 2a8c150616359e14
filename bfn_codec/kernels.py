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


@_inline
def ordered_sum1(row, W):  # exactmath.ordered_sum of row[:W], W >= 1: left to right
    s = row[0]
    for j in range(1, W):
        s = s + row[j]
    return s


@_inline
def sums_and_counts(x, a, b, fraction, totals, counts):
    # for rows a..b-1 of x [N, W]: ordered_sum1 of each (left to right, the same bits) and how
    # many of its entries reach fraction x that sum. The sums run four rows at a time: four
    # independent chains of additions hide each other's latency, where one chain waits for
    # each addition before the next (the rows are still in cache after their producer's loop)
    W = x.shape[1]
    i = a
    while i + 4 <= b:
        r0, r1, r2, r3 = x[i], x[i + 1], x[i + 2], x[i + 3]
        s0, s1, s2, s3 = r0[0], r1[0], r2[0], r3[0]
        for j in range(1, W):
            s0 = s0 + r0[j]
            s1 = s1 + r1[j]
            s2 = s2 + r2[j]
            s3 = s3 + r3[j]
        totals[i], totals[i + 1], totals[i + 2], totals[i + 3] = s0, s1, s2, s3
        i += 4
    while i < b:
        totals[i] = ordered_sum1(x[i], W)
        i += 1
    for i in range(a, b):
        threshold = totals[i] * fraction
        c = 0
        for j in range(W):
            if x[i, j] >= threshold:
                c += 1
        counts[i] = c


@_kernel
def row_sums(x, out):
    # exactmath.ordered_sum on rows [N, W]: r = x_0, then r = r + x_j, left to right
    for i in range(x.shape[0]):
        out[i] = ordered_sum1(x[i], x.shape[1])


@_inline
def tails2(x, n):
    # x[e] <- erfc1(|x[e]|) for e < n, the first and second halves in the same iteration: two
    # independent polynomial chains per vector step hide each other's latency (window_masses
    # 20% faster, measured; each element gets the same operations either way)
    h = n // 2
    for e in range(h):
        t0 = erfc1(abs(x[e]))
        t1 = erfc1(abs(x[e + h]))
        x[e] = t0
        x[e + h] = t1
    for e in range(2 * h, n):
        x[e] = erfc1(abs(x[e]))


@_kernel
def window_masses(a, b, lo, mu, inv, centre, K, out, fraction, totals, counts):
    # discretised.output_window_exact's bin masses for rows a..b-1 of out [N, W]: edge e of
    # row i at -1 + 2 (lo_i + e) / K, w = (edge - mu_i) inv_i, twice its tail erfc_fast(|w|)
    # (zero at the open outer edges), a bin's mass half the difference of its edges' tails,
    # and the bin that holds the mean 1 - (its two tails) / 2, at least 0; then, while the row
    # is in cache, its ordered sum and how many masses reach fraction x that sum (kept_counts)
    W = out.shape[1]
    tail2 = np.empty(W + 1)
    step = 2.0 / K
    for i in range(a, b):
        for e in range(W + 1):
            tail2[e] = ((-1.0 + np.float64(lo[i] + e) * step) - mu[i]) * inv[i]
        tails2(tail2, W + 1)
        if lo[i] == 0:
            tail2[0] = 0.0
        if lo[i] == K - W:
            tail2[W] = 0.0
        for j in range(W):
            out[i, j] = 0.5 * abs(tail2[j + 1] - tail2[j])
        c = centre[i] - lo[i]
        if c >= 0 and c < W:
            out[i, c] = maximum0(1.0 - 0.5 * (tail2[c] + tail2[c + 1]))
    if W > 0:
        sums_and_counts(out, a, b, fraction, totals, counts)


@_inline
def posterior1(d, mm, ha, w):  # one entry of posterior_rows
    return exp1(minimum0(mm - ha * (d * d))) * w


@_kernel
def posterior_rows(a, b, base, m, step, ha, w, out, total, fraction, counts):
    # portable.posterior_1d for rows a..b-1: d_j = base_i + j step, expo = ha m_i^2 - ha d_j^2,
    # post = exp(min(expo, 0)) w_ij; then, while the rows are in cache, each row's ordered sum
    # and how many entries reach fraction x that sum (``sums_and_counts``: kept_counts' numbers,
    # for which the kept tables would otherwise read the whole table again)
    # (the entries in a loop of their own, which vectorises, four quarters of the row per
    # iteration for independent chains as in tails2 (20% faster, measured))
    W = w.shape[1]
    q = W // 4
    for i in range(a, b):
        if W == 0:  # an empty row sums to 0 (the callers never pass one)
            total[i] = 0.0
            counts[i] = 0
            continue
        mm, bi, o, wi = ha * (m[i] * m[i]), base[i], out[i], w[i]
        for j in range(q):
            p0 = posterior1(bi + np.float64(j) * step, mm, ha, wi[j])
            p1 = posterior1(bi + np.float64(j + q) * step, mm, ha, wi[j + q])
            p2 = posterior1(bi + np.float64(j + 2 * q) * step, mm, ha, wi[j + 2 * q])
            p3 = posterior1(bi + np.float64(j + 3 * q) * step, mm, ha, wi[j + 3 * q])
            o[j], o[j + q], o[j + 2 * q], o[j + 3 * q] = p0, p1, p2, p3
        for j in range(4 * q, W):
            o[j] = posterior1(bi + np.float64(j) * step, mm, ha, wi[j])
    if W > 0:
        sums_and_counts(out, a, b, fraction, total, counts)


@_inline
def row_frequencies(row, o, W, target, s):
    # portable.frequencies for one row (its first W entries, their ordered sum s; o may be row
    # itself): floor(p_k target / s), the floors' shortfall added to the first largest entry;
    # False where the row is not finite, sums to 0 or so little that target / sum overflows
    # (the floors of a table's entries are integers of at most 2^24 in magnitude, so over at
    # most 2^28 entries their sum is exact in any order: summed as int64, which vectorises, where
    # numpy sums them left to right; a row with a larger floor, which no probability table has,
    # is summed as numpy does)
    finite = True
    for j in range(W):
        finite = finite & (row[j] - row[j] == 0.0)
    scale = target / s
    if not (finite and s > 0.0 and scale - scale == 0.0):
        return False
    small = True
    for j in range(W):
        f = np.floor(row[j] * scale)
        o[j] = f
        small = small & (abs(f) <= 16777216.0)
    if small:
        n = np.int64(0)
        for j in range(W):
            n += np.int64(o[j])
        fs = np.float64(n)
    else:
        fs = ordered_sum1(o, W)
    top = 0
    for j in range(1, W):
        if o[j] > o[top]:
            top = j
    o[top] = o[top] + (target - fs)
    return True


@_kernel
def frequencies(a, b, probs, target, out, bad):
    # portable.frequencies for rows a..b-1 (row_frequencies); bad[i] where row i cannot have any
    W = probs.shape[1]
    for i in range(a, b):
        if not row_frequencies(probs[i], out[i], W, target[i], ordered_sum1(probs[i], W)):
            bad[i] = True


@_kernel
def kept_counts(a, b, probs, fraction, totals, counts):
    # portable._kept for rows a..b-1: each row's ordered sum, and how many entries reach
    # fraction x that sum (where the table's producer has not given them: ``sums_and_counts``)
    sums_and_counts(probs, a, b, fraction, totals, counts)


@_kernel
def kept_tables(a, b, probs, fraction, totals, escape, k, offsets, cols, buf, sym, bad):
    # portable._Packed's tables for rows a..b-1, after kept_counts: row i's kept entries
    # (p >= fraction x its sum) packed, in column order, at buf[offsets[i]:] with their
    # columns in cols[i]; with ``escape``, where the row dropped anything, the dropped mass
    # after them (the row's sum less the kept entries' ordered sum, at least 0); then those L
    # or L + 1 entries replaced by their frequencies (row_frequencies; bad[i] where they cannot
    # have any). Where k[i] >= 0, sym[i] is entry k[i]'s rank among the kept entries, or L
    # where it was dropped (_Packed.symbols).
    # portable.py sums the packed row over a zero-padded table, so after its kept entries the
    # escape's sum adds at least one 0.0, and the frequencies' sum zeros that can only follow a
    # positive sum (kept entries are >= fraction x a sum; if that sum is not positive the row is
    # refused either way): the one zero added below gives the same bits. The frequencies' sum
    # is not summed again where it is known: a row that kept everything is the row itself (its
    # sum: totals[i]), and a row with an escape sums to its kept entries' sum plus the escape.
    W = probs.shape[1]
    for i in range(a, b):
        row, o = probs[i], buf[offsets[i]:]
        s = totals[i]
        threshold = s * fraction
        kk = k[i]
        rank = -1
        L = 0
        for j in range(W):
            if row[j] >= threshold:
                if j == kk:
                    rank = L
                o[L] = row[j]
                cols[i, L] = j
                L += 1
        if kk >= 0:
            sym[i] = rank if rank >= 0 else L
        width, total = L, s
        if L == 0:
            total = 0.0
        elif L < W:
            total = ordered_sum1(o, L)
        if escape and L < W:
            o[L] = maximum0(s - (total + 0.0))
            total = total + o[L]
            width = L + 1
        if width == 0 or not row_frequencies(o, o, width, 16777216.0 - width, total):
            bad[i] = True  # (no entry kept: the row's sum was NaN)


# ----- the integer network's elementwise steps (integer_net.py) -------------------------------
# Activations are integers held in float32 (|q| < 2^24: exact); every step below is either
# exact (sums of integers, products by powers of two, rounding, clamping) or, in GroupNorm,
# the same correctly rounded float64 operations in the same order as integer_net's torch code.
# They are stored channels-last: an array [B, L, C] (L = H W pixels), so the inner loops run
# over the channels, whose per-channel constants (bias, scale, gain) then vectorise too.


@_inline
def clamp1(v, qmax):  # v clamped to [-qmax, qmax] (selects, so that loops vectorise)
    v = qmax if v > qmax else v
    return -qmax if v < -qmax else v


@_kernel
def piece_split(q, unit, start, count, out):
    # integer_net._piece_stack, elementwise and per item: q [B, N] (float32 integers below 2^24,
    # each item flattened) as count[i] pieces in rows start[i] .. start[i] + count[i] - 1 of
    # out, q = sum_j p_j unit^j (one piece: q itself). The top piece's row starts as q (the
    # rest); per lower piece j, top = floor(rest / unit), piece j = rest - unit top, and top is
    # the next rest (unit a power of two: every step exact in float32)
    B, N = q.shape
    inv = np.float32(1.0) / np.float32(unit)
    u = np.float32(unit)
    for i in range(B):
        pieces = count[i]
        rest, src = out[start[i] + pieces - 1], q[i]
        for n in range(N):
            rest[n] = src[n]
        for j in range(pieces - 1):
            low = out[start[i] + j]
            for n in range(N):
                top = np.float32(np.floor(rest[n] * inv))
                low[n] = rest[n] - u * top
                rest[n] = top


@_kernel
def patch_energy(q, H, W, kh, kw, ph, pw, out):
    # integer_net._one_piece: per item of q [B, H W, C] (integers), the largest sum of q^2 over a
    # kh x kw window of q zero-padded by (ph, pw), every window at stride 1 (so every window of
    # any stride is among them). In int64 (exact, so any order gives the same sum; the caller
    # has checked that kh kw C max q^2 stays below 2^63)
    B, L, C = q.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    e = np.zeros((Hp, Wp), dtype=np.int64)
    for i in range(B):
        for y in range(H):
            for x in range(W):
                row = q[i, y * W + x]
                s = np.int64(0)
                for c in range(C):
                    v = np.int64(row[c])
                    s += v * v
                e[y + ph, x + pw] = s
        best = np.int64(0)
        for y0 in range(Hp - kh + 1):
            for x0 in range(Wp - kw + 1):
                s2 = np.int64(0)
                for dy in range(kh):
                    for dx in range(kw):
                        s2 += e[y0 + dy, x0 + dx]
                best = max(best, s2)
        out[i] = best


@_kernel
def conv_requant(a, b, acc, start, count, unit, bias, has_bias, scale, qmax, sx, y, sy, has_y, out):
    # integer_net.IntegerUNet.conv after _split_conv, pixels a..b-1 of out [B, L, C] (pixel =
    # i L + l): item i's count[i] pieces' float32 sums (rows start[i] .. of acc [rows, L, C],
    # ``piece_split``'s layout) rounded, recombined in float64
    # by Horner in 2^b (exact), the integer bias added (exact), times a power of two (exact),
    # rounded half to even, clamped; then, with has_y, the sum that follows the convolution
    # (add_requant's steps) on the result
    B, L, C = out.shape
    v = np.empty(C)
    for r in range(a, b):
        i, l = r // L, r % L
        top = acc[start[i] + count[i] - 1, l]
        for c in range(C):
            v[c] = np.float64(np.rint(top[c]))
        for j in range(count[i] - 2, -1, -1):
            low = acc[start[i] + j, l]
            for c in range(C):
                v[c] = v[c] * unit + np.float64(np.rint(low[c]))
        if has_bias:
            for c in range(C):
                v[c] = v[c] + bias[c]
        for c in range(C):
            v[c] = clamp1(np.rint(v[c] * scale[c]), qmax)
        o = out[i, l]
        if has_y:
            sum_pixel(v, sx, y, i, l, sy, qmax, o)
        else:
            for c in range(C):
                o[c] = v[c]


@_inline
def sum_pixel(x, sx, y, i, l, sy, qmax, o):
    # integer_net._IntegerOps.add for pixel (i, l): x (its channels) and y's requantised to the
    # sum's scale (times a power of two, rounded, clamped: exact), added, clamped into o. y is
    # [B, L, C], or [B, 1, C] or [1, 1, C] (a time shift: per item or one for every item, the
    # same at every pixel)
    yr = y[i if y.shape[0] > 1 else 0, l if y.shape[1] > 1 else 0]
    for c in range(o.shape[0]):
        o[c] = clamp1(clamp1(np.rint(x[c] * sx), qmax) + clamp1(np.rint(yr[c] * sy), qmax), qmax)


@_kernel
def add_requant(a, b, x, sx, y, sy, qmax, out):
    # integer_net._IntegerOps.add, pixels a..b-1 of out [B, L, C] (``sum_pixel``)
    L = out.shape[1]
    for r in range(a, b):
        i, l = r // L, r % L
        sum_pixel(x[i, l], sx, y, i, l, sy, qmax, out[i, l])


@_kernel
def requant_into(x, sx, qmax, out, c0):
    # integer_net.IntegerUNet.requant of x [B, L, C] into channels c0..c0+C-1 of out (the
    # concatenation of the U-Net's skip connections): times a power of two, rounded, clamped
    B, L, C = x.shape
    for i in range(B):
        for l in range(L):
            xr, o = x[i, l], out[i, l]
            for c in range(C):
                o[c0 + c] = clamp1(np.rint(xr[c] * sx), qmax)


@_kernel
def norm_silu(a, b, q, groups, n, eps, gain, shift, qmax, table, out):
    # integer_net.IntegerUNet.group_norm then .silu, for items a..b-1 of q [B, L, C]: per group
    # S1 = sum q and S2 = sum q^2 (exact: integer sums, in int64, so their order is free: per
    # channel over the pixels, then over the group's channels), then per value
    # z = (q n - S1) / sqrt((n S2 - S1^2) + eps), z gain_c + shift_c (float64, the torch code's
    # operations and order), rounded, clamped, and the SiLU table there
    B, L, C = q.shape
    cg = C // groups
    offset = np.int64(qmax)
    t1, t2 = np.empty(C, np.int64), np.empty(C, np.int64)
    f1, denom = np.empty(C), np.empty(C)  # per channel: its group's S1 and denominator
    index = np.empty(C, np.int64)
    for i in range(a, b):
        t1[:] = 0
        t2[:] = 0
        for l in range(L):
            row = q[i, l]
            for c in range(C):
                v = np.int64(row[c])
                t1[c] += v
                t2[c] += v * v
        for g in range(groups):
            s1 = np.int64(0)
            s2 = np.int64(0)
            for c in range(g * cg, (g + 1) * cg):
                s1 += t1[c]
                s2 += t2[c]
            g1, g2 = np.float64(s1), np.float64(s2)  # |S1| < 2^53, S2 < 2^53: exact
            d = np.sqrt((n * g2 - g1 * g1) + eps)
            for c in range(g * cg, (g + 1) * cg):
                f1[c] = g1
                denom[c] = d
        for l in range(L):
            row, o = q[i, l], out[i, l]
            for c in range(C):
                z = (np.float64(row[c]) * n - f1[c]) / denom[c]
                index[c] = np.int64(clamp1(np.rint(z * gain[c] + shift[c]), qmax)) + offset
            for c in range(C):
                o[c] = table[index[c]]


def build() -> dict:
    """The kernels by name (exactmath.compiled checks them against the numpy originals)."""
    return {"exp": exp, "erfc_fast": erfc_fast, "row_sums": row_sums, "window_masses": window_masses,
            "posterior_rows": posterior_rows, "frequencies": frequencies, "kept_counts": kept_counts,
            "kept_tables": kept_tables,
            "conv_requant": conv_requant, "add_requant": add_requant,
            "requant_into": requant_into, "piece_split": piece_split, "patch_energy": patch_energy,
            "norm_silu": norm_silu}
