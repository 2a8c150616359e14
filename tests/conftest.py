import numpy as np
import pytest
import torch

from bfn_codec.models import NetworkModel, OracleModel, make_flow

torch.set_num_threads(1)


def random_pi(D, K, seed=0, concentration=0.5):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.full(K, concentration), size=D)


def draw(pi, N, seed=1):
    rng = np.random.default_rng(seed)
    cdf = pi.cumsum(1)
    u = rng.random((N, pi.shape[0], 1))
    return (u > cdf[None]).sum(-1).clip(0, pi.shape[1] - 1).astype(np.uint8)


@pytest.fixture
def binary_flow():
    return make_flow({"data_type": "discrete", "K": 2})


def tiny_network(flow, shape=(1, 4, 4), seed=0, scale=0.3):
    """A small U-Net with a non-zero output layer (a fixed, non-trivial model)."""
    torch.manual_seed(seed)
    m = NetworkModel.create(flow, shape, {"kind": "unet", "channels": 8, "channel_mult": [1],
                                          "num_res_blocks": 1, "unshuffle": 2, "attention": False})
    with torch.no_grad():
        m.net.conv_out.weight.normal_(0, scale)
    m.net.eval()
    return m


def oracle(flow, D, seed=0, shape=None):
    return OracleModel(flow, random_pi(D, flow.K, seed), shape or (1, 1, D))


def bundled_with_bits(name: str, weight_bits: int, act_bits: int):
    """The bundled model coding with its integer calibration of these widths (the current one or
    one kept in config.json integer_earlier): a golden file is re-encoded with the calibration
    it was written with, also after the bundled model has moved to another one."""
    from bfn_codec.models import load_model, portable_identity, with_calibration

    model = load_model(name)
    for cal in [model.integer, *model.integer_earlier]:
        if cal and (cal["weight_bits"], cal["act_bits"]) == (weight_bits, act_bits):
            return with_calibration(model, portable_identity(model.weights_sha256, cal))
    raise AssertionError(f"{name} lost its {weight_bits}/{act_bits}-bit calibration")
