"""Coder revision 6: the arithmetic from network integers to coder frequencies, the same bits on
every machine (docs/design.md §15, docs/format.md 'Arithmetic revisions').

Revision 5 computed its probabilities with torch's float kernels and libm: a decoder on another
instruction set, thread count or package version could rebuild a different table and lose the
data. Here every number the coder uses is a deterministic function of integers and correctly
rounded IEEE operations (+ - * / sqrt in numpy float64, one ufunc per operation, so nothing is
fused or reordered) and exactmath's functions, which are built from those:

* the network is the integer U-Net (integer_net.py), whose outputs are exact integers times
  powers of two;
* schedules, network inputs and output distributions come from the data types' ``*_exact``
  methods (discrete.py, discretised.py);
* sums over a table's entries run in a fixed order (``ordered_sum``), never through a
  reduction whose order may depend on SIMD width or threads;
* probabilities become integer frequencies here (``frequencies``), summing to exactly
  2^24 - W for W symbols, and are handed to constriction as those integers: its fast
  quantiser then computes scale = 1 and exact integer cumulatives, so it codes with
  frequency f_k + 1 for symbol k (total 2^24) whatever its own float arithmetic;
* Gaussians are coded with our own tables (``GaussianTables``), not constriction's
  QuantizedGaussian (which calls the platform's libm): bin masses from exactmath.erfc_fast
  for the mean offset rounded to 1/MEAN_RESOLUTION of a grid step, within 8 std of the mean,
  and an escape to a uniform code for the rest of the support.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import constriction
import numpy as np

from . import exactmath

TOTAL = 1 << 24  # constriction's default precision: frequencies sum to 2^24
MEAN_RESOLUTION = 1024  # a Gaussian's mean is coded at 1/1024 of a grid step (KL ~ 1e-8 nats)
_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


class RangeError(RuntimeError):
    """A value fell outside the support it must be coded with."""


ordered_sum = exactmath.ordered_sum  # sums over a table's entries, left to right


def frequencies(probs: np.ndarray, widths: np.ndarray | None = None) -> np.ndarray:
    """Integer frequencies (as float64) per row of ``probs`` [N, W] summing to exactly 2^24 - W:
    floor(p_k (2^24 - W) / sum p), then what the floors left over added to the row's largest
    entry (the first if tied). Rows must have a positive finite sum. With ``widths`` [N], row i
    is a table of its first widths[i] entries, zeros after them: they add nothing to its sum and
    take no remainder (its largest frequency is positive), so it gets that table's frequencies."""
    probs = np.asarray(probs, dtype=np.float64)
    if not probs.size:
        return probs.copy()
    W = probs.shape[-1] if widths is None else widths.astype(np.float64)
    target = float(TOTAL) - W
    rows_shape = probs.shape[:-1]
    kernel = exactmath.compiled("frequencies") if np.broadcast_shapes(np.shape(target), rows_shape) == rows_shape else None
    if kernel is not None:  # the same operations per row, fused (kernels.py)
        rows = np.ascontiguousarray(probs.reshape(-1, probs.shape[-1]))
        out = np.empty(rows.shape)
        bad = np.zeros(rows.shape[0], dtype=bool)
        targets = np.ascontiguousarray(np.broadcast_to(target, rows_shape).reshape(-1), dtype=np.float64)
        exactmath.for_rows(lambda a, b: kernel(a, b, rows, targets, out, bad), rows.shape[0], rows.shape[1])
        if bad.any():
            raise RangeError("non-finite or empty probability table")
        return out.reshape(probs.shape)
    total = ordered_sum(probs)
    # a row must be finite with a sum above 0, and not so small that target / sum overflows
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ok = np.all(np.isfinite(probs)) and np.all(total > 0) and np.all(np.isfinite(target / total))
    if not ok:
        raise RangeError("non-finite or empty probability table")
    f = np.floor(probs * (target / total)[..., None])
    rest = target - ordered_sum(f)  # >= 0: each floor is at most its product
    top = np.argmax(f, axis=-1)[..., None]
    np.put_along_axis(f, top, np.take_along_axis(f, top, -1) + rest[..., None], axis=-1)
    return f


def _check_symbols(sym: np.ndarray, W: int):
    if sym.size and (sym.min() < 0 or sym.max() >= W):
        raise RangeError(f"symbol outside its table (0..{W - 1})")


def push_frequencies(coder, sym: np.ndarray, freq: np.ndarray):
    """Push symbols (indices into the rows of ``freq`` [N, W], from ``frequencies``)."""
    sym = np.ascontiguousarray(sym.ravel(), dtype=np.int32)
    freq = np.ascontiguousarray(freq.reshape(-1, freq.shape[-1]), dtype=np.float64)
    _check_symbols(sym, freq.shape[-1])
    coder.encode_reverse(sym, _CATEGORICAL, freq)


def pop_frequencies(coder, freq: np.ndarray) -> np.ndarray:
    shape = freq.shape[:-1]
    freq = np.ascontiguousarray(freq.reshape(-1, freq.shape[-1]), dtype=np.float64)
    return coder.decode(_CATEGORICAL, freq).reshape(shape).astype(np.int64)


def push_categorical(coder, k: np.ndarray, probs: np.ndarray):
    push_frequencies(coder, k, frequencies(probs.reshape(-1, probs.shape[-1])))


def pop_categorical(coder, probs: np.ndarray) -> np.ndarray:
    return pop_frequencies(coder, frequencies(probs.reshape(-1, probs.shape[-1]))).reshape(probs.shape[:-1])


# ----- Gaussians on a grid ---------------------------------------------------------------------
def _upper_tail(z: np.ndarray) -> np.ndarray:
    """P(Z > z) for z >= 0: erfc(z / sqrt 2) / 2."""
    return 0.5 * exactmath.erfc_fast(z * exactmath.SQRT_HALF)


def gaussian_bin_masses(offset: np.ndarray, std: float, R: int) -> np.ndarray:
    """Masses of the grid bins [o - 1/2, o + 1/2], o = -R..R, under N(offset, std^2), per
    offset [M] -> [M, 2R + 1], each bin from the tails on its own side of the mean (no
    cancellation against 1: a bin wholly above has T(a) - T(b), one wholly below T(|b|) - T(|a|),
    the one that holds the mean 1 - T(|a|) - T(b))."""
    o = np.arange(-R, R + 1, dtype=np.float64)
    a = ((o - 0.5)[None, :] - offset[:, None]) / std  # standardised left edges
    b = ((o + 0.5)[None, :] - offset[:, None]) / std
    ta, tb = _upper_tail(np.abs(a)), _upper_tail(np.abs(b))
    above = np.abs(ta - tb)  # the same form serves both sides: both edges on one side
    middle = 1.0 - ta - tb
    return np.where((a < 0) & (b > 0), np.maximum(middle, 0.0), above)


INNER_TAIL = 8.0  # a Gaussian's own table covers +-8 std (mass beyond: 1.2e-15)
_UNIFORM = constriction.stream.model.Uniform()


def inner_half_width(std: float, tail: float = INNER_TAIL) -> int:
    """T: a Gaussian of this std (grid units) has its own table on -T..T."""
    return int(math.ceil(tail * std)) + 1


class GaussianTables:
    """Frequency tables of N(m, std^2) on the integer grid around the nearest grid point, for
    the mean offsets m = j / MEAN_RESOLUTION - 1/2 (j = 0..MEAN_RESOLUTION), cached per
    (std, half-width): a chain uses a few per step, the same in every batch.

    A support -R..R wider than the Gaussian's own -T..T (T = ``inner_half_width``) is coded in
    two parts: the table holds -T..T plus one escape symbol (the mass beyond T, which is below
    2^-24 and so gets the least frequency, 1), and an escaped offset is then coded uniformly
    over the 2 (R - T) offsets outside. So a table never grows with the support (the receiver's
    must reach every component: +-1300 grid steps for 8-bit data), and the far bins, which
    would each take at least 2^-24 of the mass, take 2^-24 together (docs/design.md §15)."""

    def __init__(self, tail: float = INNER_TAIL, limit_bytes: int = 256 << 20):
        self.tail = tail  # the table's half-width in std (revision 6: 8, revision 7: 5)
        self._cache: dict[tuple[float, int, bool], np.ndarray] = {}
        self._bytes, self._limit = 0, limit_bytes

    def table(self, std: float, half: int, escape: bool) -> np.ndarray:
        key = (float(std), int(half), bool(escape))
        t = self._cache.get(key)
        if t is None:
            offsets = np.arange(MEAN_RESOLUTION + 1, dtype=np.float64) / MEAN_RESOLUTION - 0.5
            masses = gaussian_bin_masses(offsets, key[0], key[1])
            if escape:  # what lies beyond the table: 1 - the table's mass, at least 0
                masses = np.concatenate([masses, np.maximum(1.0 - ordered_sum(masses), 0.0)[:, None]], axis=1)
            t = frequencies(masses)
            if self._bytes + t.nbytes > self._limit:
                self._cache.clear()
                self._bytes = 0
            self._cache[key] = t
            self._bytes += t.nbytes
        return t

    def rows(self, mu: np.ndarray, std: float, R: int):
        """(nearest grid point, frequency rows [..., W], T or None) for means ``mu`` in grid
        units: T None when the table covers the whole support -R..R (W = 2R + 1), else the
        table covers -T..T and its last symbol (W = 2T + 2) is the escape."""
        if not (np.all(np.isfinite(mu)) and math.isfinite(std) and std > 0):
            raise RangeError("non-finite model parameters (NaN or inf)")
        centre = np.rint(mu)
        j = np.rint((mu - centre) * MEAN_RESOLUTION).astype(np.int64) + MEAN_RESOLUTION // 2
        T = inner_half_width(std, self.tail)
        if T >= R:
            return centre.astype(np.int64), self.table(std, R, False)[j], None
        return centre.astype(np.int64), self.table(std, T, True)[j], T


TABLES = GaussianTables()  # revision 6: tables on +-8 std
# Revision 7: tables on +-5 std, the bridge's own support (coder.DEFAULT_TAIL), so a receiver push
# and a bridge pop carry about as many symbols, each with constriction's floor of 2^-24: the
# floors a push pays and a pop earns back then cancel (docs/design.md §16).
TABLES_REV7 = GaussianTables(tail=5.0)


def push_gaussian(coder, j: np.ndarray, mean: np.ndarray, std: float, delta: float, R: int,
                  tables: GaussianTables = TABLES):
    """Push grid indices j under N(mean, std^2) on the grid of spacing delta (support +-R).
    With an escape (``GaussianTables``) the offsets outside -T..T are pushed first, uniformly,
    so that the decoder pops the table's symbol first and then, where it is the escape, them."""
    centre, freq, T = tables.rows(mean / delta, std / delta, R)
    sym = (j - centre).ravel()
    if sym.size and np.abs(sym).max() > R:
        raise RangeError(f"value outside its support (|offset| {np.abs(sym).max()} > {R})")
    if T is None:
        push_frequencies(coder, sym + R, freq)
        return
    far = np.abs(sym) > T
    if far.any():
        o = sym[far]
        index = np.where(o < 0, o + R, o - (2 * T + 1) + R)  # 0 .. 2(R - T) - 1
        coder.encode_reverse(index.astype(np.int32), _UNIFORM, np.full(len(o), 2 * (R - T), dtype=np.int32))
    push_frequencies(coder, np.where(far, 2 * T + 1, sym + T), freq)


def pop_gaussian(coder, mean: np.ndarray, std: float, delta: float, R: int,
                 tables: GaussianTables = TABLES) -> np.ndarray:
    centre, freq, T = tables.rows(mean / delta, std / delta, R)
    if T is None:
        return centre + pop_frequencies(coder, freq) - R
    sym = pop_frequencies(coder, freq) - T
    far = sym == T + 1  # the escape
    if far.any():
        index = coder.decode(_UNIFORM, np.full(int(far.sum()), 2 * (R - T), dtype=np.int32)).astype(np.int64)
        sym[far] = np.where(index < R - T, index - R, index + (2 * T + 1) - R)
    return centre + sym


# ----- revision 7: categoricals coded on the entries that can occur ----------------------------
# constriction gives every entry of a table at least 2^-24 (docs/design.md §10). An entry whose
# real probability p is far below that costs a pop 2^-24 log(2^-24 / p) nats (the KL between the
# floored table and the real one): late in the chain a component posterior has hundreds of such
# entries (p ~ 1e-100 is common), and the sum grew with n to most of the coder's overhead. So in
# revision 7 a table keeps only the entries with p >= 2^-26 of its row's total (``kept``,
# exact comparisons of the same numbers on both sides), packed to the left in index order:
#
# * a posterior pop (``pop_kept`` / ``push_kept``) needs nothing else: the encoder can only pop a
#   kept entry, and the decoder pushes it back with the same kept table. The dropped mass
#   (under 2^-26 per entry) is what it costs. A row with one kept entry is not coded at all;
# * a weights push (``push_escaped`` / ``pop_escaped``) must take any entry the posterior can
#   pick, so the kept table carries one more symbol, the escape (the dropped mass, at least
#   2^-24), and an escaped entry is then coded with the whole floored table. Escapes are rare:
#   an entry is dropped only where its weight is under 2^-26.
# Rows are grouped by their number of kept entries L (one constriction call per distinct L); the
# decoder walks the groups in the opposite order, as a stack needs.
KEEP_FRACTION = 2.0 ** -26


def kept(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask [N, W] of entries with p >= 2^-26 of their row's ordered sum, count per row)."""
    return _kept(probs)[:2]


@dataclass
class KeptSummary:
    """Per row of a table [N, W]: its ordered sum and how many entries reach KEEP_FRACTION of it
    (``_kept``), where the table's producer computed them (``posterior_1d``, the discretised
    bin masses), so that the kept tables need not read the table an extra time for them."""

    totals: np.ndarray  # [N] float64
    counts: np.ndarray  # [N] int64


def _kept(probs: np.ndarray):
    total = ordered_sum(probs)
    keep = probs >= total[:, None] * KEEP_FRACTION  # times a power of two: exact
    return keep, keep.sum(1), total


_SCRATCH = threading.local()
SCRATCH_MAX = 1 << 23  # entries: the largest table kept for reuse (64 MB of float64)


def _scratch(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised array for a table that lives within one coder call (``pop_kept`` and
    the others below), reused by the next call on this thread: a fresh array of tens of MB
    arrives as untouched pages, and faulting them in on first write cost more than the
    kernel that fills them (measured: 8 ms for the kernel, 15-60 ms for the whole call)."""
    size, dtype = math.prod(shape), np.dtype(dtype)
    if size > SCRATCH_MAX:
        return np.empty(shape, dtype)
    buf = getattr(_SCRATCH, dtype.str, None)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype)
        setattr(_SCRATCH, dtype.str, buf)
    return buf[:size].reshape(shape)


class _Packed:
    """A table's kept entries packed to the left, for every row at once, and the rows in the
    order of their group (``order``: kept count L increasing, row index increasing within a
    group), as revision 7 codes them, one constriction call per group (``tables``). ``cols``
    holds the original column of each packed entry. Trailing zeros change no ordered sum
    (x + 0 = x exactly), so a row padded with zeros has the frequencies of the row alone.

    With the compiled kernels (kernels.kept_counts, then kernels.kept_tables) each row's kept
    entries and then their frequencies are written straight into one flat array in group
    order, so that every group's table is a contiguous slice of it; given ``k``, the symbols
    come from the same pass. Without them, the numpy original: a zero-padded [N, width]
    ``table`` and ``frequencies(table, widths)``."""

    def __init__(self, rows2: np.ndarray, escape: bool, k: np.ndarray | None = None, scratch: bool = False,
                 summary: KeptSummary | None = None):
        N, W = rows2.shape
        self._rows2, self._keep, self._cols, self._slots = rows2, None, None, None
        self._buf = self._bad = self._sym = self.table = None
        counter = exactmath.compiled("kept_counts") if rows2.dtype == np.float64 and N and W else None
        packer = exactmath.compiled("kept_tables") if counter is not None else None
        if counter is not None:  # the same comparisons, sums and frequencies per row (kernels.py)
            rows2 = self._rows2 = np.ascontiguousarray(rows2, dtype=np.float64)
            if summary is not None:  # the same sums and counts, from the table's producer
                self._total, counts = summary.totals, summary.counts
            else:
                self._total, counts = np.empty(N), np.empty(N, dtype=np.int64)
                exactmath.for_rows(lambda a, b: counter(a, b, rows2, KEEP_FRACTION, self._total, counts), N, W)
        else:
            self._keep, counts, self._total = _kept(rows2)
        self.counts = counts
        # an escape symbol at position L where the row dropped anything (L < W)
        self.widths = counts + ((counts < W) if escape else 0)
        self.order = np.argsort(counts, kind="stable")
        self._dropped = not (counts.size and counts.min() == W)
        width = int(self.widths.max(initial=1))
        if packer is not None:
            # row order[p] starts at the sum of the widths before it in group order
            ordered = self.widths[self.order]
            self._starts = np.zeros(N, dtype=np.int64)
            np.cumsum(ordered[:-1], out=self._starts[1:])
            offsets = np.empty(N, dtype=np.int64)
            offsets[self.order] = self._starts
            size = int(self._starts[-1] + ordered[-1])
            # entries after a row's own columns are never read; with ``scratch`` (the coder's
            # calls, which drop the tables before they return) the arrays are reused
            make = _scratch if scratch else np.zeros
            cols, self._buf = make((N, W), np.int32), make((size,), np.float64)
            self._bad, sym = np.zeros(N, dtype=bool), np.empty(N, dtype=np.int64)
            ks = np.full(N, -1, dtype=np.int64) if k is None else np.ascontiguousarray(k, dtype=np.int64)
            exactmath.for_rows(lambda a, b: packer(a, b, rows2, KEEP_FRACTION, self._total, escape, ks, offsets,
                                                   cols, self._buf, sym, self._bad), N, W)
            self._cols, self._offsets = cols[:, :min(width, W)], offsets
            self._sym = None if k is None else sym
        elif not self._dropped:  # nothing dropped anywhere: the table as it is
            self.table = rows2
        else:
            # boolean selection runs row-major, so row i's kept entries, in column order, fill
            # its first L_i places
            self._slots = np.arange(width)[None, :] < counts[:, None]
            self.table = np.zeros((N, width))
            self.table[self._slots] = rows2[self.keep]
            if escape:  # the dropped mass: the row's ordered sum less the kept entries' (>= 0)
                esc = counts < W
                self.table[esc, counts[esc]] = np.maximum(self._total[esc] - ordered_sum(self.table)[esc], 0.0)

    @property
    def keep(self) -> np.ndarray:
        """The mask [N, W] of kept entries (``kept``; built when first needed)."""
        if self._keep is None:
            self._keep = self._rows2 >= self._total[:, None] * KEEP_FRACTION
        return self._keep

    @property
    def cols(self) -> np.ndarray:
        """The original column of each packed entry [N, width] (built when first needed)."""
        if self._cols is None:
            N, W = self._rows2.shape
            if self._slots is None:
                self._cols = np.broadcast_to(np.arange(W), (N, W))
            else:
                self._cols = np.zeros(self._slots.shape, dtype=np.int64)
                self._cols[self._slots] = np.broadcast_to(np.arange(W), (N, W))[self.keep]
        return self._cols

    def tables(self, descending: bool = False):
        """(a, b, freq) per group of rows order[a:b] whose tables have more than one entry (a
        one-entry table costs nothing, and constriction refuses it): freq the group's
        frequencies [b - a, width], C-contiguous; groups by kept count L increasing (or
        decreasing)."""
        if self._buf is not None and self._bad.any():
            raise RangeError("non-finite or empty probability table")
        freq = frequencies(self.table, self.widths) if self._buf is None else None
        counts = self.counts[self.order]
        Ls, starts = np.unique(counts, return_index=True)
        ends = np.append(starts[1:], len(counts))
        groups = [(int(a), int(b)) for a, b in zip(starts, ends)]
        for a, b in (groups[::-1] if descending else groups):
            width = int(self.widths[self.order[a]])
            if width <= 1:
                continue
            if freq is not None:
                yield a, b, freq[self.order[a:b], :width]
            else:
                start = int(self._starts[a])
                yield a, b, self._buf[start:start + (b - a) * width].reshape(b - a, width)

    def frequencies(self) -> np.ndarray:
        """Every row's frequencies [N, width] (zeros after its own width), for inspection."""
        if self._buf is None:
            return frequencies(self.table, self.widths)
        if self._bad.any():
            raise RangeError("non-finite or empty probability table")
        width = int(self.widths.max(initial=1))
        out = np.zeros((len(self.counts), width))
        slots = np.arange(width)[None, :] < self.widths[:, None]
        out[slots] = self._buf[(self._offsets[:, None] + np.arange(width))[slots]]
        return out

    def symbols(self, k: np.ndarray) -> np.ndarray:
        """Each row's symbol for entry k: its rank among the kept entries, or L where k was
        dropped (the escape, or out of the posterior's table)."""
        if self._sym is not None:  # computed with the tables (the caller's k)
            return self._sym.copy()
        if not self._dropped:
            return k.copy()  # every entry kept: its rank is its column
        if self._slots is None:
            self._slots = np.arange(self.cols.shape[1])[None, :] < self.counts[:, None]
        rows = np.arange(len(k))
        hit = self._rows2[rows, k] >= self._total * KEEP_FRACTION  # kept(), for entry k only
        # the packed columns increase along a row: the rank is how many kept ones lie before k
        rank = ((self.cols < k[:, None]) & self._slots).sum(1)
        return np.where(hit, rank, self.counts)


def pop_kept(coder, probs: np.ndarray, summary: KeptSummary | None = None) -> np.ndarray:
    """Pop k from each row of ``probs`` [..., W] on its kept entries (``summary``: its rows'
    sums and kept counts where the caller has them)."""
    shape, rows2 = probs.shape[:-1], probs.reshape(-1, probs.shape[-1])
    packed = _Packed(rows2, escape=False, scratch=True, summary=summary)
    popped = np.zeros(len(rows2), dtype=np.int64)  # in group order; a one-entry row is its entry
    for a, b, freq in packed.tables():  # constriction's call per group (as push_frequencies)
        popped[a:b] = coder.decode(_CATEGORICAL, freq)
    sym = np.empty_like(popped)
    sym[packed.order] = popped
    return packed.cols[np.arange(len(rows2)), sym].astype(np.int64).reshape(shape)


def push_kept(coder, k: np.ndarray, probs: np.ndarray, summary: KeptSummary | None = None):
    """Push what ``pop_kept`` popped (the decoder's side), groups in the opposite order."""
    rows2, k = probs.reshape(-1, probs.shape[-1]), np.asarray(k).reshape(-1)
    if k.size and (k.min() < 0 or k.max() >= rows2.shape[1]):
        raise RangeError("a component outside its posterior's kept entries")
    packed = _Packed(rows2, escape=False, k=k, scratch=True, summary=summary)
    sym = packed.symbols(k)
    if sym.size and np.any(sym >= packed.counts):
        raise RangeError("a component outside its posterior's kept entries")
    sym = sym[packed.order].astype(np.int32)
    for a, b, freq in packed.tables(descending=True):  # the symbols are in range: checked above
        coder.encode_reverse(sym[a:b], _CATEGORICAL, freq)


def push_escaped(coder, k: np.ndarray, probs: np.ndarray, summary: KeptSummary | None = None):
    """Push k [...] with ``probs`` [..., W]: its rank among the kept entries, or the escape
    and then k with the whole table (pushed first, so the decoder pops it last); ``summary``
    as for ``pop_kept``."""
    rows2, k = probs.reshape(-1, probs.shape[-1]), np.asarray(k).reshape(-1)
    W = rows2.shape[1]
    if k.size and (k.min() < 0 or k.max() >= W):
        raise RangeError(f"symbol outside its table (0..{W - 1})")
    packed = _Packed(rows2, escape=True, k=k, scratch=True, summary=summary)
    sym = packed.symbols(k)  # <= L < width, or < L = width where nothing was dropped
    out = sym == packed.counts
    if out.any():
        push_categorical(coder, k[out], rows2[out])
    sym = sym[packed.order].astype(np.int32)
    for a, b, freq in packed.tables():  # every symbol < its row's width by construction
        coder.encode_reverse(sym[a:b], _CATEGORICAL, freq)


def pop_escaped(coder, probs: np.ndarray, summary: KeptSummary | None = None) -> np.ndarray:
    shape, rows2 = probs.shape[:-1], probs.reshape(-1, probs.shape[-1])
    packed = _Packed(rows2, escape=True, scratch=True, summary=summary)
    popped = np.zeros(len(rows2), dtype=np.int64)
    for a, b, freq in packed.tables(descending=True):
        popped[a:b] = coder.decode(_CATEGORICAL, freq)
    sym = np.empty_like(popped)
    sym[packed.order] = popped
    out = sym == packed.counts
    k = packed.cols[np.arange(len(rows2)), np.minimum(sym, packed.cols.shape[1] - 1)].astype(np.int64)
    if out.any():
        k[out] = pop_categorical(coder, rows2[out])
    return k.reshape(shape)


# ----- posteriors --------------------------------------------------------------------------------
def posterior_1d(u: np.ndarray, s0: float, step: float, a: float, w: np.ndarray,
                 lo: np.ndarray | None, summary: bool = False):
    """p(k | S_i, S_{i-1}) ∝ w_k exp(-a/2 ((s_k - u)^2 - m^2)) for evenly spaced s_k = s0 + k step
    (table entries k = lo + j), m^2 = the smallest (s_k - u)^2 over the table, so the largest
    factor is 1 (coder.ChainCoder._posterior explains the form). Rows whose weights vanish
    where S_i lies are redone in log space, with exactmath's log. With ``summary``, (post,
    ``KeptSummary`` of its rows or None), for ``pop_kept`` and ``push_kept``."""
    W = w.shape[-1]
    base = s0 - u if lo is None else (s0 + lo.astype(np.float64) * step) - u  # s_lo - u
    nearest = np.clip(np.rint(-base / step), 0, W - 1)
    m = base + nearest * step
    def differences():  # s_{lo+j} - u
        return base[..., None] + np.arange(W, dtype=np.float64) * step

    kernel = exactmath.compiled("posterior_rows") if W and base.dtype == m.dtype == w.dtype == np.float64 else None
    if kernel is not None:  # the same operations per entry, fused (kernels.py)
        post = np.empty(np.broadcast_shapes(base.shape + (W,), w.shape))
        rows, wr = post.reshape(-1, W), np.ascontiguousarray(np.broadcast_to(w, post.shape).reshape(-1, W), dtype=np.float64)
        total, counts = np.empty(rows.shape[0]), np.empty(rows.shape[0], dtype=np.int64)
        b_, m_ = (np.ascontiguousarray(np.broadcast_to(v, post.shape[:-1]).reshape(-1), dtype=np.float64) for v in (base, m))
        exactmath.for_rows(lambda a_, b: kernel(a_, b, b_, m_, float(step), 0.5 * a, wr, rows, total, KEEP_FRACTION,
                                                counts), rows.shape[0], W)
        total, counts = total.reshape(post.shape[:-1]), counts.reshape(post.shape[:-1])
    else:
        diff = differences()
        expo = (0.5 * a) * (m * m)[..., None] - (0.5 * a) * (diff * diff)
        post = exactmath.exp(np.minimum(expo, 0.0)) * w
        total = ordered_sum(post)
    bad = ~(total > 1e-250)
    if bool(bad.any()):
        d = differences()[bad]
        logit = exactmath.log(np.maximum(w[bad], 1e-300)) - (0.5 * a) * (d * d)
        logit = logit - logit.max(-1, keepdims=True)
        post[bad] = exactmath.exp(logit)
        if kernel is not None and summary:  # the redone rows' own summary
            _, counts[bad], total[bad] = _kept(post[bad])
    if not summary:
        return post  # unnormalised: ``frequencies`` normalises each row
    return post, (KeptSummary(total.reshape(-1), counts.reshape(-1)) if kernel is not None else None)


def posterior_general(u: np.ndarray, s: np.ndarray, a: float, w: np.ndarray) -> np.ndarray:
    """The same posterior for any component means s [K, c] (u [..., c]): w_k exp(a (u . s_k -
    |s_k|^2 / 2) - max), the dot products summed in coordinate order."""
    K, c = s.shape
    logit = np.zeros(u.shape[:-1] + (K,))
    for i in range(c):
        logit = logit + u[..., i:i + 1] * s[:, i]
    half = np.zeros(K)
    for i in range(c):
        half = half + s[:, i] * s[:, i]
    logit = a * (logit - 0.5 * half)
    logit = logit - logit.max(-1, keepdims=True)
    post = exactmath.exp(logit) * w
    bad = ~(ordered_sum(post) > 1e-250)
    if bool(bad.any()):
        lw = exactmath.log(np.maximum(w[bad], 1e-300)) + logit[bad]
        post[bad] = exactmath.exp(lw - lw.max(-1, keepdims=True))
    return post


# ----- time grids ------------------------------------------------------------------------------
def power_times(n: int, power: float) -> np.ndarray:
    """t_i = (i/n)^p, i = 0..n, exactly reproducible: a whole power by repeated multiplication
    (left to right), any other by exp(p log(i/n)) with exactmath."""
    if n < 1:
        raise ValueError(f"the number of steps must be >= 1, got {n}")
    base = np.arange(n + 1, dtype=np.float64) / n
    if float(power).is_integer() and 1 <= power <= 16:
        t = base.copy()
        for _ in range(int(power) - 1):
            t = t * base
    else:
        t = np.zeros(n + 1)
        t[1:] = exactmath.exp(float(power) * exactmath.log(base[1:]))
    t[0], t[-1] = 0.0, 1.0
    return t
