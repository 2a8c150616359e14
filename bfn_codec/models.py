"""Models the coder can consume, their checkpoints, and the registry of bundled models.

The interface (what the coder and the losses call):

    model.flow                      the data type (discrete.py / discretised.py / continuous.py)
    model.shape                     the item shape, e.g. (1, 28, 28); D = prod(shape) variables
    model.log_probs(S, t)           S [B, D, c] float64, t float or [B] -> log p_O [B, D, K]
    model.output_probs(S, t)        the same as a float64 numpy table (no gradients)
    model.output_window(S, t, z)    optional: (lo, table on bins lo..lo+W-1), see discretised.py

Two implementations: ``NetworkModel`` (a trained network, float32 inside, one fixed float64
recipe for its outputs) and ``OracleModel`` (the closed-form Bayes-optimal output for a source
of independent variables with known marginals pi; docs/design.md §13).

Experimental, stated here once: the continuous data type (continuous.py) and the sequence
transformer (networks.SequenceTransformer) train and evaluate (their losses are tested), but no
bundled model uses them and the coder codes discrete and discretised data only (compress refuses
continuous data with a clear error). They stay for sequence data (text) and real-valued data.

Checkpoints are a directory with ``model.safetensors`` (weights only; never pickle) and
``config.json`` (data type, schedule, architecture, item shape, training command and seed).
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from . import exactmath
from .chain import F64, BayesianFlow
from .continuous import ContinuousBFN
from .discrete import DiscreteBFN
from .discretised import DiscretisedBFN
from .gaussian import bin_centres
from .networks import build_network
from .zoo import ZOO_DIR, ModelError, available_models, bundled_model_for  # noqa: F401 - the registry's names
from .zoo import calibrations, portable_identity

MODEL_FORMAT = "bfn-codec-model"


def make_flow(config: dict) -> BayesianFlow:
    kind = config.get("data_type")
    if kind == "discrete":
        return DiscreteBFN(K=int(config.get("K", 2)), beta1=config.get("beta1"))
    if kind == "discretised":
        return DiscretisedBFN(K=int(config.get("K", 256)), sigma1=float(config.get("sigma1", 1e-3)))
    if kind == "continuous":
        return ContinuousBFN(sigma1=float(config.get("sigma1", 1e-3)), K=int(config.get("K", 256)))
    raise ModelError(f"unknown data type {kind!r} (expected discrete, discretised or continuous)")


def _time_vector(t, batch: int) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=F64)
    return t.expand(batch) if t.ndim == 0 else t


@runtime_checkable
class CoderModel(Protocol):
    """A model as the coder, the losses and the container consume it; ``NetworkModel`` and
    ``OracleModel`` implement all of it."""

    flow: BayesianFlow
    shape: tuple  # the item shape, e.g. (1, 28, 28)
    D: int  # variables per item: prod(shape)
    name: str
    info: dict  # config.json's info: training record, codec defaults (info.codec)
    weights_sha256: str | None  # hex SHA-256 of the weights file (the file records a prefix)
    trunk_seconds: float  # time spent in the network itself (for the benchmarks' time split)

    def log_probs(self, S: torch.Tensor, t) -> torch.Tensor:
        """log p_O(k | S; t) [B, D, K], float64, with gradients (the losses)."""

    def point_estimate(self, S: torch.Tensor, t) -> torch.Tensor:
        """The flow's point estimate of x [B, D] (continuous and discretised data)."""

    def output_probs(self, S: torch.Tensor, t) -> np.ndarray:
        """p_O(k | S; t) as a float64 table [B, D, K] without gradients: what the coder codes with."""

    def output_window(self, S: torch.Tensor, t, z_max: float):
        """(lo [B, D] or None, probs [B, D, W]): p_O on a window of W outcomes per variable
        starting at lo (lo None: the whole table, W = K)."""


@runtime_checkable
class ExactModel(Protocol):
    """A model as the portable coders (coder revisions 6-8) consume it: every output probability
    from integers and correctly rounded operations, the same on every machine; ``PortableModel``
    (a network's integer twin) and ``OracleModel`` implement it."""

    flow: BayesianFlow
    shape: tuple
    D: int
    name: str
    weights_sha256: str | None
    trunk_seconds: float

    def output_window_exact(self, S: np.ndarray, t: float, z_max: float | None, summary: bool = False):
        """(lo [B, D] or None, p_O [B, D, W] float64) at S [B, D, c] (numpy float64), time t:
        the window of ``CoderModel.output_window`` (z_max None: the whole table). With
        ``summary``, a third element: the rows' portable.KeptSummary, or None."""


class NetworkModel:
    """A trained network behind the model interface (CoderModel)."""

    def __init__(self, flow: BayesianFlow, net: torch.nn.Module, shape, network_config: dict,
                 name: str = "untitled", info: dict | None = None):
        self.flow = flow
        self.net = net
        self.shape = tuple(int(s) for s in shape)
        self.D = math.prod(self.shape)
        self.network_config = dict(network_config)
        self.name = name
        self.info = dict(info or {})
        self.weights_sha256 = None  # set when loaded from / saved to a file
        self.trunk_seconds = 0.0  # time spent in the network itself (benchmarks split by it)
        # the integer twin's calibration (config.json "integer"; ``integer_config``): what
        # portable coding (coder revision 6) needs besides the weights; None: not calibrated.
        # Earlier calibrations stay in "integer_earlier": files written with them still decode
        self.integer: dict | None = None
        self.integer_earlier: list[dict] = []

    @classmethod
    def create(cls, flow: BayesianFlow, shape, network_config: dict, name="untitled", info=None):
        cfg = dict(network_config)
        kind = cfg.pop("kind", "unet")
        channels = shape[0] if len(shape) == 3 else 1
        net = build_network(kind, in_channels=channels * flow.in_channels,
                            out_channels=channels * flow.n_params, **cfg)
        return cls(flow, net, shape, {"kind": kind, **cfg}, name, info)

    # ----- the network call: S -> per-variable output parameters ----------------------------
    def params(self, S: torch.Tensor, t) -> torch.Tensor:
        start = time.perf_counter()
        try:
            return self._params(S, t)
        finally:
            self.trunk_seconds += time.perf_counter() - start

    def _params(self, S: torch.Tensor, t) -> torch.Tensor:
        B = S.shape[0]
        t = _time_vector(t, B)
        feats = self.flow.net_input(S, t).float()  # [B, D, F]
        Fdim = feats.shape[-1]
        # the BFN's float64 math stays where S is (the CPU); only the network runs on its device
        device = next(self.net.parameters()).device
        if len(self.shape) == 3:  # images (C, H, W): channels of every variable side by side
            C, H, W = self.shape
            x = feats.reshape(B, C, H, W, Fdim).permute(0, 1, 4, 2, 3).reshape(B, C * Fdim, H, W)
            out = self.net(x.to(device), t.float().to(device)).to(S.device)
            P = out.shape[1] // C
            return out.reshape(B, C, P, H, W).permute(0, 1, 3, 4, 2).reshape(B, self.D, P)
        x = feats.reshape(B, self.shape[0], Fdim)  # sequences (L,)
        return self.net(x.to(device), t.float().to(device)).to(S.device)

    def log_probs(self, S: torch.Tensor, t) -> torch.Tensor:
        t = _time_vector(t, S.shape[0])
        return self.flow.output_log_probs(self.params(S, t).to(F64), S, t)

    def point_estimate(self, S: torch.Tensor, t) -> torch.Tensor:
        t = _time_vector(t, S.shape[0])
        return self.flow.point_estimate(self.params(S, t), S, t)

    def output_probs(self, S: torch.Tensor, t) -> np.ndarray:
        with torch.inference_mode():
            t = _time_vector(t, S.shape[0])
            return self.flow.output_probs(self.params(S, t).to(F64), S, t).numpy()

    def output_window(self, S: torch.Tensor, t, z_max: float):
        with torch.inference_mode():
            t = _time_vector(t, S.shape[0])
            lo, probs = self.flow.output_window_probs(self.params(S, t).to(F64), S, t, z_max)
            if lo is None or probs.shape[-1] == self.flow.K:
                return None, probs.numpy()
            return lo.numpy(), probs.numpy()

    # ----- persistence -----------------------------------------------------------------------
    def config(self) -> dict:
        from .version import __version__

        cfg = {"format": MODEL_FORMAT, "version": 1, "name": self.name, "code_version": __version__,
               "flow": self.flow.config(), "shape": list(self.shape),
               "network": self.network_config, "info": self.info}
        if self.integer is not None:
            cfg["integer"] = self.integer
        if self.integer_earlier:
            cfg["integer_earlier"] = self.integer_earlier
        return cfg

    def save(self, directory, state_dict=None) -> Path:
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in (state_dict or self.net.state_dict()).items()}
        tmp = directory / "model.safetensors.tmp"
        save_file(state, str(tmp))
        os.replace(tmp, directory / "model.safetensors")
        self.weights_sha256 = sha256_file(directory / "model.safetensors")
        if self.integer and self.integer.get("weights_sha256") != self.weights_sha256:
            self.integer = None  # calibrated for other weights: `bfn-codec calibrate` again
        self.integer_earlier = [c for c in self.integer_earlier if c.get("weights_sha256") == self.weights_sha256]
        cfg = self.config()
        cfg["weights_sha256"] = self.weights_sha256
        write_json_atomic(directory / "config.json", cfg)
        return directory

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.net.parameters())


class PortableModel:
    """A trained network for coder revision 6 (portable.py): its integer twin
    (integer_net.IntegerUNet, defined by the float weights and the ``integer`` section of
    config.json) and the data type's exact arithmetic, so that every output probability is the
    same on every machine. Everything is numpy float64 in and out."""

    def __init__(self, model: NetworkModel, integer_config: dict):
        from .integer_net import IntegerUNet

        self.model = model
        self.flow = model.flow
        self.shape, self.D, self.name = model.shape, model.D, model.name
        self.weights_sha256 = model.weights_sha256
        if len(self.shape) != 3:
            raise ModelError(f"model {model.name}: portable coding covers image models only")
        self.inet = IntegerUNet.from_config(model.net, integer_config)
        self.trunk_seconds = 0.0

    def params_exact(self, S: np.ndarray, t: float) -> np.ndarray:
        """The integer network's outputs per variable [B, D, n_params] at S [B, D, c], time t."""
        B = S.shape[0]
        feats = self.flow.net_input_exact(S, t)
        Fdim = feats.shape[-1]
        C, H, W = self.shape
        x = torch.from_numpy(np.ascontiguousarray(feats)).reshape(B, C, H, W, Fdim).permute(0, 1, 4, 2, 3)
        # the integer network runs on the float network's device (the same integers on every
        # device: integer_net's docstring); the exact arithmetic around it stays on the CPU
        device = next(self.model.net.parameters()).device
        start = time.perf_counter()
        with torch.inference_mode():
            out = self.inet(x.reshape(B, C * Fdim, H, W).to(device), torch.full((B,), float(t), dtype=F64))
            out = out.cpu()
        self.trunk_seconds += time.perf_counter() - start
        P = out.shape[1] // C
        return out.reshape(B, C, P, H, W).permute(0, 1, 3, 4, 2).reshape(B, self.D, P).double().numpy()

    def output_window_exact(self, S: np.ndarray, t: float, z_max: float | None, summary: bool = False):
        """(lo or None, p_O on a window of bins, or the whole table for z_max None[, summary])."""
        return self.flow.output_window_exact(self.params_exact(S, t), S, t, z_max, summary)


def portable_model(model: NetworkModel) -> "PortableModel":
    """The model's portable form, or ModelError if it has no integer calibration for its weights."""
    cal = getattr(model, "integer", None)
    if not isinstance(model, NetworkModel) or not cal or cal.get("weights_sha256") != model.weights_sha256:
        raise ModelError(f"model {model.name} has no integer calibration for its weights, which portable "
                         f"coding needs: run `bfn-codec calibrate MODEL_DIR --dataset DATA` (docs/training.md)")
    return PortableModel(model, cal)


def has_portable_form(model) -> bool:
    return isinstance(model, NetworkModel) and bool(model.integer) and \
        model.integer.get("weights_sha256") == model.weights_sha256


def integer_config(model: NetworkModel, items: np.ndarray, steps: int, times, seed: int = 1,
                   act_bits: int = 12, weight_bits: int = 10) -> dict:
    """Calibrate the integer twin of ``model``'s network: the largest activation magnitudes of
    the float network on the inputs it sees at every step of the codec's time grid, for one
    sample S ~ q(S | x; beta(t_i)) per item and step (``items`` [N, D], training data)."""
    from .integer_net import IntegerUNet

    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(items.reshape(len(items), -1).astype(np.int64))
    times = torch.as_tensor(np.asarray(times, dtype=np.float64))
    inputs = []
    C, H, W = model.shape
    for t in times[:-1].tolist() + [1.0]:
        S = model.flow.sample_stat(x, model.flow.beta(torch.tensor(t, dtype=F64)), g)
        feats = model.flow.net_input(S, torch.full((len(x),), t, dtype=F64)).float()
        Fdim = feats.shape[-1]
        inputs.append((feats.reshape(len(x), C, H, W, Fdim).permute(0, 1, 4, 2, 3).reshape(len(x), C * Fdim, H, W),
                       torch.full((len(x),), t)))
    inet = IntegerUNet.from_float(model.net, inputs, act_bits=act_bits, weight_bits=weight_bits)
    return {**inet.config(), "weights_sha256": model.weights_sha256}


class OracleModel:
    """Bayes-optimal output for independent variables with marginals pi ([D, K] probabilities)."""

    def __init__(self, flow: BayesianFlow, pi, shape=None):
        pi = torch.as_tensor(np.asarray(pi), dtype=F64)
        if pi.ndim != 2 or pi.shape[1] != flow.K:
            raise ValueError(f"pi must be [D, {flow.K}]")
        pi = pi.clamp_min(1e-12)
        self.log_pi = torch.log(pi / pi.sum(-1, keepdim=True))
        self.flow = flow
        self.D = pi.shape[0]
        self.shape = tuple(shape) if shape is not None else (self.D,)
        self.name = "oracle"
        self.info: dict = {}
        self.trunk_seconds = 0.0  # no network
        self.weights_sha256 = hashlib.sha256(self.log_pi.numpy().tobytes()).hexdigest()
        p = pi.numpy()  # the portable form's log pi: normalised and logged by exactmath
        self._log_pi_exact = exactmath.log(p / exactmath.ordered_sum(p)[:, None])

    def log_probs(self, S: torch.Tensor, t) -> torch.Tensor:
        t = _time_vector(t, S.shape[0])
        return self.flow.oracle_log_probs(S, self.flow.beta(t), self.log_pi)

    def point_estimate(self, S: torch.Tensor, t) -> torch.Tensor:
        """Posterior mean of the bin centre (continuous data scored against a binned source)."""
        return (self.log_probs(S, t).exp() * bin_centres(self.flow.K)).sum(-1)

    def output_probs(self, S: torch.Tensor, t) -> np.ndarray:
        return self.log_probs(S, t).exp().numpy()

    def output_window(self, S: torch.Tensor, t, z_max: float):
        return None, self.output_probs(S, t)

    def output_window_exact(self, S: np.ndarray, t: float, z_max=None, summary: bool = False):
        """``log_probs`` in the portable arithmetic, for the portable coders (the oracle has no
        network, so this is the whole model): the logits log pi_k + <S, m_k> / v - beta |m_k|^2 / (2v)
        with each dot product summed in coordinate order, beta from the flow's exact schedule,
        then exactmath.softmax. The whole table (no window)."""
        m = self.flow.component_means.numpy()  # [K, c], the coder's own means
        v = float(self.flow.variance_factor)
        beta = float(self.flow.schedule_exact(np.array([0.0, float(t)]))[0][1])
        dot = np.zeros(S.shape[:-1] + (m.shape[0],))
        sq = np.zeros(m.shape[0])
        for i in range(m.shape[1]):
            dot = dot + S[..., i:i + 1] * m[:, i]
            sq = sq + m[:, i] * m[:, i]
        probs = exactmath.softmax((self._log_pi_exact + dot / v) - beta * (sq / (2.0 * v)))
        return (None, probs, None) if summary else (None, probs)


# ----- files ---------------------------------------------------------------------------------
def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_json_atomic(path, obj) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def load_model(spec, device: str = "cpu") -> NetworkModel:
    """Load a model by bundled name (see ``available_models``) or by checkpoint directory."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(spec)
    if not (path / "config.json").is_file():
        if (ZOO_DIR / str(spec) / "config.json").is_file():
            path = ZOO_DIR / str(spec)
        else:
            names = ", ".join(available_models()) or "none bundled"
            raise ModelError(f"no model {str(spec)!r}: not a checkpoint directory and not a "
                             f"bundled model (available: {names})")
    try:
        cfg = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot read {path / 'config.json'}: {e}") from None
    if cfg.get("format") != MODEL_FORMAT:
        raise ModelError(f"{path / 'config.json'} is not a bfn-codec model config")
    flow = make_flow(cfg["flow"])
    model = NetworkModel.create(flow, cfg["shape"], cfg["network"], cfg.get("name", path.name),
                                cfg.get("info"))
    weights = path / "model.safetensors"
    try:
        state = load_file(str(weights))
        model.net.load_state_dict(state)
    except (OSError, SafetensorError, RuntimeError) as e:
        raise ModelError(f"cannot load weights {weights}: {e}") from None
    model.weights_sha256 = sha256_file(weights)
    model.integer = cfg.get("integer")
    model.integer_earlier = list(cfg.get("integer_earlier") or [])
    model.net.eval().to(device)
    return model


def with_calibration(model: NetworkModel, identity: bytes) -> NetworkModel | None:
    """``model`` coding with whichever of its integer calibrations (the current one or a kept
    earlier one) has the portable identity that starts with ``identity`` (a file's model hash):
    a shallow copy that shares the network. None if no calibration has it."""
    if not identity or not isinstance(model, NetworkModel):
        return None
    for cal in calibrations({"integer": model.integer, "integer_earlier": model.integer_earlier}):
        ident = portable_identity(model.weights_sha256, cal)
        if ident and ident.startswith(identity):
            if cal is model.integer:
                return model
            other = copy.copy(model)
            other.integer = cal
            return other
    return None
