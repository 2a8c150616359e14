"""Generation (docs/design.md §2) and a PNG grid writer."""
from __future__ import annotations

import numpy as np
import torch

from .chain import F64


def sample(model, count: int, steps: int = 100, generator=None) -> np.ndarray:
    """Draw ``count`` items: for i = 1..n draw x' ~ p_O(. | theta_{i-1}; t_{i-1}), send a
    message y ~ p_S(. | x'; alpha_i) (i.e. y from the receiver), update S; finally take the
    mode of p_O(. | theta_n; 1). Returns outcome indices [count, *shape] (uint8)."""
    flow = model.flow
    times, betas, alphas = flow.schedule(steps)
    S = torch.zeros(count, model.D, flow.stat_dim, dtype=F64)
    with torch.inference_mode():
        for i in range(1, steps + 1):
            probs = model.log_probs(S, times[i - 1]).exp()
            k = torch.multinomial(probs.reshape(-1, flow.K), 1, generator=generator).reshape(count, model.D)
            mean = flow.sender_mean(k, alphas[i - 1])
            S = S + mean + flow.stat_std(alphas[i - 1]) * torch.randn(mean.shape, dtype=F64, generator=generator)
        final = model.log_probs(S, torch.tensor(1.0, dtype=F64)).argmax(-1)
    return final.reshape(count, *model.shape).numpy().astype(np.uint8)


def to_grayscale(items: np.ndarray, K: int) -> np.ndarray:
    """Outcome indices -> 8-bit grey levels (binary 0/1 -> 0/255)."""
    return (items.astype(np.float64) * (255.0 / (K - 1))).round().astype(np.uint8)


def grid(images: np.ndarray, cols: int | None = None, pad: int = 2) -> np.ndarray:
    """[N, H, W] or [N, H, W, C] uint8 -> one [rows*(H+pad)+pad, cols*(W+pad)+pad(, C)] mosaic."""
    n, h, w = images.shape[:3]
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, *images.shape[3:]), 128, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = images[i]
    return out


def write_png(path, image: np.ndarray) -> None:
    """Write a mosaic [H, W] (grey) or [H, W, C] (C = 3: RGB, 4: RGBA, 2: grey + alpha) as a PNG."""
    from .images import MODE_FOR_CHANNELS, write_image

    image = np.ascontiguousarray(image, dtype=np.uint8)
    image = image[..., None] if image.ndim == 2 else image
    with open(path, "wb") as f:
        f.write(write_image(image, MODE_FOR_CHANNELS[image.shape[-1]], "png"))
