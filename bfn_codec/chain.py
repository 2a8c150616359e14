"""The BFN message chain in sufficient-statistic space, shared by the three data types.

A BFN receiver only ever needs the running sum of the messages (docs/design.md §6):

    S_i = sum_{j<=i} (message j)            S_i | x  ~  N(beta_i * m_x, v * beta_i * I_c)

where beta_i = beta(t_i) is the accuracy received by time t_i, m_x is the sender mean per unit
accuracy (a vector of c = ``stat_dim`` coordinates) and v is the variance per unit accuracy.
Every data type is described by (m_k for its K outcomes, v) plus its own accuracy schedule,
Bayesian update (theta from S) and output distribution; those live in ``discrete.py``,
``discretised.py`` and ``continuous.py``. This module holds what they share:

* the schedule for n steps on any time grid (alpha_i = beta(t_i) - beta(t_{i-1})),
* the Bayesian flow p_F in S-space (q(S | x) above),
* the Gaussian bridge q(S_{i-1} | S_i) = N(beta_{i-1}/beta_i S_i, v beta_{i-1} alpha_i / beta_i),
  which does not depend on x (the fact that allows Bit-Swap ordering),
* the receiver in S-space, the K-component *joint* mixture
  p(S_i | S_{i-1}) = sum_k p_O(k) N(S_i | S_{i-1} + alpha_i m_k, v alpha_i I_c),
* the closed-form Bayes-optimal ("oracle") output for independent variables with known marginals.

All functions take torch tensors; statistics and schedules are float64 (beta reaches 1e6 for
8-bit data). Shapes: S is [..., D, c]; per-variable outcome tables are [..., D, K].
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import math

import numpy as np
import torch

LOG_2PI = math.log(2.0 * math.pi)
F64 = torch.float64


def uniform_times(n: int) -> torch.Tensor:
    """The paper's time grid t_i = i/n, i = 0..n (float64)."""
    if n < 1:
        raise ValueError(f"the number of steps must be >= 1, got {n}")
    return torch.arange(n + 1, dtype=F64) / n


def power_times(n: int, power: float = 1.0) -> torch.Tensor:
    """The time grid t_i = (i/n)^power, i = 0..n (power = 1: the paper's uniform grid). The
    paper leaves the grid for a given n open (docs/design.md §14); power > 1 spends more steps at
    low accuracy, where the discrete-time loss is largest (benchmarks/steps_curve.py measures it
    against uniform with the same weights; the README's time-grid tables list the results)."""
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"the grid power must be positive, got {power}")
    return uniform_times(n) ** float(power)


def check_times(times: torch.Tensor) -> torch.Tensor:
    times = torch.as_tensor(times, dtype=F64)
    if times.ndim != 1 or len(times) < 2 or times[0] != 0.0 or times[-1] != 1.0:
        raise ValueError("a time grid must run from t_0 = 0 to t_n = 1")
    if not bool(torch.all(times[1:] > times[:-1])):
        raise ValueError("a time grid must be strictly increasing")
    return times


class BayesianFlow(ABC):
    """A BFN data type in S-space: the interface the coder, the models and the losses use.

    The schedule, the flow, the bridge and the receiver are the same for every data type and
    live here; a data type (discrete.py, discretised.py, continuous.py) supplies its accuracy
    schedule, the network's input and output, and may supply the optional steps below, whose
    defaults are correct for every data type (an override is only faster or more accurate)."""

    data_type: str
    K: int  # number of outcomes (classes or bins)
    stat_dim: int  # c: coordinates of S per variable
    variance_factor: float  # v: Var(S | x) = v * beta
    component_means: torch.Tensor  # [K, c] float64, m_k
    in_channels: int  # network input features per variable
    n_params: int  # network outputs per variable

    # ----- what a data type must supply -------------------------------------------------------
    @abstractmethod
    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """The accuracy schedule beta(t), float64."""

    @abstractmethod
    def config(self) -> dict:
        """What make_flow needs to rebuild this flow (saved in a model's config.json)."""

    @abstractmethod
    def net_input(self, S: torch.Tensor, t) -> torch.Tensor:
        """The network's input features per variable [B, D, in_channels] from S [B, D, c]."""

    def output_log_probs(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """log p_O(k | theta; t) [B, D, K] from the network's outputs ``params`` [B, D, n_params].
        Every data type the coder codes has one (continuous data has a point estimate instead)."""
        raise NotImplementedError(f"{self.data_type} data has no output distribution over K outcomes")

    def point_estimate(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """A point estimate of x per variable [B, D] from the network's outputs (continuous and
        discretised data: the estimate the L^inf loss scores)."""
        raise NotImplementedError(f"{self.data_type} data has no point estimate")

    # ----- the portable arithmetic (coder revision 6, portable.py) --------------------------------
    # numpy float64 in, numpy float64 out, built only from correctly rounded IEEE operations and
    # exactmath, so every machine computes the same bits. A data type without them cannot be
    # coded portably (the coder says so).
    def schedule_exact(self, times: np.ndarray):
        """(betas[0..n], alphas[1..n]) on the time grid ``times`` (t_0 = 0, t_n = 1)."""
        raise NotImplementedError(f"{self.data_type} data (K={self.K}) has no portable arithmetic yet")

    def net_input_exact(self, S: np.ndarray, t: float) -> np.ndarray:
        """``net_input`` for one time t: S [B, D, c] -> [B, D, in_channels]."""
        raise NotImplementedError(f"{self.data_type} data (K={self.K}) has no portable arithmetic yet")

    def output_window_exact(self, params: np.ndarray, S: np.ndarray, t: float, z_max: float | None,
                            summary: bool = False):
        """(lo [B, D] or None, p_O on bins lo..lo+W-1 [B, D, W]) from the network's outputs
        [B, D, n_params]; z_max None: the whole table (lo None). With ``summary``, a third
        element: the table rows' portable.KeptSummary where it comes with the table, or None."""
        raise NotImplementedError(f"{self.data_type} data (K={self.K}) has no portable arithmetic yet")

    # ----- optional steps, with defaults --------------------------------------------------------
    def output_probs(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """p_O as probabilities (discretised data forms them without going through logs)."""
        return self.output_log_probs(params, S, t).exp()

    def output_window_probs(self, params: torch.Tensor, S: torch.Tensor, t, z_max: float):
        """(lo [B, D] or None, probs [B, D, W]): p_O on a window of W outcomes per variable
        starting at lo; by default the whole table (lo None). Discretised data narrows it to the
        bins within z_max standard deviations of the output mean (docs/design.md §10)."""
        return None, self.output_probs(params, S, t)

    # ----- schedule -------------------------------------------------------------------------

    def step_accuracies(self, t_prev: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """alpha = beta(t) - beta(t_prev); subclasses override with a cancellation-free form."""
        return self.beta(t) - self.beta(t_prev)

    def schedule(self, n: int, times: torch.Tensor | None = None):
        """(t[0..n], beta[0..n], alpha[1..n]) for an n-step transmission, all float64.

        beta[0] = 0 and alpha[i-1] = beta[i] - beta[i-1] (the accuracy of message i)."""
        times = uniform_times(n) if times is None else check_times(times)
        if len(times) != n + 1:
            raise ValueError(f"time grid has {len(times) - 1} steps, expected {n}")
        betas = self.beta(times)
        betas[0] = 0.0
        alphas = self.step_accuracies(times[:-1], times[1:])
        return times, betas, alphas

    # ----- Bayesian flow and sender in S-space ----------------------------------------------
    def sender_mean(self, x: torch.Tensor, beta) -> torch.Tensor:
        """E[S | x] = beta * m_x; x holds outcome indices [..., D] -> [..., D, c]."""
        m = self.component_means.to(x.device)[x.long()]
        return _bcast(beta, m) * m

    def stat_std(self, beta) -> torch.Tensor:
        return torch.sqrt(self.variance_factor * torch.as_tensor(beta, dtype=F64))

    def sample_stat(self, x: torch.Tensor, beta, generator=None) -> torch.Tensor:
        """S ~ q(S | x) = N(beta m_x, v beta I): the Bayesian flow p_F expressed in S."""
        mean = self.sender_mean(x, beta)
        noise = torch.randn(mean.shape, dtype=F64, generator=generator, device=mean.device)
        return mean + _bcast(self.stat_std(beta), mean) * noise

    def bridge(self, S_i: torch.Tensor, beta_prev, beta_i):
        """q(S_{i-1} | S_i): mean (beta_{i-1}/beta_i) S_i, std sqrt(v beta_{i-1} alpha_i/beta_i).

        alpha_i / beta_i = 1 - beta_{i-1}/beta_i is formed from the ratio, which is exact enough
        in float64 even for beta ~ 1e6 (docs/design.md §6)."""
        beta_prev = torch.as_tensor(beta_prev, dtype=F64)
        beta_i = torch.as_tensor(beta_i, dtype=F64)
        ratio = beta_prev / beta_i
        var = self.variance_factor * beta_prev * (1.0 - ratio)
        return _bcast(ratio, S_i) * S_i, _bcast(torch.sqrt(var), S_i).expand_as(S_i)

    # ----- receiver -------------------------------------------------------------------------
    def component_log_density(self, S_i, S_prev, alpha) -> torch.Tensor:
        """log N(S_i | S_prev + alpha m_k, v alpha I_c) for every k: [..., D, K] (summed over c)."""
        alpha = _bcast(torch.as_tensor(alpha, dtype=F64), S_i)  # [..., 1, 1]
        m = self.component_means.to(S_i.device)
        diff = (S_i - S_prev).unsqueeze(-2) - alpha.unsqueeze(-1) * m  # [...,D,K,c]
        var = self.variance_factor * alpha.unsqueeze(-1)
        return (-0.5 * diff.square() / var - 0.5 * (LOG_2PI + torch.log(var))).sum(-1)

    def receiver_log_density(self, S_i, S_prev, alpha, log_probs) -> torch.Tensor:
        """log p_R in S-space: log sum_k p_O(k) N(S_i | S_prev + alpha m_k, v alpha I): [..., D]."""
        return torch.logsumexp(log_probs + self.component_log_density(S_i, S_prev, alpha), dim=-1)

    def sender_log_density(self, S_i, S_prev, alpha, x) -> torch.Tensor:
        """log p_S in S-space: log N(S_i | S_prev + alpha m_x, v alpha I): [..., D]."""
        comp = self.component_log_density(S_i, S_prev, alpha)
        return comp.gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    # ----- the oracle ------------------------------------------------------------------------
    def oracle_log_probs(self, S: torch.Tensor, beta, log_pi: torch.Tensor) -> torch.Tensor:
        """Bayes-optimal output for independent variables with marginals pi ([D, K] log-probs).

        p(x = k | S) ∝ pi_k N(S | beta m_k, v beta) ∝ pi_k exp(<S, m_k>/v - beta |m_k|^2 / (2v)).
        With it the chain's code length equals -log pi(x) for every n (docs/design.md §13)."""
        beta = _bcast(torch.as_tensor(beta, dtype=F64), S)  # [...,1,1]
        m = self.component_means  # [K, c]
        logits = (S @ m.T) / self.variance_factor - beta * (m.square().sum(-1) / (2 * self.variance_factor))
        return torch.log_softmax(log_pi.to(F64) + logits, dim=-1)

    # ----- the final transmission -----------------------------------------------------------
    def reconstruction_nats(self, log_probs_final: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p_O(x | theta_n; 1) per item [...] from final-time log-probs [..., D, K]."""
        return -log_probs_final.gather(-1, x.long().unsqueeze(-1)).squeeze(-1).sum(-1)

    # ----- losses (nats per item; the model maps (S, t) to log p_O [..., D, K]) ---------------
    def n_step_loss(self, model, x: torch.Tensor, n: int, times=None, samples: int = 10,
                    all_steps: bool = False, generator=None) -> torch.Tensor:
        """L^n(x) = sum_i E KL(p_S(. | x; alpha_i) || p_R(. | theta_{i-1}; alpha_i)) per item.

        The KL of the Gaussian sender against the K-component (joint) mixture receiver has no
        closed form: it is estimated with ``samples`` draws of the message. By default one
        random step i per item is drawn and scaled by n (the paper's estimator); with
        ``all_steps`` every step is evaluated (n network calls, the exact sum over i). Everything
        runs on x's device (the generator must live there too)."""
        times, betas, alphas = (v.to(x.device) for v in self.schedule(n, times))
        if all_steps:
            total = torch.zeros(x.shape[0], dtype=F64, device=x.device)
            for i in range(1, n + 1):
                idx = torch.full((x.shape[0],), i, device=x.device)
                total += self._step_kl(model, x, idx, times, betas, alphas, samples, generator)
            return total
        idx = torch.randint(1, n + 1, (x.shape[0],), generator=generator, device=x.device)
        return n * self._step_kl(model, x, idx, times, betas, alphas, samples, generator)

    def _step_kl(self, model, x, idx, times, betas, alphas, samples, generator):
        beta_prev, alpha, t_prev = betas[idx - 1], alphas[idx - 1], times[idx - 1]
        S_prev = self.sample_stat(x, beta_prev, generator)
        log_probs = model.log_probs(S_prev, t_prev).to(F64)
        mean = S_prev + self.sender_mean(x, alpha)
        std = _bcast(self.stat_std(alpha), mean)
        kl = torch.zeros(x.shape[0], dtype=F64, device=x.device)
        for _ in range(samples):
            S_i = mean + std * torch.randn(mean.shape, dtype=F64, generator=generator, device=x.device)
            kl += (self.sender_log_density(S_i, S_prev, alpha, x)
                   - self.receiver_log_density(S_i, S_prev, alpha, log_probs)).sum(-1)
        return kl / samples

    def reconstruction_loss(self, model, x: torch.Tensor, generator=None) -> torch.Tensor:
        """L^r(x) = -E_{p_F(theta | x; 1)} log p_O(x | theta; 1) per item (one sample)."""
        S_n = self.sample_stat(x, self.beta(torch.tensor(1.0, dtype=F64)), generator)
        t = torch.ones(x.shape[0], dtype=F64, device=x.device)
        return self.reconstruction_nats(model.log_probs(S_n, t).to(F64), x)

    def infinity_loss_mc(self, model, x: torch.Tensor, generator=None) -> torch.Tensor:
        """One-sample estimate of L^inf(x) per item (t ~ U(0, 1) per item); differentiable."""
        t = torch.rand(x.shape[0], dtype=F64, generator=generator, device=x.device)
        S = self.sample_stat(x, self.beta(t), generator)
        return self.infinity_loss(model.log_probs(S, t), x, t)


def _bcast(value, like: torch.Tensor) -> torch.Tensor:
    """Reshape a scalar or per-item [B] tensor so it broadcasts against [B, D, ...]."""
    value = torch.as_tensor(value)
    if value.is_floating_point():
        value = value.to(like.dtype if like.is_floating_point() else F64)
    if value.ndim == 0:
        return value
    return value.reshape(value.shape + (1,) * (like.ndim - value.ndim))
