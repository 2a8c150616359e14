"""The Gaussian accuracy schedule shared by continuous and discretised data: docs/design.md §3.

Both data types send Gaussian messages y ~ N(x, 1/alpha) with sufficient statistic
S | x ~ N(beta x, beta) (discretised data: x is the bin centre k_c), and choose the schedule so
that the input entropy falls linearly: beta(t) = sigma_1^{-2t} - 1, gamma(t) = 1 - sigma_1^{2t}.
"""
from __future__ import annotations

import math

import torch

from .chain import F64, _bcast

T_MIN = 1e-6  # below this gamma ~ 0 and mu/gamma is undefined: x_hat = 0 (docs/design.md §3)


def bin_centres(K: int, dtype=F64, device=None) -> torch.Tensor:
    """k_c = (2k - 1)/K - 1 for k = 1..K, computed analytically (docs/design.md §3)."""
    k = torch.arange(1, K + 1, dtype=F64)
    return ((2.0 * k - 1.0) / K - 1.0).to(dtype=dtype, device=device)


class GaussianSchedule:
    """beta(t) = sigma_1^{-2t} - 1 and its friends, shared by continuous and discretised data."""

    sigma1: float

    @property
    def log_sigma1(self) -> float:
        return math.log(self.sigma1)

    def beta(self, t):
        return torch.expm1(-2.0 * torch.as_tensor(t, dtype=F64) * self.log_sigma1)

    def step_accuracies(self, t_prev, t):
        # alpha = sigma^{-2 t_prev} (sigma^{-2 (t - t_prev)} - 1), free of cancellation.
        t_prev, t = torch.as_tensor(t_prev, dtype=F64), torch.as_tensor(t, dtype=F64)
        return torch.exp(-2.0 * t_prev * self.log_sigma1) * torch.expm1(-2.0 * (t - t_prev) * self.log_sigma1)

    def gamma(self, t):
        # gamma = 1 - sigma^{2t} via expm1: float-safe near t = 0 (docs/design.md §3).
        return -torch.expm1(2.0 * torch.as_tensor(t, dtype=F64) * self.log_sigma1)

    def mean_from_stat(self, S: torch.Tensor, t) -> torch.Tensor:
        """mu = S / (1 + beta(t))."""
        beta = _bcast(self.beta(t), S)
        return S / (1.0 + beta).to(S.dtype)
