"""Continuous data (x in [-1, 1], real-valued): docs/design.md §3.

Input distribution N(mu, 1/rho) per variable, prior (0, 1). Sender y ~ N(x, 1/alpha); update
rho' = rho + alpha, mu' = (rho mu + alpha y)/rho'. In S-space (S = sum alpha_j y_j):
S | x ~ N(beta x, beta), rho = 1 + beta, mu = S / rho. Schedule chosen so that the input
entropy falls linearly: beta(t) = sigma_1^{-2t} - 1, gamma(t) = beta/(1 + beta) = 1 - sigma_1^{2t}.

The output distribution is a point mass at x_hat (the network predicts the noise); the receiver
is N(S_{i-1} + alpha x_hat, alpha). L^n and L^inf are analytic in y; the final transmission
L^r scores x under a discretised N(x_hat, sigma_1^2) on K bins (as the official code does for
its 256-bin models). The discretised data type (discretised.py) shares this schedule and update
(gaussian.py).
"""
from __future__ import annotations

import torch

from .chain import F64, BayesianFlow, _bcast
from .discretised import discretised_gaussian_log_probs
from .gaussian import T_MIN, GaussianSchedule, bin_centres


class ContinuousBFN(GaussianSchedule, BayesianFlow):
    data_type = "continuous"

    def __init__(self, sigma1: float = 1e-3, K: int = 256):
        if not 0.0 < sigma1 < 1.0:
            raise ValueError("sigma_1 must be in (0, 1)")
        self.sigma1 = float(sigma1)
        self.K = K  # bins used only by the final (reconstruction) transmission
        self.stat_dim = 1
        self.variance_factor = 1.0
        self.component_means = bin_centres(K).unsqueeze(-1)
        self.n_params = 1
        self.in_channels = 1

    def config(self) -> dict:
        return {"data_type": self.data_type, "K": self.K, "sigma1": self.sigma1}

    def sender_mean(self, x: torch.Tensor, beta) -> torch.Tensor:
        """E[S | x] = beta x for real-valued x [..., D] -> [..., D, 1]."""
        x = x.to(F64).unsqueeze(-1)
        return _bcast(torch.as_tensor(beta, dtype=F64), x) * x

    def net_input(self, S: torch.Tensor, t) -> torch.Tensor:
        return self.mean_from_stat(S, t)

    def point_estimate(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """x_hat = mu/gamma - sqrt((1-gamma)/gamma) eps_hat, clipped to [-1, 1]; 0 for t < t_min.
        In float64: near t = 0 mu/gamma divides two small numbers."""
        params = params.to(F64)
        t = torch.as_tensor(t, dtype=F64)
        gamma = _bcast(self.gamma(t).clamp_min(1e-30), S).to(params.dtype)
        mu = self.mean_from_stat(S, t).to(params.dtype)[..., 0]
        eps = params[..., 0]
        x_hat = mu / gamma[..., 0] - torch.sqrt((1.0 - gamma[..., 0]) / gamma[..., 0]) * eps
        early = _bcast(t.to(x_hat.device) < T_MIN, x_hat)
        return torch.where(early, torch.zeros_like(x_hat), x_hat).clamp(-1.0, 1.0)

    # ----- losses (nats per item) ------------------------------------------------------------
    def step_kl(self, x: torch.Tensor, x_hat: torch.Tensor, alpha) -> torch.Tensor:
        """KL(N(x, 1/alpha) || N(x_hat, 1/alpha)) = alpha ||x - x_hat||^2 / 2 per item."""
        alpha = _bcast(torch.as_tensor(alpha, dtype=x_hat.dtype), x_hat)
        return (0.5 * alpha * (x.to(x_hat.dtype) - x_hat).square()).sum(-1)

    def infinity_loss_from_estimate(self, x_hat: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        """L^inf integrand -ln sigma_1 ||x - x_hat||^2 / sigma_1^{2t}."""
        t = _bcast(torch.as_tensor(t, dtype=F64), x_hat)
        weight = (-self.log_sigma1 * torch.exp(-2.0 * t * self.log_sigma1)).to(x_hat.dtype)
        return (weight * (x.to(x_hat.dtype) - x_hat).square()).sum(-1)

    def reconstruction_nats_from_estimate(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log of the discretised N(x_hat, sigma_1^2) mass of x's bin (edge bins open)."""

        sigma = torch.full_like(x_hat, self.sigma1, dtype=F64)
        logp = discretised_gaussian_log_probs(x_hat.to(F64), sigma, self.K)
        k = torch.round((x.to(F64) + 1.0) * self.K / 2.0 - 0.5).clamp(0, self.K - 1).long()
        return -logp.gather(-1, k.unsqueeze(-1)).squeeze(-1).sum(-1)

    # ----- losses through a model (the model maps (S, t) to x_hat [..., D]) -------------------
    def n_step_loss(self, model, x: torch.Tensor, n: int, times=None, samples: int = 10,
                    all_steps: bool = False, generator=None) -> torch.Tensor:
        """L^n(x) = sum_i alpha_i ||x - x_hat(theta_{i-1}, t_{i-1})||^2 / 2 (analytic in y)."""
        times, betas, alphas = (v.to(x.device) for v in self.schedule(n, times))
        B = x.shape[0]
        if all_steps:
            total = torch.zeros(B, dtype=F64, device=x.device)
            for i in range(1, n + 1):
                S = self.sample_stat(x, betas[i - 1], generator)
                x_hat = model.point_estimate(S, times[i - 1].expand(B)).to(F64)
                total += self.step_kl(x, x_hat, alphas[i - 1])
            return total
        idx = torch.randint(1, n + 1, (B,), generator=generator, device=x.device)
        S = self.sample_stat(x, betas[idx - 1], generator)
        x_hat = model.point_estimate(S, times[idx - 1]).to(F64)
        return n * self.step_kl(x, x_hat, alphas[idx - 1])

    def reconstruction_loss(self, model, x: torch.Tensor, generator=None) -> torch.Tensor:
        S = self.sample_stat(x, self.beta(torch.tensor(1.0, dtype=F64)), generator)
        x_hat = model.point_estimate(S, torch.ones(x.shape[0], dtype=F64, device=x.device)).to(F64)
        return self.reconstruction_nats_from_estimate(x_hat, x)

    def infinity_loss_mc(self, model, x: torch.Tensor, generator=None) -> torch.Tensor:
        t = torch.rand(x.shape[0], dtype=F64, generator=generator, device=x.device)
        S = self.sample_stat(x, self.beta(t), generator)
        return self.infinity_loss_from_estimate(model.point_estimate(S, t), x, t)
