"""Discrete data (K categories, e.g. binarised images K = 2 or text K = 27): docs/design.md §5.

Input distribution: one categorical theta^(d) per variable, prior uniform.
Sender: y ~ N(alpha (K e_x - 1), alpha K I_K); Bayesian update theta' ∝ theta e^y, so after i
messages theta_i = softmax(S_i) with S_i = sum of the y's. Schedule beta(t) = beta(1) t^2.

The component of y along the all-ones vector has the same N(0, alpha K^2) law for every class
and softmax ignores it, so S is kept in the (K-1)-dimensional sum-zero subspace, in the
coordinates z = B^T S of an orthonormal basis B (K x (K-1)). There

    z | x ~ N(beta K b_x, beta K I_{K-1})        (b_x = row x of B)

i.e. component means m_k = K b_k and variance factor v = K (chain.py). For K = 2 the single
coordinate is z = (S[1] - S[0]) / sqrt(2), and P(x=1 | theta) = sigmoid(sqrt(2) z).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from . import exactmath
from .chain import F64, BayesianFlow, _bcast

SQRT2 = math.sqrt(2.0)  # correctly rounded (IEEE sqrt)


def sum_zero_basis(K: int) -> torch.Tensor:
    """Orthonormal basis [K, K-1] of {v in R^K : sum v = 0} (Helmert vectors, sign chosen so
    that for K = 2 the coordinate grows with the evidence for class 1)."""
    B = torch.zeros(K, K - 1, dtype=F64)
    for j in range(1, K):
        B[:j, j - 1] = -1.0
        B[j, j - 1] = float(j)
        B[:, j - 1] /= math.sqrt(j * (j + 1))
    return B


class DiscreteBFN(BayesianFlow):
    data_type = "discrete"

    def __init__(self, K: int = 2, beta1: float | None = None):
        if K < 2:
            raise ValueError("discrete data needs K >= 2 classes")
        self.K = K
        # Paper defaults: beta(1) = 9 for binarised MNIST (max_sqrt_beta 3), 0.5625 for text8.
        self.beta1 = float(beta1 if beta1 is not None else (9.0 if K == 2 else 0.5625))
        self.basis = sum_zero_basis(K)
        self.stat_dim = K - 1
        self.variance_factor = float(K)
        self.component_means = K * self.basis  # m_k = K b_k
        self.n_params = 1 if K == 2 else K  # network outputs per variable
        self.in_channels = 1 if K == 2 else K  # network inputs per variable
        self._basis_exact = self._exact_basis()  # every exact network call uses it

    def config(self) -> dict:
        return {"data_type": self.data_type, "K": self.K, "beta1": self.beta1}

    # ----- schedule: beta(t) = beta(1) t^2, alpha_i = beta(1)(t_i^2 - t_{i-1}^2) -------------
    def beta(self, t):
        return self.beta1 * torch.as_tensor(t, dtype=F64) ** 2

    def step_accuracies(self, t_prev, t):
        t_prev, t = torch.as_tensor(t_prev, dtype=F64), torch.as_tensor(t, dtype=F64)
        return self.beta1 * (t - t_prev) * (t + t_prev)

    # ----- input distribution ----------------------------------------------------------------
    def class_logits(self, S: torch.Tensor) -> torch.Tensor:
        """log theta up to a constant: B z (the sum-zero representative of S)."""
        return S @ self.basis.to(device=S.device, dtype=S.dtype).T

    def theta(self, S: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.class_logits(S), dim=-1)

    def net_input(self, S: torch.Tensor, t) -> torch.Tensor:
        """theta mapped to [-1, 1] by 2 theta - 1; for K = 2 only 2 theta_1 - 1 = tanh(s/2)."""
        if self.K == 2:
            s = math.sqrt(2.0) * S  # logit of P(x = 1 | theta)
            return torch.tanh(0.5 * s)
        return 2.0 * self.theta(S) - 1.0

    # ----- output distribution ---------------------------------------------------------------
    def output_log_probs(self, params: torch.Tensor, S: torch.Tensor, t) -> torch.Tensor:
        """Softmax (Bernoulli for K = 2) over the network's logits.

        The network predicts a correction to the input's own logits, so an untrained network
        outputs theta itself (any function of (theta, t) is a valid output; this one starts
        where the Bayesian update already is)."""
        logits = self.class_logits(S).to(params.dtype)
        if self.K == 2:
            logit1 = params[..., 0] + (logits[..., 1] - logits[..., 0])
            return torch.stack([torch.nn.functional.logsigmoid(-logit1),
                                torch.nn.functional.logsigmoid(logit1)], dim=-1)
        return torch.log_softmax(params + logits, dim=-1)

    # ----- the portable arithmetic (portable.py) ---------------------------------------------
    # K = 2 has its own closed forms (one coordinate, a logistic); K > 2 goes through the class
    # logits B z and a softmax. Both use only correctly rounded operations and exactmath.
    def _exact_basis(self) -> np.ndarray:
        """B as numpy float64, built from correctly rounded operations (float(j), sqrt, /): the
        same bits everywhere (``sum_zero_basis`` makes the same numbers through torch)."""
        B = np.zeros((self.K, self.K - 1))
        for j in range(1, self.K):
            norm = math.sqrt(float(j * (j + 1)))
            B[:j, j - 1] = -1.0 / norm
            B[j, j - 1] = float(j) / norm
        return B

    def _class_logits_exact(self, S: np.ndarray) -> np.ndarray:
        """B z per variable [..., K] from z = S [..., K-1]: the dot products summed in
        coordinate order, one rounded multiply and add at a time."""
        B = self._basis_exact
        logits = np.zeros(S.shape[:-1] + (self.K,))
        for i in range(self.K - 1):
            logits = logits + S[..., i:i + 1] * B[:, i]
        return logits

    def schedule_exact(self, times: np.ndarray):
        t = np.asarray(times, dtype=np.float64)
        betas = self.beta1 * (t * t)
        betas[0] = 0.0
        alphas = self.beta1 * ((t[1:] - t[:-1]) * (t[1:] + t[:-1]))
        return betas, alphas

    def net_input_exact(self, S: np.ndarray, t: float) -> np.ndarray:
        """K = 2: tanh(s/2) = (1 - e^-|s|) / (1 + e^-|s|) with the sign of s, s = sqrt(2) z.
        K > 2: 2 theta - 1 with theta = softmax(B z)."""
        if self.K > 2:
            return 2.0 * exactmath.softmax(self._class_logits_exact(S)) - 1.0
        s = SQRT2 * S
        e = exactmath.exp(-np.abs(s))
        return np.where(s < 0, -1.0, 1.0) * ((1.0 - e) / (1.0 + e))

    def output_window_exact(self, params: np.ndarray, S: np.ndarray, t: float, z_max=None, summary: bool = False):
        """K = 2: P(x = 1) = sigmoid(l), l = the network's output + s: with e = exp(-|l|) the
        larger class has 1 / (1 + e) and the smaller e / (1 + e), each without cancellation.
        K > 2: softmax(network's outputs + B z), as ``output_log_probs``."""
        if self.K > 2:
            probs = exactmath.softmax(params + self._class_logits_exact(S))
            return (None, probs, None) if summary else (None, probs)
        logit = params[..., 0] + SQRT2 * S[..., 0]
        e = exactmath.exp(-np.abs(logit))
        big, small = 1.0 / (1.0 + e), e / (1.0 + e)
        p1 = np.where(logit >= 0, big, small)
        p0 = np.where(logit >= 0, small, big)
        probs = np.stack([p0, p1], axis=-1)
        return (None, probs, None) if summary else (None, probs)

    # ----- continuous-time loss --------------------------------------------------------------
    def infinity_loss(self, log_probs: torch.Tensor, x: torch.Tensor, t) -> torch.Tensor:
        """L^inf integrand K beta(1) t ||e_x - e_hat||^2 per item (nats), t ~ U(0, 1)."""
        e_hat = log_probs.exp()
        e_x = torch.nn.functional.one_hot(x.long(), self.K).to(e_hat.dtype)
        t = _bcast(torch.as_tensor(t, dtype=e_hat.dtype), e_hat)
        per_var = (e_x - e_hat).square().sum(-1)
        return self.K * self.beta1 * (t.squeeze(-1) * per_var).sum(-1)
