"""Discretised data (K ordered bins on [-1, 1], e.g. 8-bit pixels with K = 256): docs/design.md §3.

Input distribution, sender, Bayesian update, schedule and flow are those of continuous data
(gaussian.py, continuous.py): S | x ~ N(beta k_c(x), beta) with k_c the bin centre. The output distribution
is a discretised Gaussian per variable,

    mu_x = mu/gamma - sqrt((1-gamma)/gamma) mu_eps,   sigma_x = sqrt((1-gamma)/gamma) exp(ln sigma_eps)
    p_O(k) = G(k_r) - G(k_l),  G(z) = Phi((z - mu_x)/sigma_x), G = 0 below -1 and 1 above +1

(the edge bins are open to -inf / +inf), and the receiver is the K-component mixture
sum_k p_O(k) N(S_{i-1} + alpha k_c, alpha) (chain.py, component means m_k = k_c, v = 1).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import exactmath
from .chain import F64, BayesianFlow, _bcast
from .gaussian import T_MIN, GaussianSchedule, bin_centres
from .portable import KEEP_FRACTION, KeptSummary

SIGMA_MIN, SIGMA_MAX = 1e-3, 10.0  # clamp of sigma_x, as in the official code
LOG_FLOOR = -690.0  # log(1e-300): keeps far-tail bins finite (never exactly -inf)


def bin_boundaries(K: int, dtype=F64, device=None) -> torch.Tensor:
    """The K-1 interior bin edges -1 + 2j/K, j = 1..K-1 (computed on the CPU, then moved:
    the same edges on every device)."""
    j = torch.arange(1, K, dtype=F64)
    return (-1.0 + 2.0 * j / K).to(dtype=dtype, device=device)


def _bin_masses(tail2: torch.Tensor, centre: torch.Tensor, inplace: bool) -> torch.Tensor:
    """Bin masses from 2 x the small-side tail at each bin's edges ([..., W+1]) and the index of
    the bin that holds the mean ([..., 1]): |tail_r - tail_l| for the bins wholly on one side,
    1 - tail_l - tail_r for the one that holds the mean (see ``discretised_gaussian_probs``).
    ``inplace`` (no gradient needed) saves three passes over the table on the coder's path."""
    mass = 1.0 - 0.5 * (tail2.gather(-1, centre) + tail2.gather(-1, centre + 1))
    if not inplace:
        return (torch.diff(tail2, dim=-1).abs() * 0.5).scatter(-1, centre, mass.clamp_min(0.0))
    return torch.diff(tail2, dim=-1).abs_().mul_(0.5).scatter_(-1, centre, mass.clamp_min_(0.0))


def discretised_gaussian_probs(mu: torch.Tensor, sigma: torch.Tensor, K: int) -> torch.Tensor:
    """p_O(k) for k = 0..K-1 of N(mu, sigma^2) binned on [-1, 1] with open edge bins.

    One tail per edge, on the small side only: tail(z) = Phi(-|z|) = erfc(|z|/sqrt 2)/2
    (docs/design.md §4). A bin wholly below the mean has mass Phi(z_r) - Phi(z_l) = tail_r - tail_l,
    one wholly above has (1 - Phi(z_l)) - (1 - Phi(z_r)) = tail_l - tail_r, so either is
    |tail_r - tail_l| with no cancellation against 1; the one bin that holds the mean has
    1 - tail_l - tail_r. The open outer edges have tail 0.

    erfc, not torch.special.ndtr: in float64 ndtr(-z) is 0 from z ~ 9 on (it cancels against
    1), which floored every bin beyond 9 sigma at 1e-300 with no gradient, and it is 4x slower
    than erfc (measured: 1.05 s vs 0.25 s for 64 x 784 x 255 edges, one thread). The table is
    the codec's largest cost on 8-bit data, so the no-grad path (the coder) works in place
    (0.42 s per 64 images instead of 2.3 s with ndtr). Shapes: mu, sigma [...] -> [..., K]."""
    edges = bin_boundaries(K, mu.dtype, mu.device)
    inv = (1.0 / math.sqrt(2.0)) / sigma
    # w = (edge - mu) / (sigma sqrt 2) in one pass
    w = torch.addcmul((-mu * inv).unsqueeze(-1), edges, inv.unsqueeze(-1))  # [..., K-1]
    # the bin that holds the mean: the number of edges below it
    centre = torch.searchsorted(edges, mu.detach().contiguous()).unsqueeze(-1)
    if torch.is_grad_enabled() and (mu.requires_grad or sigma.requires_grad):
        tail2 = torch.nn.functional.pad(torch.special.erfc(w.abs()), (1, 1))  # 2 tail, [..., K+1]
        return _bin_masses(tail2, centre, inplace=False)
    tail2 = w.new_zeros(w.shape[:-1] + (K + 1,))
    tail2[..., 1:K] = torch.special.erfc(w.abs_())
    return _bin_masses(tail2, centre, inplace=True)


def discretised_gaussian_window(mu: torch.Tensor, sigma: torch.Tensor, K: int, z_max: float):
    """p_O restricted to a window of W consecutive bins per variable: (lo [...] int64,
    probs [..., W]) with probs[..., j] the mass of bin lo + j.

    The window holds every bin within z_max * max(sigma) of each variable's mean (one width W
    for the whole tensor, so it stays a dense array: the sigma_x of one call are within a
    factor ~2 of each other, measured on the 8-bit model). Bins outside carry less than
    Phi(-z_max) of the mass; the coder treats them as impossible for the mixture component,
    which is a latent, so nothing is lost but that mass (the data value itself is always coded
    with the full table). Late in the transmission sigma_x is a few bins wide, so the table,
    the posterior and the categoricals shrink from K = 256 entries to ~10 (docs/design.md §10:
    "restricting tables to the bins with non-negligible posterior mass is the obvious lever").
    Bin masses are formed as in ``discretised_gaussian_probs``."""
    edges = bin_boundaries(K, mu.dtype)
    half = int(math.ceil(z_max * float(sigma.max()) * K / 2.0)) + 1 if sigma.numel() else K
    W = min(K, 2 * half + 1)
    if W == K:
        return torch.zeros(mu.shape, dtype=torch.int64), discretised_gaussian_probs(mu, sigma, K)
    centre = torch.searchsorted(edges, mu.contiguous())  # bin that holds the mean
    lo = (centre - half).clamp_(0, K - W)
    # edge number e = lo + j, j = 0..W, at -1 + 2e/K (e = 0 and e = K are the open edges)
    e = lo.unsqueeze(-1) + torch.arange(W + 1)
    inv = (1.0 / math.sqrt(2.0)) / sigma
    w = torch.addcmul(((-1.0 - mu) * inv).unsqueeze(-1), e.to(mu.dtype), ((2.0 / K) * inv).unsqueeze(-1))
    tail2 = torch.special.erfc(w.abs_())  # 2 x tail, [..., W+1]
    tail2[..., 0].masked_fill_(lo == 0, 0.0)
    tail2[..., W].masked_fill_(lo == K - W, 0.0)
    return lo, _bin_masses(tail2, (centre - lo).unsqueeze(-1), inplace=True)


def discretised_gaussian_log_probs(mu: torch.Tensor, sigma: torch.Tensor, K: int) -> torch.Tensor:
    """log p_O(k), floored at log(1e-300) so far-tail bins stay finite."""
    return torch.log(discretised_gaussian_probs(mu, sigma, K).clamp_min(1e-300)).clamp_min(LOG_FLOOR)


class DiscretisedBFN(GaussianSchedule, BayesianFlow):
    data_type = "discretised"

    def __init__(self, K: int = 256, sigma1: float = 1e-3):
        if K < 2:
            raise ValueError("discretised data needs K >= 2 bins")
        if not 0.0 < sigma1 < 1.0:
            raise ValueError("sigma_1 must be in (0, 1)")
        self.K = K
        self.sigma1 = float(sigma1)  # paper: 1e-3 for 256 bins, sqrt(1e-3) for 16 bins
        self.stat_dim = 1
        self.variance_factor = 1.0
        self.component_means = bin_centres(K).unsqueeze(-1)
        self.n_params = 2  # (mu_eps, ln sigma_eps)
        self.in_channels = 1  # mu

    def config(self) -> dict:
        return {"data_type": self.data_type, "K": self.K, "sigma1": self.sigma1}

    def net_input(self, S: torch.Tensor, t) -> torch.Tensor:
        return self.mean_from_stat(S, t)

    def output_gaussian(self, params: torch.Tensor, S: torch.Tensor, t):
        """(mu_x, sigma_x) per variable from the network's (mu_eps, ln sigma_eps)."""
        t = torch.as_tensor(t, dtype=F64)
        gamma = _bcast(self.gamma(t).clamp_min(1e-30), S)[..., 0].to(params.dtype)
        mu = self.mean_from_stat(S, t)[..., 0].to(params.dtype)
        scale = torch.sqrt((1.0 - gamma) / gamma)
        mu_x = mu / gamma - scale * params[..., 0]
        sigma_x = (scale * torch.exp(params[..., 1].clamp(-10.0, 10.0))).clamp(SIGMA_MIN, SIGMA_MAX)
        early = _bcast(t.to(mu_x.device) < T_MIN, mu_x)
        mu_x = torch.where(early, torch.zeros_like(mu_x), mu_x)
        sigma_x = torch.where(early, torch.ones_like(sigma_x), sigma_x)
        return mu_x, sigma_x

    def output_log_probs(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        mu_x, sigma_x = self.output_gaussian(params, S, t)
        return discretised_gaussian_log_probs(mu_x, sigma_x, self.K)

    def output_probs(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """p_O without the log round trip (what the coder's probability tables need)."""
        return discretised_gaussian_probs(*self.output_gaussian(params, S, t), self.K)

    def output_window_probs(self, params: torch.Tensor, S: torch.Tensor, t, z_max: float):
        """(lo, p_O on bins lo..lo+W-1): the coder's windowed receiver weights."""
        mu_x, sigma_x = self.output_gaussian(params, S, t)
        return discretised_gaussian_window(mu_x, sigma_x, self.K, z_max)

    # ----- the portable arithmetic (portable.py) ------------------------------------------------
    def _log_sigma1_exact(self) -> float:
        return float(exactmath.log(np.array([self.sigma1]))[0])

    def schedule_exact(self, times: np.ndarray):
        """beta = expm1(-2 t ln sigma_1), alpha = exp(-2 t_prev ln sigma_1) expm1(-2 (t - t_prev) ln sigma_1)."""
        t = np.asarray(times, dtype=np.float64)
        L = self._log_sigma1_exact()
        betas = exactmath.expm1(-2.0 * t * L)
        betas[0] = 0.0
        alphas = exactmath.exp(-2.0 * t[:-1] * L) * exactmath.expm1(-2.0 * (t[1:] - t[:-1]) * L)
        return betas, alphas

    def _gamma_beta_exact(self, t: float):
        L = self._log_sigma1_exact()
        gamma = float(-exactmath.expm1(np.array([2.0 * t * L]))[0])
        beta = float(exactmath.expm1(np.array([-2.0 * t * L]))[0])
        return gamma, beta

    def net_input_exact(self, S: np.ndarray, t: float) -> np.ndarray:
        """mu = S / (1 + beta(t))."""
        return S / (1.0 + self._gamma_beta_exact(t)[1])

    def output_window_exact(self, params: np.ndarray, S: np.ndarray, t: float, z_max=None, summary: bool = False):
        """``output_gaussian`` and ``discretised_gaussian_window`` in exact arithmetic: the bin
        masses from exactmath.erfc_fast tails at the window's edges (with ``summary``, and the
        rows' sums and kept counts from the compiled kernel, or None without it)."""
        gamma, beta = self._gamma_beta_exact(t)
        gamma = max(gamma, 1e-30)
        mu = S[..., 0] / (1.0 + beta)
        scale = math.sqrt((1.0 - gamma) / gamma)
        if t < T_MIN:
            mu_x, sigma_x = np.zeros(mu.shape), np.ones(mu.shape)
        else:
            mu_x = mu / gamma - scale * params[..., 0]
            sigma_x = np.clip(scale * exactmath.exp(np.clip(params[..., 1], -10.0, 10.0)), SIGMA_MIN, SIGMA_MAX)
        K = self.K
        edges = -1.0 + 2.0 * np.arange(1, K, dtype=np.float64) / K
        centre = np.searchsorted(edges, mu_x)  # the bin that holds the mean
        if z_max is None:
            W = K
        else:
            half = int(math.ceil(z_max * float(sigma_x.max()) * K / 2.0)) + 1 if sigma_x.size else K
            W = min(K, 2 * half + 1)
        lo = np.clip(centre - (W // 2), 0, K - W) if W < K else np.zeros(mu_x.shape, dtype=np.int64)
        inv = exactmath.SQRT_HALF / sigma_x
        kernel = exactmath.compiled("window_masses") if mu_x.dtype == inv.dtype == np.float64 else None
        if kernel is not None:  # the same operations per bin, fused (kernels.py)
            probs = np.empty(mu_x.shape + (W,))
            rows = probs.reshape(-1, W)
            args = [np.ascontiguousarray(np.broadcast_to(v, mu_x.shape).reshape(-1), dtype=dt) for v, dt in
                    ((lo, np.int64), (mu_x, np.float64), (inv, np.float64), (centre, np.int64))]
            totals, counts = np.empty(rows.shape[0]), np.empty(rows.shape[0], dtype=np.int64)
            exactmath.for_rows(lambda a, b: kernel(a, b, *args, K, rows, KEEP_FRACTION, totals, counts),
                               rows.shape[0], W + 1)
            if summary:
                return (None if W == K else lo), probs, KeptSummary(totals, counts)
            return (None if W == K else lo), probs
        e = lo[..., None] + np.arange(W + 1)  # edge numbers: edge e at -1 + 2e/K
        w = ((-1.0 + e * (2.0 / K)) - mu_x[..., None]) * inv[..., None]
        tail2 = exactmath.erfc_fast(np.abs(w))  # 2 x the tail beyond each edge, on its own side
        tail2[..., 0] = np.where(lo == 0, 0.0, tail2[..., 0])  # the open outer edges
        tail2[..., W] = np.where(lo == K - W, 0.0, tail2[..., W])
        probs = 0.5 * np.abs(tail2[..., 1:] - tail2[..., :-1])
        c = (centre - lo)[..., None]
        inside = (c >= 0) & (c < W)
        cc = np.clip(c, 0, W - 1)
        mid = 1.0 - 0.5 * (np.take_along_axis(tail2, cc, -1) + np.take_along_axis(tail2, cc + 1, -1))
        np.put_along_axis(probs, cc, np.where(inside, np.maximum(mid, 0.0), np.take_along_axis(probs, cc, -1)), -1)
        if summary:
            return (None if W == K else lo), probs, None
        return (None if W == K else lo), probs

    def output_mean(self, mu_x: torch.Tensor, sigma_x: torch.Tensor) -> torch.Tensor:
        """k_hat = E_{p_O}[k_c] without forming the K bin masses: by summation by parts,
        sum_k p_k k_c = k_c(K) - (2/K) sum_{j=1}^{K-1} Phi(z_j) (z_j the interior edges)."""
        edges = bin_boundaries(self.K, mu_x.dtype, mu_x.device)
        cdf = torch.special.ndtr((edges - mu_x.unsqueeze(-1)) / sigma_x.unsqueeze(-1))
        return (1.0 - 1.0 / self.K) - (2.0 / self.K) * cdf.sum(-1)

    def point_estimate(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """k_hat = E_{p_O}[k_c] from the Gaussian parameters, in the network's float32 (K times
        cheaper than building the K bin masses; the L^inf loss scores it)."""
        return self.output_mean(*self.output_gaussian(params, S, t))

    def infinity_loss_mc(self, model, x: torch.Tensor, generator=None) -> torch.Tensor:
        """One-sample L^inf per item, through the model's point estimate k_hat."""
        t = torch.rand(x.shape[0], dtype=F64, generator=generator, device=x.device)
        S = self.sample_stat(x, self.beta(t), generator)
        return self.infinity_loss_from_mean(model.point_estimate(S, t), x, t)

    def infinity_loss(self, log_probs: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        """L^inf integrand -ln sigma_1 ||k_c(x) - k_hat||^2 / sigma_1^{2t}, k_hat = E_{p_O}[k_c]."""
        k_hat = (log_probs.exp() * bin_centres(self.K, log_probs.dtype, log_probs.device)).sum(-1)
        return self.infinity_loss_from_mean(k_hat, x, t)

    def infinity_loss_from_mean(self, k_hat: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        x_c = bin_centres(self.K, k_hat.dtype, k_hat.device)[x.long()]
        t = _bcast(torch.as_tensor(t, dtype=F64), k_hat)
        weight = (-self.log_sigma1 * torch.exp(-2.0 * t * self.log_sigma1)).to(k_hat.dtype)
        return (weight * (x_c - k_hat).square()).sum(-1)
