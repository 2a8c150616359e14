"""Loss evaluation: L^n + L^r and L^inf in bits/dim with standard errors (docs/design.md §2)."""
from __future__ import annotations

import math

import numpy as np
import torch

from .progress import Progress

LN2 = math.log(2.0)


def _stats(values: torch.Tensor) -> dict:
    return {"mean": float(values.mean()),
            "stderr": float(values.std() / math.sqrt(len(values))) if len(values) > 1 else float("nan")}


def evaluate_loss(model, items: np.ndarray, steps: int = 100, repeats: int = 1,
                  batch_size: int = 100, all_steps: bool = False, seed: int = 0,
                  times=None, progress: bool = False) -> dict:
    """Per-item estimates of L^n, L^r and L^inf in bits/dim, averaged over items x repeats.

    With ``all_steps`` the sum over the n steps is computed exactly (n network calls per item,
    the cost of coding it); otherwise one random step per item is drawn and scaled by n."""
    flow = model.flow
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(items.reshape(len(items), -1).astype(np.int64))
    D = x_all.shape[1]
    ln, lr, linf = [], [], []
    total = repeats * ((len(items) + batch_size - 1) // batch_size)
    with torch.inference_mode(), Progress(total, "loss", "batch", enabled=progress) as bar:
        for _ in range(repeats):
            for s in range(0, len(items), batch_size):
                x = x_all[s:s + batch_size]
                ln.append(flow.n_step_loss(model, x, steps, times=times, all_steps=all_steps, generator=g))
                lr.append(flow.reconstruction_loss(model, x, generator=g))
                linf.append(flow.infinity_loss_mc(model, x, generator=g))
                bar.update(1)
    ln, lr, linf = (torch.cat(v) / (D * LN2) for v in (ln, lr, linf))
    return {"steps": steps, "items": len(items), "repeats": repeats, "dims": D,
            "all_steps": all_steps,
            "n_step_plus_reconstruction_bits_per_dim": _stats(ln + lr),
            "n_step_bits_per_dim": _stats(ln), "reconstruction_bits_per_dim": _stats(lr),
            "infinity_bits_per_dim": _stats(linf)}


def per_item_total_bits(model, items: np.ndarray, steps: int, batch_size: int = 100,
                        seed: int = 0, times=None, samples: int = 2, progress: bool = False) -> np.ndarray:
    """Estimated L^n + L^r in bits for each item (all n steps evaluated, ``samples`` message
    draws per step): what the coder should pay on average."""
    flow = model.flow
    g = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(items.reshape(len(items), -1).astype(np.int64))
    out = []
    with torch.inference_mode(), Progress(len(items), "loss", "items", enabled=progress) as bar:
        for s in range(0, len(items), batch_size):
            x = x_all[s:s + batch_size]
            nats = flow.n_step_loss(model, x, steps, times=times, samples=samples, all_steps=True,
                                    generator=g)
            nats = nats + flow.reconstruction_loss(model, x, generator=g)
            out.append(nats / LN2)
            bar.update(len(x))
    return torch.cat(out).numpy()
