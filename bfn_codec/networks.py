"""Networks Psi(theta, t): map the (mapped) input parameters and the time to output parameters.

They know nothing of BFN math: inputs are [B, C_in, H, W] images (or [B, L, C_in] sequences) of
per-variable features produced by the data type's ``net_input``, outputs are the per-variable
parameters its ``output_log_probs`` consumes. Time enters through a sinusoidal embedding of
1000 t followed by an MLP (as in the official configs).

* ``UNet``: a compact U-Net. On 2 CPU cores the network cost decides the codec's speed (it runs
  n + 1 times per item per side), so it first folds 2x2 pixel blocks into channels
  (pixel-unshuffle, docs/design.md §14: ~4x faster than a full-resolution trunk of the same width).
* ``SequenceTransformer``: a small bidirectional transformer for 1-D sequences (text).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of 1000 t: [B] -> [B, dim]."""
    half = dim // 2
    # computed on the CPU, then moved: the same frequencies on every device
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half).to(t.device)
    args = 1000.0 * t.float().unsqueeze(-1) * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class TimeEmbedding(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.SiLU(), nn.Linear(4 * dim, 4 * dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(time_features(t, self.dim))


def _groups(channels: int) -> int:
    for g in (32, 16, 8, 4, 2, 1):
        if channels % g == 0:
            return g
    return 1


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, plus the time embedding as a per-channel shift, twice, residual."""

    def __init__(self, c_in: int, c_out: int, t_dim: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(F.silu(temb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return h + self.skip(x)


class Attention(nn.Module):
    """Single-head self-attention over spatial positions (used at the lowest resolution)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return x + self.out(h.transpose(1, 2).reshape(B, C, H, W))


class UNet(nn.Module):
    """Compact U-Net: [B, in_channels, H, W], t [B] -> [B, out_channels, H, W]."""

    def __init__(self, in_channels: int, out_channels: int, channels: int = 64,
                 channel_mult=(1, 2), num_res_blocks: int = 1, unshuffle: int = 2,
                 attention: bool = True, dropout: float = 0.0):
        super().__init__()
        self.unshuffle = unshuffle
        self.levels = len(channel_mult)
        t_dim = 4 * channels
        self.time = TimeEmbedding(channels)
        self.conv_in = nn.Conv2d(in_channels * unshuffle**2, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [channels]
        c = channels
        for level, mult in enumerate(channel_mult):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(c, channels * mult, t_dim, dropout))
                c = channels * mult
                skips.append(c)
            if level < self.levels - 1:
                self.down.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
                skips.append(c)
        self.mid1 = ResBlock(c, c, t_dim, dropout)
        self.mid_attn = Attention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, t_dim, dropout)
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), channels * mult, t_dim, dropout))
                c = channels * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        self.norm_out = nn.GroupNorm(_groups(c), c)
        self.conv_out = nn.Conv2d(c, out_channels * unshuffle**2, 3, padding=1)
        # Zero output at initialisation: the data types then start at their closed-form
        # prior-free estimate (discrete: theta itself; discretised: mu / gamma).
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def required_multiple(self) -> int:
        return self.unshuffle * 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        m = self.required_multiple()
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"image height and width must be multiples of {m}, got {tuple(x.shape[-2:])}")
        temb = self.time(t)
        h = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        h = self.conv_in(h)
        hs = [h]
        for layer in self.down:
            h = layer(h, temb) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, hs.pop()], dim=1), temb)
            else:
                h = layer(h)
        h = self.conv_out(F.silu(self.norm_out(h)))
        return F.pixel_shuffle(h, self.unshuffle) if self.unshuffle > 1 else h


class SequenceTransformer(nn.Module):
    """Bidirectional transformer: [B, L, in_channels], t [B] -> [B, L, out_channels]."""

    def __init__(self, in_channels: int, out_channels: int, max_len: int = 256, dim: int = 128,
                 layers: int = 4, heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.max_len = max_len
        self.embed = nn.Linear(in_channels, dim)
        self.time = TimeEmbedding(dim // 4 if dim >= 8 else dim)
        self.time_proj = nn.Linear(4 * self.time.dim, dim)
        pos = torch.arange(max_len).unsqueeze(1) * torch.exp(
            -math.log(10000.0) * torch.arange(0, dim, 2) / dim)
        table = torch.zeros(max_len, dim)
        table[:, 0::2], table[:, 1::2] = torch.sin(pos), torch.cos(pos[:, : dim // 2])
        self.register_buffer("positions", table, persistent=False)
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True,
                                           norm_first=True, activation="gelu")
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, out_channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        L = x.shape[1]
        if L > self.max_len:
            raise ValueError(f"sequence length {L} exceeds the network's maximum {self.max_len}")
        h = self.embed(x) + self.positions[:L] + self.time_proj(self.time(t)).unsqueeze(1)
        return self.out(self.norm(self.blocks(h)))


def build_network(kind: str, **kwargs) -> nn.Module:
    if kind == "unet":
        return UNet(**kwargs)
    if kind == "transformer":
        return SequenceTransformer(**kwargs)
    raise ValueError(f"unknown network kind {kind!r} (expected 'unet' or 'transformer')")
