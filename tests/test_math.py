"""Closed forms of the BFN math that could fail (docs/design.md §3-§6)."""
import math

import numpy as np
import pytest
import torch

from bfn_codec.continuous import ContinuousBFN
from bfn_codec.discrete import DiscreteBFN, sum_zero_basis
from bfn_codec.discretised import DiscretisedBFN, discretised_gaussian_log_probs, discretised_gaussian_probs
from bfn_codec.models import OracleModel

from conftest import draw, random_pi, tiny_network

F64 = torch.float64
FLOWS = [DiscreteBFN(2), DiscreteBFN(5, beta1=3.0), DiscretisedBFN(16, sigma1=math.sqrt(1e-3))]


def test_sum_zero_basis_is_orthonormal():
    for K in (2, 3, 27):
        B = sum_zero_basis(K)
        assert torch.allclose(B.T @ B, torch.eye(K - 1, dtype=F64), atol=1e-12)
        assert torch.allclose(B.sum(0), torch.zeros(K - 1, dtype=F64), atol=1e-12)


def test_schedules_match_the_reference():
    d = DiscreteBFN(2)
    _, betas, alphas = d.schedule(10)
    i = torch.arange(1, 11, dtype=F64)
    assert torch.allclose(alphas, 9.0 * (2 * i - 1) / 100, rtol=1e-12)
    assert float(betas[-1]) == pytest.approx(9.0)
    c = DiscretisedBFN(256, 1e-3)
    _, betas, alphas = c.schedule(25)
    ref = 1e-3 ** (-2 * i.new_tensor(range(1, 26)) / 25) * (1 - 1e-3 ** (2 / 25))
    assert torch.allclose(alphas, ref, rtol=1e-10)
    assert float(betas[-1]) == pytest.approx(1e6 - 1, rel=1e-12)
    assert torch.allclose(alphas.cumsum(0), betas[1:], rtol=1e-10)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f"{f.data_type}{f.K}")
def test_kl_is_zero_for_the_true_one_hot_output(flow):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, flow.K, (50, 7), generator=g)
    log_probs = torch.log(torch.nn.functional.one_hot(x, flow.K).to(F64).clamp_min(1e-300))
    S_prev = flow.sample_stat(x, 2.0, g)
    alpha = 0.7
    S_i = S_prev + flow.sender_mean(x, alpha) + flow.stat_std(alpha) * torch.randn(S_prev.shape, dtype=F64, generator=g)
    kl = flow.sender_log_density(S_i, S_prev, alpha, x) - flow.receiver_log_density(S_i, S_prev, alpha, log_probs)
    assert float(kl.abs().max()) < 1e-9
    # and strictly positive for a wrong output
    wrong = torch.log(torch.full_like(log_probs, 1.0 / flow.K))
    kl_wrong = flow.sender_log_density(S_i, S_prev, alpha, x) - flow.receiver_log_density(S_i, S_prev, alpha, wrong)
    assert float(kl_wrong.mean()) > 0.01


def test_repeated_discrete_updates_equal_softmax_of_the_statistic():
    K, D = 4, 6
    flow = DiscreteBFN(K, beta1=3.0)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, K, (D,), generator=g)
    theta = torch.full((D, K), 1.0 / K, dtype=F64)
    y_sum = torch.zeros(D, K, dtype=F64)
    for alpha in [0.1, 0.4, 0.9, 1.6]:
        # the paper's sender in K dimensions: y ~ N(alpha (K e_x - 1), alpha K I)
        mean = alpha * (K * torch.nn.functional.one_hot(x, K).to(F64) - 1)
        y = mean + math.sqrt(alpha * K) * torch.randn(D, K, dtype=F64, generator=g)
        theta = theta * torch.exp(y)
        theta = theta / theta.sum(-1, keepdim=True)  # h(theta, y, alpha)
        y_sum += y
    S = y_sum @ flow.basis  # coordinates of the sum-zero projection
    assert torch.allclose(flow.theta(S), theta, atol=1e-12)


def test_repeated_gaussian_updates_equal_the_function_of_S():
    flow = DiscretisedBFN(256, 1e-3)
    g = torch.Generator().manual_seed(2)
    x = torch.rand(5, dtype=F64, generator=g) * 2 - 1
    mu, rho, S = torch.zeros(5, dtype=F64), 1.0, torch.zeros(5, dtype=F64)
    times, betas, alphas = flow.schedule(8)
    for i, alpha in enumerate(alphas.tolist(), start=1):
        y = x + torch.randn(5, dtype=F64, generator=g) / math.sqrt(alpha)
        mu = (rho * mu + alpha * y) / (rho + alpha)
        rho = rho + alpha
        S = S + alpha * y
        assert rho == pytest.approx(1 + float(betas[i]), rel=1e-10)
        assert torch.allclose(flow.mean_from_stat(S.unsqueeze(-1), times[i])[..., 0], mu, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f"{f.data_type}{f.K}")
def test_bridge_mean_and_variance_by_monte_carlo(flow):
    g = torch.Generator().manual_seed(3)
    n, i = 10, 6
    _, betas, alphas = flow.schedule(n)
    N = 200_000
    x = torch.randint(0, flow.K, (N, 1), generator=g)
    S_prev = flow.sample_stat(x, betas[i - 1], g)
    S_i = S_prev + flow.sender_mean(x, alphas[i - 1]) + flow.stat_std(alphas[i - 1]) * torch.randn(S_prev.shape, dtype=F64, generator=g)
    mean, std = flow.bridge(S_i, betas[i - 1], betas[i])
    resid = S_prev - mean
    # unbiased and uncorrelated with x (the bridge does not depend on x), right variance
    assert float(resid.mean().abs()) < 5 * float(std[0, 0, 0]) / math.sqrt(N) * math.sqrt(flow.stat_dim)
    for k in range(flow.K):
        sel = resid[x[:, 0] == k]
        assert float(sel.mean().abs()) < 6 * float(std[0, 0, 0]) / math.sqrt(len(sel))
    assert float(resid.var() / std[0, 0, 0] ** 2) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f"{f.data_type}{f.K}")
@pytest.mark.parametrize("n", [1, 4, 20])
def test_oracle_loss_equals_the_source_entropy(flow, n):
    """For independent variables with marginals pi and the Bayes-optimal output, L^n + L^r is
    -log pi(x) for every n (docs/design.md §13); checked within 4 standard errors."""
    D, N = 12, 3000
    pi = random_pi(D, flow.K, seed=n)
    model = OracleModel(flow, pi)
    x = torch.from_numpy(draw(pi, N, seed=n + 10).astype(np.int64))
    g = torch.Generator().manual_seed(n)
    total = flow.n_step_loss(model, x, n, generator=g) + flow.reconstruction_loss(model, x, generator=g)
    ideal = -model.log_pi.gather(1, x.T).T.sum(-1)
    diff = total - ideal
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(N) + 1e-3


def test_oracle_all_steps_sum_is_exact_per_item():
    """Summing every step (one trajectory per step) gives -log pi(x) in expectation with far
    smaller variance than the one-step estimator."""
    flow = DiscreteBFN(2)
    pi = random_pi(10, 2, seed=5)
    model = OracleModel(flow, pi)
    x = torch.from_numpy(draw(pi, 2000, seed=6).astype(np.int64))
    g = torch.Generator().manual_seed(0)
    total = flow.n_step_loss(model, x, 8, all_steps=True, generator=g) + flow.reconstruction_loss(model, x, generator=g)
    diff = total + model.log_pi.gather(1, x.T).T.sum(-1)
    assert abs(float(diff.mean())) < 4 * float(diff.std()) / math.sqrt(len(diff)) + 1e-3


def test_continuous_closed_forms_for_a_gaussian_source():
    """x ~ N(0, 1) i.i.d. and x_hat = mu (the exact posterior mean): E[L^n] = sum_i alpha_i /
    (2 rho_{i-1}) and L^inf = -ln sigma_1 per variable."""
    flow = ContinuousBFN(sigma1=0.02)

    class PosteriorMean:
        def point_estimate(self, S, t):
            return flow.mean_from_stat(S, t)[..., 0]

    D, N, n = 8, 20000, 6
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, dtype=F64, generator=g)
    _, betas, alphas = flow.schedule(n)
    expected = float((alphas / (2 * (1 + betas[:-1]))).sum()) * D
    ln = flow.n_step_loss(PosteriorMean(), x, n, generator=g)
    assert float(ln.mean()) == pytest.approx(expected, abs=4 * float(ln.std()) / math.sqrt(N))
    linf = flow.infinity_loss_mc(PosteriorMean(), x, generator=g)
    assert float(linf.mean()) == pytest.approx(-math.log(0.02) * D, abs=4 * float(linf.std()) / math.sqrt(N))


def test_discretised_output_is_normalised_with_open_edges():
    mu = torch.tensor([0.0, 0.999, -3.0, 5.0, 0.3], dtype=F64)
    sigma = torch.tensor([1.0, 1e-3, 0.01, 0.5, 1e-3], dtype=F64)
    lp = discretised_gaussian_log_probs(mu, sigma, 256)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(5, dtype=F64), atol=1e-12)
    assert int(lp[2].argmax()) == 0 and int(lp[3].argmax()) == 255  # edge bins absorb the tails
    assert torch.isfinite(lp).all()


def test_discretised_tails_are_accurate_far_from_the_mean():
    # a bin 12 and 30 standard deviations away: Phi(-11.5) - Phi(-12.5) etc., in closed form by
    # erfc; torch.special.ndtr returned 0 there (the old table floored these bins at 1e-300)
    K = 256
    width = 2.0 / K
    mu = torch.tensor([0.0, 0.0], dtype=F64)
    sigma = torch.tensor([width, width], dtype=F64)
    probs = discretised_gaussian_probs(mu, sigma, K)
    centre = K // 2  # the bin [0, width) holds the mean 0 on its lower edge
    for k in (centre + 12, centre + 30, centre - 13, centre - 31):
        lo, hi = -1.0 + k * width, -1.0 + (k + 1) * width
        exact = 0.5 * abs(math.erfc(abs(hi) / width / math.sqrt(2)) - math.erfc(abs(lo) / width / math.sqrt(2)))
        assert float(probs[0, k]) == pytest.approx(exact, rel=1e-9)
        assert exact > 1e-300


def test_discretised_table_is_the_same_with_and_without_gradients():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(7, 50, dtype=F64, generator=g) * 0.7
    sigma = torch.rand(7, 50, dtype=F64, generator=g) * 0.2 + 1e-3
    plain = discretised_gaussian_probs(mu, sigma, 256)
    tracked = discretised_gaussian_probs(mu.clone().requires_grad_(), sigma.clone().requires_grad_(), 256)
    assert torch.equal(plain, tracked.detach())


@pytest.mark.slow
def test_n_step_loss_approaches_the_continuous_time_loss():
    """For a fixed (random, small) network, L^n converges to L^inf as n grows: far apart at
    n = 1, within Monte-Carlo error at n = 256."""
    flow = DiscreteBFN(2)
    model = tiny_network(flow, scale=0.5)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (1000, 16), generator=g)
    with torch.inference_mode():
        li = torch.stack([flow.infinity_loss_mc(model, x, generator=g) for _ in range(20)]).mean(0)
        stats = {}
        for n in (1, 256):
            d = flow.n_step_loss(model, x, n, all_steps=True, generator=g) - li
            stats[n] = (abs(float(d.mean())), float(d.std()) / math.sqrt(len(d)))
    assert stats[1][0] > 4 * stats[1][1]
    assert stats[256][0] < 4 * stats[256][1]
    assert stats[256][0] < 0.2 * stats[1][0]


def test_sequence_transformer_model_for_text_like_data():
    """K = 27 (text8-like) with the bidirectional transformer: shapes, a finite L^inf with
    gradients, and L^n + L^r evaluation through the same model interface."""
    from bfn_codec.models import NetworkModel

    flow = DiscreteBFN(27)
    assert flow.beta1 == pytest.approx(0.5625)
    model = NetworkModel.create(flow, (32,), {"kind": "transformer", "max_len": 32, "dim": 32,
                                              "layers": 2, "heads": 2})
    x = torch.randint(0, 27, (4, 32))
    loss = flow.infinity_loss_mc(model, x).mean()
    loss.backward()
    assert torch.isfinite(loss) and model.net.embed.weight.grad is not None
    S = flow.sample_stat(x, 0.3)
    assert model.output_probs(S, 0.5).shape == (4, 32, 27)
    with torch.inference_mode():
        total = flow.n_step_loss(model, x, 5, samples=2) + flow.reconstruction_loss(model, x)
    assert torch.isfinite(total).all() and (total > 0).all()


def test_multichannel_unet_model():
    """3-channel 8x8 images: one output table per channel and pixel, and a round trip through
    the coder with the same model."""
    import bfn_codec
    from bfn_codec.models import NetworkModel

    flow = DiscretisedBFN(16, sigma1=math.sqrt(1e-3))
    model = NetworkModel.create(flow, (3, 8, 8), {"kind": "unet", "channels": 8, "channel_mult": [1, 1],
                                                  "num_res_blocks": 1, "unshuffle": 2})
    with torch.no_grad():
        model.net.conv_out.weight.normal_(0, 0.1)
    S = flow.sample_stat(torch.randint(0, 16, (2, 192)), 5.0)
    assert model.output_probs(S, 0.3).shape == (2, 192, 16)
    x = np.random.default_rng(0).integers(0, 16, (6, 3, 8, 8)).astype(np.uint8)
    blob = bfn_codec.compress(x, model=model, steps=4, mode="bfn")
    assert np.array_equal(bfn_codec.decompress(blob, model=model), x)


@pytest.mark.parametrize("flow", [DiscreteBFN(K=2), DiscreteBFN(K=5), DiscretisedBFN(K=16), ContinuousBFN()],
                         ids=["binary", "K5", "discretised", "continuous"])
def test_training_losses_run_where_the_data_is(flow):
    """Training on a GPU runs the losses' float64 arithmetic there, beside the network: every
    tensor a loss makes must follow x's device. The meta device (shapes only) stands in for a
    GPU in CI: any tensor left on the CPU (a schedule, a table, the time features, the noise)
    fails with a device error, as it would on CUDA."""
    from bfn_codec.chain import power_times

    model = tiny_network(flow, (1, 8, 8))
    model.net.to("meta")
    x = torch.zeros((3, 64), dtype=torch.int64 if flow.data_type != "continuous" else torch.float64,
                    device="meta")
    losses = [flow.infinity_loss_mc(model, x), flow.reconstruction_loss(model, x),
              flow.n_step_loss(model, x, 4, times=power_times(4, 2.0), samples=1),
              flow.n_step_loss(model, x, 2, samples=1, all_steps=True)]
    assert all(loss.device.type == "meta" and loss.shape == (3,) for loss in losses)
