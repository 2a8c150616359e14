"""The chain coder: bits-back ANS through the BFN message sequence (docs/design.md §6-§11).

Latents are the sufficient statistics S_1..S_n, each on its own uniform grid S_i = j_i * delta_i
with delta_i = sigma_i / r (sigma_i = sqrt(v alpha_i), one step's message std). In Bit-Swap order
the decoder (generative order) does, for a lockstep batch of items:

    for i = 1..n:   w = p_O(. | S_{i-1}; t_{i-1})            (network)
                    pop k ~ w; pop S_i ~ N(S_{i-1} + alpha_i m_k, v alpha_i)
                    push k with the posterior p(k | S_i, S_{i-1})      (mixture bits-back, docs/design.md §8)
                    push S_{i-1} with the bridge q(S_{i-1} | S_i)      (i >= 2)
    pop x ~ p_O(. | S_n; 1); push S_n with q(S_n | x)

and the encoder runs the exact mirror image. The expected net length is L^n + L^r.

Range invariant (docs/design.md §9): every value the encoder can pop must be codable where it is pushed. The
bridge and q(S_n | x) pops are leaky, so S_i can deviate from beta_i m_x by at most E_i (a bound
computed below from the supports); a receiver component k is pushed with a support wide enough
for any such S_i and any k. All supports come from the one function ``make_plan``, evaluated
identically by both sides.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import constriction
import numpy as np
import torch

from . import exactmath, portable
from .chain import F64

Categorical = constriction.stream.model.Categorical
QuantizedGaussian = constriction.stream.model.QuantizedGaussian

DEFAULT_R = 2.0  # grid spacing delta = sigma / r (docs/design.md §9); why r = 2: the scans in §14
# Supports cover +-DEFAULT_TAIL std of the distribution they code (plus rounding). Tighter than
# docs/design.md §9's 8-10 std, by measurement: constriction gives every symbol of a support at
# least 2^-24, so a wide support lets a bridge pop land, about once in 10^5-10^6 pops, on a far-tail
# value it pays back only 24 bits for while the rest of the chain pays that value's real cost
# (tens of bits). benchmarks/tail_scan.py, coder overhead over the coded trajectories, n = 25:
# binary model, 1024 test images: 4 std +0.21%, 5: +0.17%, 6: +0.14%, 8: +0.28%, 10: +0.39%;
# 8-bit model, 256 images: 5: +0.146%, 10: +0.179%. Truncating at 5 std (plus the rounding
# symbol) drops < 1e-6 of each pop's mass.
DEFAULT_TAIL = 5.0
MAX_SUPPORT = (1 << 24) // 2 - 2  # constriction: fewer than 2^24 symbols
# Receiver weights of discretised data are coded on a window of bins within WINDOW_Z * sigma_x
# of the mean (discretised.py, ``discretised_gaussian_window``): outside it p_O < 1e-23.
WINDOW_Z = 10.0


RangeError = portable.RangeError  # a value outside the support it must be coded with (an
# internal invariant broken, or a corrupt stream on the decoder side); one class for both revisions


class StackExhausted(RuntimeError):
    """The encoder popped more bits than the stack held (the seed was too small)."""


@dataclass
class ChainPlan:
    """Everything both sides derive from (flow, n, r): schedule, grids and supports."""

    n: int
    r: float
    times: np.ndarray  # t_0..t_n
    betas: np.ndarray  # beta_0..beta_n
    alphas: np.ndarray  # alphas[i] = alpha_i for i = 1..n (index 0 unused)
    delta: np.ndarray  # delta[i] grid spacing of S_i, i = 1..n
    support_final: int  # half-width (grid units of delta_n) for q(S_n | x)
    support_bridge: np.ndarray  # [i] half-width for q(S_{i-1} | S_i) on delta_{i-1}, i = 2..n
    support_receiver: np.ndarray  # [i] half-width for the receiver components on delta_i
    # [i] bound on |S_i - beta_i m_x| over everything the encoder can pop (the range invariant, §9)
    reach_bound: np.ndarray = field(default_factory=lambda: np.zeros(0))


def make_plan(flow, n: int, r: float = DEFAULT_R, times=None, tail: float = DEFAULT_TAIL,
              exact: bool = False) -> ChainPlan:
    """The plan for n steps. ``exact`` (coder revision 6): the schedule from the data type's
    exact arithmetic on the grid ``times`` (numpy, portable.power_times); every later operation
    here is a correctly rounded one, so the plan is the same everywhere."""
    if exact:
        t = np.asarray(times, dtype=np.float64)
        if len(t) != n + 1:
            raise ValueError(f"time grid has {len(t) - 1} steps, expected {n}")
        betas, alphas = flow.schedule_exact(t)
        alphas = np.concatenate([[0.0], alphas])
    else:
        t, betas, alphas = flow.schedule(n, None if times is None else torch.as_tensor(times, dtype=F64))
        t, betas = t.numpy(), betas.numpy()
        alphas = np.concatenate([[0.0], alphas.numpy()])
    v = flow.variance_factor
    delta = np.zeros(n + 1)
    delta[1:] = np.sqrt(v * alphas[1:]) / r
    m = flow.component_means.numpy()
    span = float((m.max(0) - m.min(0)).max())  # largest per-coordinate spread of the m_k
    # q(S_n | x): std sqrt(v beta_n)
    support_final = int(math.ceil(tail * math.sqrt(v * betas[n]) / delta[n])) + 1
    support_bridge = np.zeros(n + 1, dtype=np.int64)
    support_receiver = np.zeros(n + 1, dtype=np.int64)
    # E[i] bounds |S_i - beta_i m_x| over everything the encoder can pop (+0.5 for rounding).
    E = np.zeros(n + 1)
    E[n] = (support_final + 0.5) * delta[n]
    for i in range(n, 1, -1):
        ratio = betas[i - 1] / betas[i]
        std_b = math.sqrt(v * betas[i - 1] * (1.0 - ratio))
        support_bridge[i] = int(math.ceil(tail * std_b / delta[i - 1])) + 1
        E[i - 1] = ratio * E[i] + (support_bridge[i] + 0.5) * delta[i - 1]
    for i in range(1, n + 1):
        # With e_i = S_i - beta_i m_x and the bridge pop S_{i-1} = (beta_{i-1}/beta_i) S_i + d:
        # S_i - S_{i-1} - alpha_i m_k = alpha_i (m_x - m_k) + (alpha_i/beta_i) e_i - d,
        # |d| <= (support_bridge + 1/2) delta_{i-1} (S_0 = 0 exactly: d = 0 for i = 1).
        d_max = (support_bridge[i] + 0.5) * delta[i - 1] if i >= 2 else 0.0
        reach = alphas[i] * span + (alphas[i] / betas[i]) * E[i] + d_max
        support_receiver[i] = max(int(math.ceil(reach / delta[i] + 0.5)) + 1, int(math.ceil(tail * r)) + 1)
    worst = max(support_final, support_bridge.max(), support_receiver.max())
    if worst > MAX_SUPPORT:
        raise ValueError(f"n={n}, r={r} needs a support of {worst} symbols; use fewer steps or a smaller r")
    return ChainPlan(n, r, t, betas, alphas, delta, support_final, support_bridge, support_receiver, E)


_QG_CACHE: dict[int, object] = {}
_CATEGORICAL = Categorical(perfect=False)


def _qg(R: int):
    model = _QG_CACHE.get(R)
    if model is None:
        model = _QG_CACHE[R] = QuantizedGaussian(-int(R), int(R))
    return model


def _check_params(*arrays):
    for a in arrays:
        if not np.all(np.isfinite(a)):
            raise RangeError("non-finite model parameters (NaN or inf)")


def push_gaussian(coder, j: np.ndarray, mean: np.ndarray, std: np.ndarray, delta: float, R: int):
    """Push grid indices j under N(mean, std^2) quantised to the grid delta (support +-R)."""
    mu = mean / delta
    centre = np.rint(mu)
    sym = j - centre.astype(np.int64)
    if np.any(np.abs(sym) > R):
        raise RangeError(f"value outside its support (|offset| {np.abs(sym).max()} > {R})")
    s = np.ascontiguousarray((std / delta).ravel(), dtype=np.float64)
    m = np.ascontiguousarray((mu - centre).ravel(), dtype=np.float64)
    _check_params(s, m)
    coder.encode_reverse(sym.ravel().astype(np.int32), _qg(R), m, s)


def pop_gaussian(coder, mean: np.ndarray, std: np.ndarray, delta: float, R: int) -> np.ndarray:
    mu = mean / delta
    centre = np.rint(mu)
    s = np.ascontiguousarray((std / delta).ravel(), dtype=np.float64)
    m = np.ascontiguousarray((mu - centre).ravel(), dtype=np.float64)
    _check_params(s, m)
    sym = coder.decode(_qg(R), m, s).reshape(mean.shape)
    return centre.astype(np.int64) + sym


def push_categorical(coder, k: np.ndarray, probs: np.ndarray):
    probs = np.ascontiguousarray(probs.reshape(-1, probs.shape[-1]), dtype=np.float64)
    _check_params(probs)
    coder.encode_reverse(k.ravel().astype(np.int32), _CATEGORICAL, probs)


def pop_categorical(coder, probs: np.ndarray) -> np.ndarray:
    shape = probs.shape[:-1]
    probs = np.ascontiguousarray(probs.reshape(-1, probs.shape[-1]), dtype=np.float64)
    _check_params(probs)
    return coder.decode(_CATEGORICAL, probs).reshape(shape).astype(np.int64)


class ChainCoder:
    """Codes lockstep batches of items [B, D] (outcome indices) through the message chain."""

    def __init__(self, model, plan: ChainPlan):
        self.model = model
        self.flow = model.flow
        self.plan = plan
        self.means = self.flow.component_means.numpy()  # [K, c]
        # Discretised data: one coordinate, K > 2 evenly spaced means (the bin centres); the
        # posterior then has a cheaper form (``_posterior_1d``).
        steps = np.diff(self.means[:, 0])
        self._even_1d = (self.means.shape[1] == 1 and len(self.means) > 2
                         and bool(np.all(steps > 0)) and np.ptp(steps) <= 1e-12 * steps[0])
        self.v = self.flow.variance_factor
        self.network_calls = 0
        self.network_seconds = 0.0  # model calls: the network and its output table p_O
        self.trunk_seconds = 0.0  # of which the network itself
        # When True, ``encode`` also records the ideal code length of the trajectory it popped
        # (``last_trajectory_nats``, one value per item; see ``_step_nats``): the file header
        # keeps its sum (docs/format.md). It costs 4-8% of the encoding time.
        self.measure_trajectory = False
        self.last_trajectory_nats: np.ndarray | None = None
        self.trajectory_seconds = 0.0  # time spent recording it (not part of coding)

    # ----- model calls -------------------------------------------------------------------------
    def _model_call(self, j: np.ndarray | None, i: int, B: int, window: bool):
        """One network call at S_i (S_0 = 0), timed: (lo, table), see ``_weights``."""
        t0 = time.perf_counter()
        trunk0 = self.model.trunk_seconds
        lo, probs = self._outputs(j, i, B, window)
        self.network_seconds += time.perf_counter() - t0
        self.trunk_seconds += self.model.trunk_seconds - trunk0
        self.network_calls += 1
        if not np.all(np.isfinite(probs)):
            raise RangeError("the model produced non-finite probabilities")
        return lo, probs

    def _outputs(self, j, i, B, window):
        D, c = self.model.D, self.flow.stat_dim
        S = torch.zeros(B, D, c, dtype=F64) if j is None else torch.from_numpy(j.astype(np.float64) * self.plan.delta[i])
        if window:
            return self.model.output_window(S, float(self.plan.times[i]), WINDOW_Z)
        return None, self.model.output_probs(S, float(self.plan.times[i]))

    def network_call_seconds(self, B: int) -> float:
        """Wall-clock seconds of one network call on B items (the output table at S_0 = 0, as
        every step makes one). Not counted in the coding statistics."""
        t0 = time.perf_counter()
        self._outputs(None, 0, B, False)
        return time.perf_counter() - t0

    def batch_work(self, largest: int):
        """The relative cost of coding a batch of B items, as a function of B, for progress
        ETAs: one network call timed at B = 1 and at B = ``largest`` (after a warm-up call),
        interpolated linearly."""
        seconds = self.network_call_seconds
        seconds(1)
        one = min(seconds(1), seconds(1))
        many = seconds(largest) if largest > 1 else one
        slope = max(0.0, (many - one) / max(1, largest - 1))
        return lambda B: max(one - slope, 0.0) + slope * B

    def _output(self, j: np.ndarray | None, i: int, B: int) -> np.ndarray:
        """p_O(. | S_i; t_i) as a float64 table [B, D, K] (S_0 = 0): what the data is coded with."""
        return self._model_call(j, i, B, window=False)[1]

    def _weights(self, j: np.ndarray | None, i: int, B: int):
        """The receiver's mixture weights p_O(. | S_i; t_i) as (lo, table): lo None and the
        full [B, D, K] table, or, for models with windows (discretised data), the table on bins
        lo..lo+W-1 of each variable (lo [B, D]). The component index coded is k - lo."""
        return self._model_call(j, i, B, window=True)

    def _posterior(self, j_i: np.ndarray, j_prev: np.ndarray | None, i: int, w: np.ndarray,
                   lo: np.ndarray | None = None) -> np.ndarray:
        """p(k | S_i, S_{i-1}) ∝ w_k * prod_c (mass of S_i's grid bin under component k).

        Bin masses, not densities (docs/design.md §8), to second order in h = delta_i / sigma_i =
        1/r: the N(0, 1) mass of [z - h/2, z + h/2] is h phi(z) exp(h^2 (z^2 - 1)/24) (1 +
        O(h^4 z^4)), i.e. log mass = -(1 - h^2/12) z^2/2 + const (Sheppard's correction). With
        z_k = u - s_k (u: S_i's standardised offset, s_k: component k's), the terms in u^2 are
        the same for every k and cancel, leaving the logits

            log w_k + a (u . s_k - |s_k|^2 / 2),     a = 1 - h^2/12,

        an outer product instead of K transcendental functions per variable. (The exact bin
        mass differs only for components many std away, whose posterior weight is negligible;
        measured with benchmarks/r_scan.py, see the README.) Encoder and decoder run this same
        code on the same inputs (and thread count), so they agree bit for bit."""
        p = self.plan
        d = p.delta[i]
        std = math.sqrt(self.v * p.alphas[i]) / d  # component std in grid units (= r)
        a = 1.0 - 1.0 / (12.0 * std * std)
        S_prev = np.zeros(j_i.shape) if j_prev is None else j_prev * p.delta[i - 1]
        # float64 throughout: float32 here cost +0.5% on binary data (measured, oracle, n = 25).
        u = torch.from_numpy((j_i - S_prev / d) / std)  # [B, D, c]
        s = torch.from_numpy(p.alphas[i] * self.means / (d * std))  # [K, c]
        if self._even_1d:
            return self._posterior_1d(u[..., 0], s[:, 0], a, w, lo)
        if lo is not None:
            raise ValueError("windowed weights need evenly spaced one-dimensional means")
        return self._posterior_logits(u, s, a, torch.from_numpy(w)).numpy()

    @staticmethod
    def _posterior_logits(u, s, a, w):
        """softmax_k(log w_k + a (u . s_k - |s_k|^2 / 2)): the general form, in log space."""
        logit = w.clamp_min(1e-300).log()
        logit += a * (u @ s.T - 0.5 * (s * s).sum(-1))
        return torch.softmax(logit, dim=-1)

    def _posterior_1d(self, u, s, a, w, lo=None):
        """The same posterior for one coordinate and evenly spaced s_k (discretised data),
        in probability space: w_k exp(-a/2 ((s_k - u)^2 - m^2)) / sum, with m^2 = min_k (s_k -
        u)^2 over the table's bins found in closed form (the nearest s_k), so every factor is
        <= 1 and the largest is 1. A handful of passes over [B, D, W] with exp instead of log +
        softmax (the posterior was the 8-bit codec's largest cost: 15.6 s of 44.7 s for 128
        images, one thread). With ``lo`` the table covers bins lo..lo+W-1 of each variable.
        Variables whose total underflows (w concentrated far from S_i's component) are redone
        in log space; both sides run the same code, so they agree."""
        W = w.shape[-1]
        step = float(s[1] - s[0])
        base = s[0] - u if lo is None else s[0] + torch.from_numpy(lo) * step - u  # s_lo - u, [B, D]
        nearest = torch.clamp(torch.round(-base / step), 0, W - 1)
        m = base + nearest * step  # s_nearest - u
        diff = base.unsqueeze(-1) + torch.arange(W, dtype=F64) * step  # s_{lo+j} - u, [B, D, W]
        expo = torch.addcmul((0.5 * a) * (m * m).unsqueeze(-1), diff, diff, value=-0.5 * a)
        post = expo.clamp_max_(0.0).exp_().mul_(torch.from_numpy(w))
        total = post.sum(-1, keepdim=True)
        post.div_(total)
        bad = ~(total[..., 0] > 1e-250)
        if bool(bad.any()):
            # log w_k + a (u s_k - s_k^2 / 2) = log w_k - a/2 (s_k - u)^2 + const
            d = diff[bad]
            logit = torch.from_numpy(w)[bad].clamp_min(1e-300).log() - (0.5 * a) * d * d
            post[bad] = torch.softmax(logit, dim=-1)
        return post.numpy()

    def _receiver_std(self, i: int) -> float:
        """The std of every receiver component at step i: sqrt(v alpha_i)."""
        return math.sqrt(self.v * self.plan.alphas[i])

    def _receiver_means(self, j_prev, k, i, shape):
        S_prev = np.zeros(shape) if j_prev is None else j_prev * self.plan.delta[i - 1]
        return S_prev + self.plan.alphas[i] * self.means[k]  # [B, D, c]

    def _bridge(self, j_i: np.ndarray, i: int):
        """q(S_{i-1} | S_i): (mean per value, the std shared by all)."""
        p = self.plan
        ratio = p.betas[i - 1] / p.betas[i]
        mean = ratio * (j_i * p.delta[i])
        std = math.sqrt(self.v * p.betas[i - 1] * (1.0 - ratio))
        return mean, std

    # ----- the entropy coder's models (revision 6 replaces them: PortableChainCoder) ----------
    @staticmethod
    def _push_gaussian(coder, j, mean, std: float, delta, R):
        push_gaussian(coder, j, mean, np.full(mean.shape, std), delta, R)

    @staticmethod
    def _pop_gaussian(coder, mean, std: float, delta, R):
        return pop_gaussian(coder, mean, np.full(mean.shape, std), delta, R)

    @staticmethod
    def _push_categorical(coder, k, probs):
        push_categorical(coder, k, probs)

    @staticmethod
    def _pop_categorical(coder, probs):
        return pop_categorical(coder, probs)

    # the component k of a step: popped with the posterior and pushed with the weights w by the
    # encoder, the other way round by the decoder (revision 7 codes them differently)
    def _pop_component(self, coder, post):
        return self._pop_categorical(coder, post)

    def _push_component(self, coder, k, post):
        self._push_categorical(coder, k, post)

    def _push_weights(self, coder, k, w):
        self._push_categorical(coder, k, w)

    def _pop_weights(self, coder, w):
        return self._pop_categorical(coder, w)

    def _step_nats(self, j_i: np.ndarray, j_prev: np.ndarray | None, i: int, w: np.ndarray,
                   x: np.ndarray, lo: np.ndarray | None = None) -> np.ndarray:
        """Ideal cost in nats, per item, of step i on the popped trajectory, with the continuous
        densities: log q(S_i | S_{i-1}, x) - log p_R(S_i | S_{i-1}), where q is N(S_{i-1} +
        alpha_i m_x, v alpha_i) and p_R = sum_k w_k N(S_{i-1} + alpha_i m_k, v alpha_i). Both
        have the same variance, so the normalisers cancel. Its expectation over the trajectory
        is step i's term of L^n, so (file bits) - (these + the reconstruction term) isolates the
        coder's own overhead without the Monte-Carlo noise of L^n (docs/design.md §13)."""
        p = self.plan
        std = math.sqrt(self.v * p.alphas[i])
        S_prev = np.zeros(j_i.shape) if j_prev is None else j_prev * p.delta[i - 1]
        y = torch.from_numpy((j_i * p.delta[i] - S_prev) / std)  # [B, D, c], standardised
        shift = torch.from_numpy(p.alphas[i] * self.means / std)  # [K, c]
        sender = -0.5 * ((y - shift[torch.from_numpy(x)]) ** 2).sum(-1)  # [B, D]
        weights = torch.from_numpy(w)
        if self._even_1d:
            receiver = self._log_mixture_1d(y[..., 0], shift[:, 0], weights, lo)
        else:
            if lo is not None:  # the window's components: k = lo + j
                shift = shift[torch.from_numpy(lo).unsqueeze(-1) + torch.arange(w.shape[-1])]  # [B, D, W, c]
            z2 = ((y.unsqueeze(-2) - shift) ** 2).sum(-1)  # [B, D, W]
            receiver = torch.logsumexp(weights.clamp_min(1e-300).log() - 0.5 * z2, dim=-1)
        receiver -= weights.sum(-1).log()  # the coder normalises a window's weights
        return (sender - receiver).sum(-1).numpy()

    @staticmethod
    def _log_mixture_1d(y, s, w, lo=None):
        """log sum_k w_k exp(-(s_k - y)^2 / 2) for evenly spaced s_k, as ``_posterior_1d``
        computes its normaliser: factor out the nearest component's exp(-m^2/2), so every term
        is <= 1 and one exp pass over [B, D, W] does (a logsumexp over gathered [B, D, W, c]
        tables cost 30% of 8-bit encoding). Rows whose sum underflows are redone in log space."""
        W = w.shape[-1]
        step = float(s[1] - s[0])
        # (lo in float64 first: an int64 tensor times a Python float would be float32)
        base = s[0] - y if lo is None else s[0] + torch.from_numpy(lo).to(F64) * step - y  # s_lo - y
        m = base + torch.clamp(torch.round(-base / step), 0, W - 1) * step  # s_nearest - y
        diff = base.unsqueeze(-1) + torch.arange(W, dtype=F64).mul_(step)  # [B, D, W]
        # not part of the coded arithmetic, so a fused multiply-add is fine here
        terms = torch.addcmul(0.5 * (m * m).unsqueeze(-1), diff, diff, value=-0.5)
        total = terms.clamp_max_(0.0).exp_().mul_(w).sum(-1)
        out = total.log() - 0.5 * m * m
        bad = ~(total > 1e-250)
        if bool(bad.any()):
            d = diff[bad]
            out[bad] = torch.logsumexp(w[bad].clamp_min(1e-300).log() - 0.5 * d * d, dim=-1)
        return out

    # ----- encoder ---------------------------------------------------------------------------
    def encode(self, coder, x: np.ndarray, check_bits: bool = True) -> int:
        """Push items x [B, D] onto ``coder``; returns the lowest number of valid bits the
        stack held during the batch (the encoder must never run the stack dry)."""
        p, n = self.plan, self.plan.n
        B, D = x.shape
        c = self.flow.stat_dim
        low = coder.num_valid_bits()

        def watch():
            nonlocal low
            bits = coder.num_valid_bits()
            if check_bits and bits <= 0:
                raise StackExhausted("stack exhausted")
            low = min(low, bits)

        # pop S_n ~ q(S_n | x), push x with p_O(. | S_n; 1)
        mean_n = p.betas[n] * self.means[x]  # [B, D, c]
        j = self._pop_gaussian(coder, mean_n, math.sqrt(self.v * p.betas[n]), p.delta[n], p.support_final)
        watch()
        table = self._output(j, n, B)
        self._push_categorical(coder, x, table)
        nats = None
        if self.measure_trajectory:  # L^r term: -log p_O(x | S_n; 1)
            t0 = time.perf_counter()
            nats = -np.log(np.take_along_axis(table, x[..., None], -1)[..., 0]).sum(-1)
            self.trajectory_seconds += time.perf_counter() - t0
        for i in range(n, 0, -1):
            if i >= 2:
                mean_b, std_b = self._bridge(j, i)
                j_prev = self._pop_gaussian(coder, mean_b, std_b, p.delta[i - 1], int(p.support_bridge[i]))
                watch()
            else:
                j_prev = None
            lo, w = self._weights(j_prev, i - 1, B)
            k_local = self._pop_component(coder, self._posterior(j, j_prev, i, w, lo))
            watch()
            k = k_local if lo is None else k_local + lo
            mean_r = self._receiver_means(j_prev, k, i, (B, D, c))
            self._push_gaussian(coder, j, mean_r, self._receiver_std(i), p.delta[i],
                                int(p.support_receiver[i]))
            self._push_weights(coder, k_local, w)
            if nats is not None:
                t0 = time.perf_counter()
                nats = nats + self._step_nats(j, j_prev, i, w, x, lo)
                self.trajectory_seconds += time.perf_counter() - t0
            j = j_prev
        self.last_trajectory_nats = nats
        return low

    # ----- decoder ---------------------------------------------------------------------------
    def decode(self, coder, B: int, floor: int = 0) -> np.ndarray:
        """Pop a batch of B items. ``floor``: the stack never held fewer valid bits than this
        while the encoder coded the batch (the encoder checks its lowest point), and the decoder
        passes through exactly the encoder's states in reverse, so sinking below it means a
        corrupt or hostile stream: stop after that step instead of decoding garbage for the
        rest of the batch (this bounds the work a hostile file can cause)."""
        p, n = self.plan, self.plan.n
        D, c = self.model.D, self.flow.stat_dim
        j_prev = None
        for i in range(1, n + 1):
            if coder.num_valid_bits() < floor:
                raise RangeError("the coded data ran out")
            lo, w = self._weights(j_prev, i - 1, B)
            k_local = self._pop_weights(coder, w)
            k = k_local if lo is None else k_local + lo
            mean_r = self._receiver_means(j_prev, k, i, (B, D, c))
            j = self._pop_gaussian(coder, mean_r, self._receiver_std(i), p.delta[i],
                                   int(p.support_receiver[i]))
            self._push_component(coder, k_local, self._posterior(j, j_prev, i, w, lo))
            if i >= 2:
                mean_b, std_b = self._bridge(j, i)
                self._push_gaussian(coder, j_prev, mean_b, std_b, p.delta[i - 1], int(p.support_bridge[i]))
            j_prev = j
        x = self._pop_categorical(coder, self._output(j_prev, n, B))
        mean_n = p.betas[n] * self.means[x]
        self._push_gaussian(coder, j_prev, mean_n, math.sqrt(self.v * p.betas[n]), p.delta[n], p.support_final)
        return x


class PortableChainCoder(ChainCoder):
    """The chain coder of revision 6: the same message chain, with every probability from the
    portable arithmetic (portable.py) and the integer network (models.PortableModel), so a file
    decodes to the same bits on any machine. ``model`` is a PortableModel; the plan must come
    from ``make_plan(..., exact=True)``."""

    def _outputs(self, j, i, B, window):
        # the exact elementwise functions of this step (bin masses, posteriors) share the
        # network's thread budget: their chunks give the same bits on any number of threads
        exactmath.set_threads(torch.get_num_threads())
        S = np.zeros((B, self.model.D, self.flow.stat_dim)) if j is None else j * self.plan.delta[i]
        z = WINDOW_Z if window else None
        if not self._kept_summary:
            return self.model.output_window_exact(S, float(self.plan.times[i]), z)
        lo, probs, summary = self.model.output_window_exact(S, float(self.plan.times[i]), z, summary=True)
        self._table_summary = (probs, summary)  # for the kept tables of this very table
        return lo, probs

    def _posterior(self, j_i, j_prev, i, w, lo=None):
        """``ChainCoder._posterior`` in the portable arithmetic (portable.posterior_1d /
        posterior_general); unnormalised rows, which ``portable.frequencies`` normalises. With
        ``_kept_summary``, (rows, portable.KeptSummary of them or None)."""
        p = self.plan
        c, g, var = self._receiver_terms(i)
        d = p.delta[i]
        std = math.sqrt(var) / d
        a = 1.0 - 1.0 / (12.0 * std * std)
        S_prev = np.zeros(j_i.shape) if j_prev is None else j_prev * p.delta[i - 1]
        # c = 1 exactly before revision 8, where c S_prev / d is S_prev / d to the bit
        u = (j_i - c * S_prev / d) / std
        s = (g * self.means) / (d * std)
        if self._even_1d:
            return portable.posterior_1d(u[..., 0], float(s[0, 0]), float(s[1, 0] - s[0, 0]), a, w, lo,
                                         summary=self._kept_summary)
        if lo is not None:
            raise ValueError("windowed weights need evenly spaced one-dimensional means")
        post = portable.posterior_general(u, s, a, w)
        return (post, None) if self._kept_summary else post

    # with the kept tables (revision 7 on): whether ``_posterior`` gives (rows, KeptSummary or
    # None), and the last output table with its KeptSummary (``_outputs``, ``_summary_of``)
    _kept_summary = False
    _table_summary = (None, None)

    def _receiver_terms(self, i: int):
        """(c_i, g_i, var_i): the receiver's component k at step i is N(c_i S_{i-1} + g_i m_k,
        var_i); revisions 6 and 7 use the plain one, (1, alpha_i, v alpha_i)."""
        return 1.0, self.plan.alphas[i], self.v * self.plan.alphas[i]

    @staticmethod
    def _push_gaussian(coder, j, mean, std: float, delta, R):
        portable.push_gaussian(coder, j, mean, std, delta, R)

    @staticmethod
    def _pop_gaussian(coder, mean, std: float, delta, R):
        return portable.pop_gaussian(coder, mean, std, delta, R)

    @staticmethod
    def _push_categorical(coder, k, probs):
        portable.push_categorical(coder, k, probs)

    @staticmethod
    def _pop_categorical(coder, probs):
        return portable.pop_categorical(coder, probs)


class KeptChainCoder(PortableChainCoder):
    """The chain coder of revision 7: revision 6's arithmetic, with no table entry paying
    constriction's 2^-24 floor where it cannot occur (docs/design.md §16): component posteriors
    and weights on their kept entries (portable.pop_kept, push_escaped), Gaussians on tables of
    +-5 std (portable.TABLES_REV7). The chain overhead no longer grows with n."""

    @staticmethod
    def _push_gaussian(coder, j, mean, std: float, delta, R):
        portable.push_gaussian(coder, j, mean, std, delta, R, portable.TABLES_REV7)

    @staticmethod
    def _pop_gaussian(coder, mean, std: float, delta, R):
        return portable.pop_gaussian(coder, mean, std, delta, R, portable.TABLES_REV7)

    # the one-dimensional posteriors and the discretised weights come with their rows' sums and
    # kept counts (computed with them, while each row is in cache), which the kept tables would
    # otherwise read the whole table again for
    _kept_summary = True

    def _pop_component(self, coder, post):
        rows, summary = post
        return portable.pop_kept(coder, rows, summary)

    def _push_component(self, coder, k, post):
        rows, summary = post
        portable.push_kept(coder, k, rows, summary)

    def _summary_of(self, w):
        """The KeptSummary of the weights w where they are the model's last table, else None."""
        table, summary = self._table_summary
        return summary if table is w else None

    def _push_weights(self, coder, k, w):
        portable.push_escaped(coder, k, w, self._summary_of(w))

    def _pop_weights(self, coder, w):
        return portable.pop_escaped(coder, w, self._summary_of(w))


@dataclass
class GridReceivers:
    """Revision 8's receiver transitions (``grid_receivers``): component k at step i is
    N(c_i S_{i-1} + g_i m_k, var_i) on S_i's grid, with half-width support[i]."""

    c: np.ndarray
    g: np.ndarray
    var: np.ndarray
    support: np.ndarray


def grid_receivers(plan: ChainPlan, v: float, span: float, tail: float = DEFAULT_TAIL) -> GridReceivers:
    """The receiver transitions that match the encoder's own path distribution on the grids
    (docs/design.md §17). The encoder draws S_n and then every S_{i-1} from the bridge on a grid,
    and a value drawn on a grid of spacing delta carries rounding noise of variance delta^2 / 12
    (Sheppard). So under the encoder the coded S_i have variances

        V_n = v beta_n + delta_n^2 / 12,   V_{i-1} = rho^2 V_i + v beta_{i-1} (1 - rho) + delta_{i-1}^2 / 12

    (rho = beta_{i-1} / beta_i), not v beta_i, and the forward transition of their path is the
    regression of S_i on S_{i-1}: mean beta_i m + c_i (S_{i-1} - beta_{i-1} m) with
    c_i = rho V_i / V_{i-1}, variance V_i (v beta_{i-1} (1 - rho) + delta_{i-1}^2 / 12) / V_{i-1}.
    The receiver codes S_i's grid value, whose own rounding its bin masses add back, so its
    Gaussian gets that variance less delta_i^2 / 12. The chain's expected length is the
    Kullback-Leibler divergence between the encoder's path distribution and the receiver's
    (both on the grids); with these transitions it no longer pays most of the grids' mismatch,
    which was all of revision 7's overhead at r = 2 (binary model, n = 1000: 0.80 bits per
    image from the grids against the continuous path, -0.05 from the coding arithmetic). Step 1 (S_0 = 0): the marginal, c_1 = 0, g_1 = beta_1, var V_1 - delta_1^2 / 12.
    Only correctly rounded operations in a fixed order: the same numbers everywhere.

    Supports: the offset pushed with component k is S_i - c_i S_{i-1} - g_i m_k =
    g_i (m_x - m_k) + (g_i / beta_i) e_i - c_i d (``make_plan``'s e_i and bridge offset d, as
    g_i = beta_i (1 - c_i rho)), so |offset| <= |g_i| span + (|g_i| / beta_i) E_i + |c_i| d_max,
    E_i being ``plan.reach_bound``."""
    n, b, a, d = plan.n, plan.betas, plan.alphas, plan.delta
    V = np.zeros(n + 1)
    V[n] = v * b[n] + d[n] * d[n] / 12.0
    for i in range(n, 1, -1):
        rho = b[i - 1] / b[i]
        V[i - 1] = rho * rho * V[i] + v * b[i - 1] * (a[i] / b[i]) + d[i - 1] * d[i - 1] / 12.0
    c, g, var = np.zeros(n + 1), np.zeros(n + 1), np.zeros(n + 1)
    support = np.zeros(n + 1, dtype=np.int64)
    for i in range(n, 0, -1):
        if i == 1:
            c[i], g[i], var[i] = 0.0, b[1], V[1] - d[1] * d[1] / 12.0
        else:
            rho = b[i - 1] / b[i]
            c[i] = rho * V[i] / V[i - 1]
            g[i] = b[i] - c[i] * b[i - 1]
            var[i] = V[i] * (v * b[i - 1] * (a[i] / b[i]) + d[i - 1] * d[i - 1] / 12.0) / V[i - 1] - d[i] * d[i] / 12.0
        if not var[i] > 0.25 * v * a[i]:  # a grid far coarser than the bundled r: the plain receiver
            c[i], g[i], var[i] = (0.0 if i == 1 else 1.0), a[i], v * a[i]
        d_max = (plan.support_bridge[i] + 0.5) * d[i - 1] if i >= 2 else 0.0
        reach = abs(g[i]) * span + (abs(g[i]) / b[i]) * plan.reach_bound[i] + abs(c[i]) * d_max
        support[i] = max(int(math.ceil(reach / d[i] + 0.5)) + 1, int(math.ceil(tail * math.sqrt(var[i]) / d[i])) + 1)
    if support.max() > MAX_SUPPORT:
        raise ValueError(f"n={n}, r={plan.r} needs a receiver support of {support.max()} symbols; use fewer steps")
    return GridReceivers(c, g, var, support)


class GridChainCoder(KeptChainCoder):
    """The chain coder of revision 8: revision 7 with receivers that match the encoder's path
    distribution on the grids (``grid_receivers``, docs/design.md §17): component k at step i is
    N(c_i S_{i-1} + g_i m_k, var_i) instead of N(S_{i-1} + alpha_i m_k, v alpha_i)."""

    def __init__(self, model, plan: ChainPlan):
        super().__init__(model, plan)
        self.receivers = grid_receivers(plan, self.v, float((self.means.max(0) - self.means.min(0)).max()))
        # the decoder checks every receiver pop against these supports
        self.plan = replace(plan, support_receiver=self.receivers.support)

    def _receiver_std(self, i: int) -> float:
        return math.sqrt(self.receivers.var[i])

    def _receiver_means(self, j_prev, k, i, shape):
        c, g, _ = self._receiver_terms(i)
        S_prev = np.zeros(shape) if j_prev is None else j_prev * self.plan.delta[i - 1]
        return c * S_prev + g * self.means[k]  # [B, D, c]

    def _receiver_terms(self, i: int):
        return self.receivers.c[i], self.receivers.g[i], self.receivers.var[i]
