"""Training with the continuous-time loss L^inf (as the official code does; docs/design.md §2).

AdamW, gradient-norm clipping at 5, an exponential moving average (EMA) of the weights (the EMA
weights are what gets saved as ``model.safetensors`` and used for coding), periodic validation
L^inf in bits/dim, checkpoints that can be resumed. Nothing is pickled: the optimiser state is
stored as tensors in ``train_state.safetensors`` and the counters in ``config.json``.

Data-parallel training: under ``torchrun`` (WORLD_SIZE > 1 in the environment) the same command
trains with DistributedDataParallel, gloo on the CPU and NCCL on CUDA (docs/training.md). Every
rank draws the randomness of the whole global batch (its items, times and noise) from the same
seeded generators, and evaluates the network on its own rows only (``RankRows``), so a run on W
processes is the computation of a single-process run with the same global batch, split W ways:
the same data, the same losses up to the summation order of the gradient all-reduce.

    python -m bfn_codec train ...                                   (= bfn-codec train ...)
    torchrun --nproc_per_node 4 -m bfn_codec train --device cuda ...
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .chain import power_times
from .data import Dataset
from .models import NetworkModel, _time_vector, load_model, make_flow, write_json_atomic
from .progress import Progress

DEFAULT_NETWORK = {"kind": "unet", "channels": 64, "channel_mult": [1, 1], "num_res_blocks": 1,
                   "unshuffle": 2, "attention": False, "dropout": 0.0}


def default_flow_config(data: Dataset) -> dict:
    if data.data_type == "discrete":
        return {"data_type": "discrete", "K": data.K}  # beta(1): DiscreteBFN's default
    return {"data_type": "discretised", "K": data.K, "sigma1": 1e-3}


@dataclass
class Distributed:
    """Where this process stands in a torchrun job (rank 0 of 1 without one)."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False  # the process group was started here (and is ended here)

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_from_env(device: str) -> Distributed:
    """torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) -> an initialised process group:
    NCCL for CUDA, gloo for the CPU. No torchrun (or WORLD_SIZE 1): a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")),
                       dist.get_backend(), owns)


class RankRows:
    """The model as one rank of a data-parallel run sees it: the losses run on the whole global
    batch (so they draw the same random numbers whatever the number of ranks), but the network
    only on rows rank, rank + W, ...; the other rows get zeros, carry no gradient, and are
    dropped from this rank's loss (``rows``). Implements what the losses call: ``log_probs``
    and ``point_estimate``."""

    def __init__(self, model, rank: int, world: int):
        self.model, self.flow = model, model.flow
        self.rows = slice(rank, None, world)

    def _on_rows(self, fn, S: torch.Tensor, t) -> torch.Tensor:
        t = _time_vector(t, S.shape[0])
        part = fn(S[self.rows], t[self.rows])
        out = part.new_zeros((S.shape[0],) + tuple(part.shape[1:]))
        out[self.rows] = part
        return out

    def log_probs(self, S: torch.Tensor, t) -> torch.Tensor:
        return self._on_rows(self.model.log_probs, S, t)

    def point_estimate(self, S: torch.Tensor, t) -> torch.Tensor:
        return self._on_rows(self.model.point_estimate, S, t)


def weights_digest(state: dict) -> str:
    """SHA-256 of a state dict's tensors (names and bytes, in name order): equal on every rank of
    a data-parallel run, or the ranks have diverged."""
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _flat(batch: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(batch.reshape(batch.shape[0], -1).astype(np.int64))


def training_loss(model, x: torch.Tensor, loss_steps: int | None, generator,
                  grid_power: float = 1.0) -> torch.Tensor:
    """Per-item loss in nats: L^inf (one random t), or with ``loss_steps`` = n the discrete-time
    loss the codec pays, L^n + L^r (one random step of the n-step grid t_i = (i/n)^grid_power,
    scaled by n, one message sample; docs/design.md §2). Fine-tuning with L^n for the n (and
    grid) the codec uses is one of the paper's open questions (docs/design.md §14)."""
    flow = model.flow
    if loss_steps is None:
        return flow.infinity_loss_mc(model, x, generator=generator)
    times = power_times(loss_steps, grid_power)
    return (flow.n_step_loss(model, x, loss_steps, times=times, samples=1, generator=generator)
            + flow.reconstruction_loss(model, x, generator=generator))


def validation_loss(model, data: Dataset, n_items: int = 500, repeats: int = 4,
                    batch_size: int = 250, seed: int = 0, loss_steps: int | None = None,
                    grid_power: float = 1.0, device: str = "cpu") -> tuple[float, float]:
    """Mean validation loss in bits/dim on the first ``n_items`` items (L^inf, or L^n + L^r
    with ``loss_steps``) and its standard error, computed on ``device`` (the model's)."""
    g = torch.Generator(device=device).manual_seed(seed)
    items = data.images[:n_items]
    per_item = []
    with torch.inference_mode():
        for _ in range(repeats):
            for s in range(0, len(items), batch_size):
                x = _flat(items[s:s + batch_size]).to(device)
                per_item.append(training_loss(model, x, loss_steps, g, grid_power) / x.shape[1])
    v = torch.cat(per_item).cpu() / math.log(2.0)
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def _save_train_state(path: Path, net, opt) -> None:
    from safetensors.torch import save_file

    tensors = {f"net.{k}": v.detach().contiguous() for k, v in net.state_dict().items()}
    for i, p in enumerate(net.parameters()):
        st = opt.state.get(p, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                tensors[f"opt.{i}.{key}"] = st[key].contiguous()
        if "step" in st:
            tensors[f"opt.{i}.step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(path)


def _load_train_state(path: Path, net, opt) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
    for i, p in enumerate(net.parameters()):
        if f"opt.{i}.exp_avg" in tensors:
            opt.state[p] = {"exp_avg": tensors[f"opt.{i}.exp_avg"],
                            "exp_avg_sq": tensors[f"opt.{i}.exp_avg_sq"],
                            "step": tensors[f"opt.{i}.step"].reshape(())}


def learning_rate(step: int, lr: float, schedule: dict | None = None) -> float:
    """The learning rate of optimiser step ``step`` (1-based, counted over the whole training, so
    a resumed run does not warm up again): a short linear warm-up over steps 1-200, then ``lr``, or with ``schedule`` a half-cosine anneal
    lr_final + (lr - lr_final) (1 + cos(pi u)) / 2, u = (step - from_step) / (to_step - from_step),
    which starts at ``lr`` and reaches ``lr_final`` on the last step."""
    warm = min(1.0, step / 200.0)
    if schedule is None:
        return lr * warm
    span = max(1, schedule["to_step"] - schedule["from_step"])
    u = min(1.0, max(0.0, (step - schedule["from_step"]) / span))
    final = schedule["lr_final"]
    return warm * (final + (lr - final) * 0.5 * (1.0 + math.cos(math.pi * u)))


def train(train_data: Dataset, val_data: Dataset, out_dir, steps: int = 1000,
          batch_size: int = 64, lr: float = 2e-4, seed: int = 0, resume: bool = False,
          network: dict | None = None, flow_config: dict | None = None, ema_decay: float = 0.999,
          validate_every: int = 500, checkpoint_every: int = 200, device: str = "cpu",
          command: str = "", name: str | None = None, progress: bool = True, log=print,
          loss_steps: int | None = None, grid_power: float = 1.0, lr_final: float | None = None,
          amp: str | None = None, compile: bool = False, max_minutes: float | None = None):
    """Train (or resume) a model in ``out_dir`` until ``steps`` optimiser steps have been done,
    with L^inf, or with L^n + L^r for n = ``loss_steps`` (fine-tuning for the codec's n).

    With ``lr_final`` the learning rate anneals from ``lr`` to ``lr_final`` on a half cosine
    between the step this command started from and ``steps`` (see :func:`learning_rate`).

    Under torchrun the run is data-parallel (module docstring): ``batch_size`` is the global
    batch, split evenly over the ranks; rank 0 alone validates, logs and writes checkpoints.
    ``amp="bf16"`` runs the network under bfloat16 autocast (the BFN's float64 losses and the
    optimiser stay in full precision); ``compile`` wraps the network in torch.compile.
    ``max_minutes``: stop after this much wall-clock time (with a checkpoint), even before ``steps``."""
    if amp not in (None, "bf16"):
        raise ValueError(f"amp must be None or 'bf16', not {amp!r}")
    dist_ctx = distributed_from_env(device)
    if dist_ctx.world > 1 and batch_size % dist_ctx.world:
        raise ValueError(f"the global batch of {batch_size} does not split evenly over {dist_ctx.world} ranks")
    if dist_ctx.world > 1 and device.startswith("cuda"):
        device = f"cuda:{dist_ctx.local_rank}"
        torch.cuda.set_device(device)
    if not dist_ctx.main:
        progress, log = False, (lambda m: None)
    out_dir = Path(out_dir)
    if dist_ctx.main:
        out_dir.mkdir(parents=True, exist_ok=True)
    state_path = out_dir / "train_state.safetensors"
    torch.manual_seed(seed)
    if resume and (out_dir / "model.safetensors").is_file():
        # Full resume with train_state.safetensors; from weights alone (e.g. a bundled model
        # copied into out_dir) the EMA weights seed both the network and the EMA, and the
        # optimiser starts afresh.
        model = load_model(out_dir, device=device)
        train_info = model.info.get("training", {})
        train_info.setdefault("history", [])
        start = int(train_info.get("step", 0))
        ema_state = {k: v.clone() for k, v in model.net.state_dict().items()}
        if not state_path.is_file():
            log(f"no optimiser state in {out_dir}: continuing from the saved weights at step {start}")
    else:
        if resume:
            log(f"no checkpoint in {out_dir}; starting a new run")
        flow = make_flow(flow_config or default_flow_config(train_data))
        net_cfg = dict(network or DEFAULT_NETWORK)
        model = NetworkModel.create(flow, train_data.images.shape[1:], net_cfg,
                                    name or out_dir.name)
        model.net.to(device)
        train_info = {"step": 0, "history": []}
        start = 0
        ema_state = None
    net = model.net
    flow = model.flow
    if flow.data_type != train_data.data_type or flow.K != train_data.K:
        raise ValueError(f"model is {flow.data_type} K={flow.K} but data is "
                         f"{train_data.data_type} K={train_data.K}")
    opt = torch.optim.AdamW(net.parameters(), lr=lr, betas=(0.9, 0.98), weight_decay=0.01)
    if resume and state_path.is_file():
        _load_train_state(state_path, net, opt)
    if ema_state is None:
        ema_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    D = math.prod(train_data.images.shape[1:])
    rng = np.random.default_rng(seed + 1000003 * start)
    # the losses' float64 arithmetic runs where the network does (on a GPU its own generator
    # draws the times and the noise; the CPU's draws are unchanged)
    g = torch.Generator(device=device).manual_seed(seed + 7 * start)
    same_command = train_info.get("command") == command
    if train_info.get("command") and not same_command:
        # a resumed run with other settings (e.g. L^n fine-tuning after L^inf): keep the record
        train_info.setdefault("earlier_commands", []).append(
            {"command": train_info["command"], "until_step": start})
    schedule = None
    if lr_final is not None:
        # an interrupted annealing run resumed with the same command keeps its original start
        old = train_info.get("lr_schedule") if same_command else None
        schedule = {"kind": "cosine", "lr": lr, "lr_final": lr_final,
                    "from_step": old["from_step"] if old else start, "to_step": steps}
    train_info.pop("lr_schedule", None)
    if schedule is not None:
        train_info["lr_schedule"] = schedule
    if loss_steps is not None:
        train_info["loss"] = {"steps": loss_steps, "grid_power": grid_power}
    train_info.update({"seed": seed, "batch_size": batch_size, "lr": lr, "ema_decay": ema_decay,
                       "dataset": train_data.name, "command": command})
    train_info.pop("distributed", None)
    if dist_ctx.world > 1:
        # every rank draws the global batch from `seed` (same items, times, noise); torch's own
        # generator (dropout) is seeded per rank
        train_info["distributed"] = {
            "world_size": dist_ctx.world, "backend": dist_ctx.backend,
            "ranks": [{"rank": r, "batch_seed": seed, "torch_seed": seed + 1 + r, "rows": f"{r}::{dist_ctx.world}"}
                      for r in range(dist_ctx.world)]}
    if amp or compile:
        train_info["precision"] = {"amp": amp, "compile": bool(compile)}
    model.info["training"] = train_info
    model.info.setdefault("num_parameters", model.num_parameters())
    log(f"model: {flow.data_type} K={flow.K}, {model.num_parameters():,} parameters, "
        f"item shape {model.shape}; steps {start} -> {steps}")

    def checkpoint(step):
        train_info["step"] = step
        _save_train_state(state_path, net, opt)
        model.save(out_dir, state_dict=ema_state)

    def ema_model():
        m = NetworkModel.create(flow, model.shape, model.network_config, model.name, model.info)
        m.net.load_state_dict(ema_state)
        m.net.to(device).eval()
        return m

    # the module the losses run through: DDP (gradients all-reduced) and/or torch.compile
    train_net = net
    if dist_ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        torch.manual_seed(seed + 1 + dist_ctx.rank)
        train_net = DistributedDataParallel(net, device_ids=[dist_ctx.local_rank] if device.startswith("cuda") else None)
    if compile:
        train_net = torch.compile(train_net)
    train_model = copy.copy(model)
    train_model.net = train_net
    loss_model = RankRows(train_model, dist_ctx.rank, dist_ctx.world) if dist_ctx.world > 1 else train_model
    rows = slice(dist_ctx.rank, None, dist_ctx.world)
    autocast = (torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16) if amp == "bf16"
                else contextlib.nullcontext())

    running = None
    t0 = time.monotonic()
    deadline = None if max_minutes is None else t0 + 60.0 * max_minutes
    with Progress(steps, "train", start=start, enabled=progress, deadline=deadline) as bar:
        for step in range(start + 1, steps + 1):
            net.train()
            idx = rng.integers(0, len(train_data.images), batch_size)
            x = _flat(train_data.images[idx]).to(device)
            with autocast:
                per_item = training_loss(loss_model, x, loss_steps, g, grid_power)
            loss = per_item[rows].mean() / D  # nats per dim; DDP averages the ranks' gradients
            for group in opt.param_groups:
                group["lr"] = learning_rate(step, lr, schedule)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            decay = min(ema_decay, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                for k, v in net.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema_state[k].mul_(decay).add_(v.detach(), alpha=1.0 - decay)
                    else:
                        ema_state[k].copy_(v)
            value = loss.detach()
            if dist_ctx.world > 1:  # the global batch's loss, as a single process reports it
                import torch.distributed as dist

                dist.all_reduce(value)
                value = value / dist_ctx.world
            bits = value.item() / math.log(2.0)
            running = bits if running is None else 0.98 * running + 0.02 * bits
            bar.update(1, f"loss {running:.4f} bits/dim")
            if not dist_ctx.main:
                if max_minutes is not None and _out_of_time(t0, max_minutes, dist_ctx):
                    steps = step
                    break
                continue
            if step % validate_every == 0 or step == steps:
                val, se = validation_loss(ema_model(), val_data, loss_steps=loss_steps,
                                          grid_power=grid_power, device=device)
                metric = "L^inf" if loss_steps is None else f"L^{loss_steps}+L^r"
                if loss_steps is not None and grid_power != 1.0:
                    metric += f" (grid p={grid_power:g})"
                train_info["history"].append({"step": step, "val_bits_per_dim": val, "se": se,
                                              "metric": metric, "train_bits_per_dim": running,
                                              "elapsed_s": time.monotonic() - t0})
                key = ("best_val_bits_per_dim" if loss_steps is None else
                       f"best_val_L{loss_steps}_bits_per_dim" + ("" if grid_power == 1.0 else f"_p{grid_power:g}"))
                if train_info.get(key) is None or val < train_info[key]:
                    train_info[key] = val
                log(f"\nstep {step}: validation {metric} {val:.4f} ± {se:.4f} bits/dim (EMA weights)")
            if step % checkpoint_every == 0 or step == steps:
                checkpoint(step)
            if max_minutes is not None and _out_of_time(t0, max_minutes, dist_ctx):
                if step % checkpoint_every and step != steps:
                    checkpoint(step)
                log(f"\nstopped at step {step}: the time budget of {max_minutes:g} minutes is spent")
                steps = step
                break
    if dist_ctx.world > 1:
        _check_ranks_agree(dist_ctx, net, ema_state, train_info, checkpoint if steps > start else None, steps)
    if start >= steps:
        log(f"already trained for {start} steps; nothing to do")
    return model, out_dir


def _out_of_time(t0: float, max_minutes: float, dist_ctx: Distributed) -> bool:
    """Whether the time budget is spent; every rank gets rank 0's answer, so all stop together."""
    spent = torch.tensor([float(time.monotonic() - t0 > 60.0 * max_minutes)])
    if dist_ctx.world > 1:
        import torch.distributed as dist

        dist.broadcast(spent, src=0)
    return bool(spent.item())


def _check_ranks_agree(dist_ctx, net, ema_state, train_info, checkpoint, steps: int):
    """Gather every rank's weights digest at the end; rank 0 records them with the checkpoint and
    every rank stops with an error if they differ (a data-parallel run whose ranks diverged)."""
    import torch.distributed as dist

    digests = [None] * dist_ctx.world
    dist.all_gather_object(digests, {"net": weights_digest(net.state_dict()), "ema": weights_digest(ema_state)})
    if dist_ctx.main:
        for r, d in enumerate(digests):
            train_info["distributed"]["ranks"][r]["weights_sha256"] = d["net"]
        if checkpoint is not None:
            checkpoint(steps)
    dist.barrier()
    if dist_ctx.owns_group:
        dist.destroy_process_group()
    if any(d != digests[0] for d in digests):
        raise RuntimeError(f"ranks ended with different weights: {[d['net'][:12] for d in digests]}")

