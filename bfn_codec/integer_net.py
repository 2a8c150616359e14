"""Integer inference for the U-Net: the network of coder revision 6 (models.PortableModel).

A float network's last bits depend on the kernels that run it (instruction set, thread count,
device), and one changed bit desynchronises the entropy coder. Integers do not: a sum of
integer products is exact in floating point, whatever the order, as long as every partial sum
stays below the mantissa limit (2^24 in float32, 2^53 in float64). So here every activation is
a tensor of integers q with a power-of-two scale (the real value is q * 2^-f), every weight an
integer with a power-of-two scale per output channel, and every step between layers an exact
operation or a correctly rounded one in a fixed order:

* conv: integer weights and activations, the integer bias added, then requantised: multiplied
  by a power of two (exact), rounded to the nearest integer (exact), clamped to the activation
  range. The sums are exact on every kernel path, so the path is a speed choice: on large
  tensors the activations are split into pieces of b bits whose float32 convolutions keep every
  partial sum below 2^24 (b from the largest row sum of |w|: ``_pieces``), recombined in
  float64; on small ones a float64 convolution (partial sums below 2^53);
* GroupNorm: the group's integer sums S1 = sum q and S2 = sum q^2 (exact), then
  (n q - S1) / sqrt(n S2 - S1^2 + eps n^2) with n q - S1 and n S2 - S1^2 exact integers and
  one correctly rounded sqrt, multiply and divide per value, then rounded;
* SiLU: a table of round(silu(q 2^-f) 2^g) over every integer input q (exactmath's exp);
* the time embedding and the blocks' time shifts: exactmath's sin, cos and exp in float64 with
  integer-quantised weights; a function of t alone, cached per distinct t;
* pixel (un)shuffle, nearest upsampling, concatenation and residual sums: integer moves and
  additions after requantising both sides to one scale.

On the CPU the default path (``_FusedOps``) runs the same steps with activations stored in
float32 (integers below 2^24: exact, half the memory traffic of float64), channels-last (NHWC:
oneDNN's float32 convolutions are about 20% faster on it), and each run of elementwise steps
fused into one compiled pass (kernels.py: the split into pieces, the conv epilogue with the sum
after it, GroupNorm with the SiLU table after it, the concatenations), doing the same float64
operations in the same order; a batch of 8 or more items runs as one part per torch thread.
Faster than the torch steps (benchmarks/integer_speed.py), and the same integers
(tests/test_integer_net.py).

The scales come from a calibration pass of the float network (``IntegerUNet.from_float``): each
activation's largest magnitude sets its fractional bits so it fits ``act_bits`` signed bits;
weights get ``weight_bits`` (10 and 12 bits for the bundled models: post-training quantisation
costs them under 0.02% of rate). Narrower integers (8-bit weights, 9-bit activations: one
float32 call per convolution under the row-sum bound) would need the quantisation-aware
fine-tuning that ``FakeQuantUNet`` provides, and a new model identity.
"""
from __future__ import annotations


import threading

import numpy as np
import torch
import torch.nn.functional as F

from . import exactmath
from .networks import ResBlock, UNet

F64 = torch.float64


def _round(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x)  # half to even: an exact operation


def _pow2(k) -> torch.Tensor:
    """2^k for integer k (tensor or int), exactly (ldexp, not a pow function)."""
    k = np.asarray(k.numpy() if torch.is_tensor(k) else k, dtype=np.int64)
    return torch.from_numpy(np.asarray(np.ldexp(1.0, k), dtype=np.float64))


ITEMS_PER_PASS = 32  # a larger batch runs in chunks of this many items (``IntegerUNet.forward``)
PART_MIN_ITEMS = 4  # the fused path cuts a batch into parts of at least this many items
TIME_CACHE_ENTRIES = 4096  # distinct time sets kept (a file uses n + 1 <= 1001 of them)
SPLIT_MIN_VALUES = 1 << 15  # "auto" kernel: split 3x3 convolutions from this many input values
FLOAT32_EXACT = 2.0 ** 24  # float32 holds every integer below this; float64: 2^53
ONE_PIECE_ENERGY = 1 << 48  # (2^24)^2: the fused path's bound for one float32 piece (conv_fused)


def _piece_bits(weight_bits: int, fan_in: int) -> int:
    """Bits per activation piece for float32 kernels: |w| < 2^(wb-1) times |piece| < 2^b summed
    over fan_in inputs stays <= 2^24, so every partial sum is an exact float32 integer."""
    return int(_floor_log2(FLOAT32_EXACT / (2.0 ** (weight_bits - 1) * fan_in)))


def _split_conv(q, w32, piece_bits: int, pieces: int, stride, padding) -> torch.Tensor:
    """conv2d of an integer tensor q with integer float32 weights as ``pieces`` float32
    convolutions in one call: q = sum_j p_j 2^(b j) with the low pieces in [0, 2^b) and the top
    one signed (floor division by 2^b: exact), stacked along the batch. The caller has checked
    that every partial sum of every piece stays below 2^24 (``_pieces``), so each float32 sum is
    the exact integer whatever the order or FMA use; the pieces recombine in float64 (exact)."""
    if q.device.type == "cuda" and torch.backends.cudnn.allow_tf32:
        raise ValueError("float32 pieces on CUDA need torch.backends.cudnn.allow_tf32 = False "
                         "(TF32 keeps 10 mantissa bits); the default kernel there is float64")
    if q.device.type == "cpu" and not _cpu_float32_exact():
        raise ValueError("float32 pieces need float32 convolutions: torch.backends.mkldnn's "
                         "fp32_precision is set lower")
    B = q.shape[0]
    unit = float(2 ** piece_bits)
    stacked = _piece_stack(q, piece_bits, pieces)
    # each piece's sums are integers; rounding removes a transform algorithm's (Winograd, FFT)
    # small error, though near 2^24 float32 leaves little margin for one: there the tests'
    # cross-kernel and cross-ISA checks show that the CPU's kernels sum directly
    out = F.conv2d(stacked, w32, None, stride, padding).round_()
    acc = out[(pieces - 1) * B:].double()
    for j in range(pieces - 2, -1, -1):  # Horner in 2^b: exact integer arithmetic below 2^53
        acc.mul_(unit).add_(out[j * B:(j + 1) * B])
    return acc


def _piece_stack(q: torch.Tensor, piece_bits: int, pieces: int) -> torch.Tensor:
    """The pieces of q (q = sum_j p_j 2^(b j)) stacked along the batch in one float32 tensor:
    piece j = rest - 2^b floor(rest / 2^b), and the floor is the next rest (every value an
    integer below 2^24, so every step is exact in float32)."""
    if pieces == 1 and q.dtype == torch.float32:
        return q.contiguous()
    B = q.shape[0]
    unit = float(2 ** piece_bits)
    stacked = torch.empty((pieces * B,) + tuple(q.shape[1:]), dtype=torch.float32, device=q.device)
    stacked[:B].copy_(q)  # |q| < 2^24: exact
    for j in range(pieces - 1):
        rest, top = stacked[j * B:(j + 1) * B], stacked[(j + 1) * B:(j + 2) * B]
        torch.mul(rest, 1.0 / unit, out=top).floor_()
        rest.add_(top, alpha=-unit)  # rest - 2^b top, the low piece
    return stacked


def _pieces(wq: torch.Tensor, max_abs_q: float) -> tuple[int, int]:
    """(bits per piece b, number of pieces) for ``_split_conv``, or (0, 0) if float32 kernels
    cannot be exact. A partial sum of one output channel is bounded by sum_i |w_i| times the
    largest |piece|, so b is the largest with max_o sum_i |w_oi| (2^b - 1) < 2^24; the top piece
    of a q with |q| <= max_abs_q has |top| <= ceil(max_abs_q / 2^b), which must obey the same bound."""
    row = float(wq.abs().flatten(1).sum(1).max())
    if row == 0.0:
        return 1, 1
    b = int(_floor_log2(FLOAT32_EXACT / row))
    while b > 0 and row * (2 ** b - 1) >= FLOAT32_EXACT:
        b -= 1
    if b < 1:
        return 0, 0
    pieces, top = 1, max_abs_q
    while row * top >= FLOAT32_EXACT:
        pieces, top = pieces + 1, float(np.ceil(top / 2 ** b))
    return b, pieces


def _integer_conv(q, wq, stride, padding, kernel: str, weight_bits: int = 0) -> torch.Tensor:
    """conv2d of integer tensors, exact on every kernel path:

    * ``conv2d``: one float64 convolution, exact whatever the summation order while every
      partial sum stays below 2^53 (checked when the weights are quantised);
    * ``unfold``: the same as a matrix product (a second path that must agree; GPUs' safe one);
    * ``float32``: ``_split_conv`` with pieces of b bits sized by the worst case of the weight
      width (``_piece_bits``), as many as the largest |q| of this call needs."""
    if kernel == "conv2d":  # rounded for the same reason as the pieces of ``_split_conv``
        return F.conv2d(q, wq, None, stride, padding).round_()
    if kernel == "float32":
        b = _piece_bits(weight_bits, wq[0].numel())
        if b < 1:
            raise ValueError(f"{weight_bits}-bit weights over {wq[0].numel()} inputs do not fit float32 kernels")
        pieces, top = 1, float(q.abs().max())
        while top >= 2 ** b:  # every piece, the signed top one included, below 2^b in magnitude
            pieces, top = pieces + 1, float(np.ceil(top / 2 ** b))
        return _split_conv(q, wq.float(), b, pieces, stride, padding)
    B, _, H, W = q.shape
    O, _, kh, kw = wq.shape
    cols = F.unfold(q, (kh, kw), padding=padding, stride=stride)  # [B, C*kh*kw, L]
    Ho = (H + 2 * padding[0] - kh) // stride[0] + 1
    Wo = (W + 2 * padding[1] - kw) // stride[1] + 1
    return (wq.reshape(O, -1) @ cols).round_().reshape(B, O, Ho, Wo)


def _one_piece(q3: np.ndarray, H: int, W: int, kernel_size, padding, w_energy: int) -> np.ndarray:
    """Which items of q3 ([B, H W, C] integers) a convolution with weights of max_o ||w_o||^2 =
    w_energy sums exactly as one float32 piece (``IntegerUNet.conv_fused``):
    max_patch ||q_patch||^2 * w_energy < 2^48, in int64 (the caller has checked that the
    product stays below 2^63 for the largest |q|)."""
    energy = np.empty(q3.shape[0], dtype=np.int64)
    exactmath.compiled("patch_energy")(q3, H, W, *kernel_size, *padding, energy)
    return energy * w_energy < ONE_PIECE_ENERGY


def _floor_log2(x):
    """floor(log2(x)) for x > 0, exactly: frexp gives x = m 2^e with m in [1/2, 1), so the
    answer is e - 1 (a log2 function could round an exact power of two down by one)."""
    return np.frexp(np.asarray(x, dtype=np.float64))[1] - 1


def _frac_bits(max_abs: float, bits: int) -> int:
    """Fractional bits f: the largest with max_abs * 2^f <= 2^(bits-1) - 1."""
    if not max_abs > 0:
        return bits - 2
    return int(_floor_log2((2 ** (bits - 1) - 1) / max_abs))


def _weight_frac_bits(w: torch.Tensor, bits: int) -> torch.Tensor:
    """Per output channel (dim 0) fractional bits of a weight tensor (float64 tensor of ints)."""
    m = w.abs().flatten(1).max(1).values.clamp_min(1e-30).numpy() if w.ndim > 1 else w.abs().max().clamp_min(1e-30).numpy()
    return torch.from_numpy(_floor_log2((2 ** (bits - 1) - 1) / m).astype(np.float64))


def _exact_matmul(h: np.ndarray, wq: np.ndarray) -> np.ndarray:
    """h @ wq.T for integer float64 arrays, refused unless every partial sum is exact: the
    largest |h| times the largest row sum of |wq| bounds them all, and must stay below 2^53.
    The product runs in torch, not numpy: numpy's OpenBLAS keeps its own threads spinning after
    a call, and on a machine with few cores they starve torch's threads (3-5x slower passes)."""
    if np.abs(h).max(initial=0.0) * np.abs(wq).sum(1).max(initial=0.0) >= 2.0 ** 53:
        raise ValueError("an integer matrix product could exceed 2^53: its float64 sums would not be exact")
    return (torch.from_numpy(np.ascontiguousarray(h)) @ torch.from_numpy(np.ascontiguousarray(wq)).T).numpy()


def _cpu_float32_exact() -> bool:
    """Whether the CPU's float32 convolutions run in float32: torch can let oneDNN use bf16 or
    TF32 for them (torch.backends.mkldnn fp32_precision), which would break the pieces' exact
    sums; the float64 convolutions are used then."""
    mkldnn = torch.backends.mkldnn
    for backend in (mkldnn, getattr(mkldnn, "conv", None)):
        if str(getattr(backend, "fp32_precision", "none")) not in ("none", "ieee"):
            return False
    return not getattr(mkldnn, "allow_tf32", False)


def _act(B: int, C: int, H: int, W: int):
    """An uninitialised float32 activation [B, C, H, W] of the fused path, stored channels-last
    (NHWC: oneDNN's float32 convolutions run faster on it, and the kernels' inner loops run over
    the channels), and the numpy view [B, H W, C] of it that the kernels write."""
    buf = np.empty((B, H, W, C), dtype=np.float32)
    return torch.from_numpy(buf).permute(0, 3, 1, 2), buf.reshape(B, H * W, C)


def _pixels(q: torch.Tensor) -> np.ndarray:
    """A CPU tensor [B, C, H, W] as numpy [B, H W, C]: a view where q is stored channels-last
    (``_act``, and the convolutions' outputs from such inputs), a copy otherwise."""
    return q.permute(0, 2, 3, 1).numpy().reshape(q.shape[0], -1, q.shape[1])


def _norm_eps(norm, n: float, f_in: int) -> float:
    """GroupNorm's epsilon in the units of n^2 times a variance of integers at scale 2^-f_in."""
    return norm.eps * n * n * 4.0 ** f_in


def _silu_np(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + exactmath.exp(-x))


_parts_lock = threading.Lock()  # held by the one caller whose batch runs in parts


class _Calibration:
    """Records the largest magnitude seen at each named point of the float forward pass."""

    def __init__(self):
        self.max_abs: dict[str, float] = {}

    def see(self, name: str, x: torch.Tensor) -> torch.Tensor:
        self.max_abs[name] = max(self.max_abs.get(name, 0.0), float(x.detach().abs().max()))
        return x


class IntegerUNet(torch.nn.Module):
    """The integer twin of a ``networks.UNet`` (same interface: forward(x, t) -> float tensor)."""

    def __init__(self, net: UNet, scales: dict, act_bits: int = 12, weight_bits: int = 10,
                 input_bits: int = 16):
        """``scales``: the fractional bits of every named activation (``from_float`` calibrates
        them; ``config()`` / ``from_config`` store and restore them, so a decoder never
        recalibrates). Everything else is an exact function of the float weights and these."""
        super().__init__()
        if not isinstance(net.mid_attn, torch.nn.Identity):
            raise ValueError("integer inference covers U-Nets without attention")
        self.net, self.act_bits, self.weight_bits = net, act_bits, weight_bits
        self.input_bits = input_bits
        # The same integers by several kernels (the tests compare them): "split", float32
        # convolutions on activations split into pieces whose sums stay exact; "conv2d", one
        # float64 convolution; "unfold", a float64 matrix product; "float32", pieces sized by
        # the worst case of the weight width; "fused", float32 activations, the split
        # convolutions and compiled elementwise kernels (``_FusedOps``); "auto" (the default):
        # fused on the CPU where numba is available, else split on large tensors and conv2d on
        # small ones, whichever is faster
        self.kernel = "auto"
        self.f = {str(name): int(f) for name, f in scales.items()}
        self.qmax = 2 ** (act_bits - 1) - 1
        self._weights: dict[int, tuple] = {}
        self._conv_plans: dict[tuple, tuple] = {}
        self._norm_affine: dict[tuple, tuple] = {}
        self._time_cache: dict[bytes, dict] = {}
        self._tables: dict[tuple, torch.Tensor] = {}
        self._fused_plans: dict[tuple, tuple] = {}

    # ----- construction ------------------------------------------------------------------------
    @classmethod
    def from_float(cls, net: UNet, inputs, **bits) -> "IntegerUNet":
        """Calibrate on ``inputs`` (an iterable of (x, t) batches) and build the integer twin."""
        calib = _Calibration()
        with torch.inference_mode():
            for x, t in inputs:
                _forward(net, x.to(torch.float32), t, _FloatOps(net, calib))
        act, inp = bits.get("act_bits", 12), bits.get("input_bits", 16)
        scales = {name: _frac_bits(m, inp if name == "input" else act) for name, m in calib.max_abs.items()}
        return cls(net, scales, **bits)

    def config(self) -> dict:
        """What, besides the float weights, defines this integer network (JSON-ready)."""
        return {"act_bits": self.act_bits, "weight_bits": self.weight_bits, "input_bits": self.input_bits,
                "scales": dict(sorted(self.f.items()))}

    @classmethod
    def from_config(cls, net: UNet, config: dict) -> "IntegerUNet":
        return cls(net, config["scales"], act_bits=config["act_bits"], weight_bits=config["weight_bits"],
                   input_bits=config["input_bits"])

    # ----- integer pieces ----------------------------------------------------------------------
    def _conv_weights(self, conv):
        """(integer weights, per-channel fractional bits fw) of a conv, float64 CPU tensors (the
        quantisation runs on the CPU whatever the network's device: one definition)."""
        key = id(conv)
        if key not in self._weights:
            w = conv.weight.detach().cpu().double()
            fw = _weight_frac_bits(w, self.weight_bits)
            wq = _round(w * _pow2(fw)[:, None, None, None])
            fan_in = w[0].numel()
            widest = max(self.act_bits, self.input_bits)
            if fan_in * 2.0 ** (self.weight_bits - 1 + widest - 1) >= 2.0 ** 52:
                raise ValueError(f"{self.weight_bits}-bit weights x {widest}-bit activations over {fan_in} "
                                 "inputs can reach 2^52: float64 sums would no longer be exact")
            self._weights[key] = (wq, fw)
        return self._weights[key]

    def requant(self, q: torch.Tensor, f_from, f_to: int) -> torch.Tensor:
        """q * 2^(f_to - f_from) rounded and clamped: exact (a power of two, then rounding)."""
        if torch.is_tensor(f_from):  # per-channel scales
            scale = _pow2(f_to - f_from)[None, :, None, None].to(q.device)
        elif f_to == f_from:  # round(q) = q for integers
            return q.clamp(-self.qmax, self.qmax)
        else:
            scale = 2.0 ** (f_to - f_from)  # a power of two, exactly
        return (q * scale).round_().clamp_(-self.qmax, self.qmax)

    def _input_limit(self, name: str) -> int:
        """The largest |q| the convolution ``name`` reads: the 16-bit network input for the
        first one, the activations' clamp for the others."""
        return 2 ** (self.input_bits - 1) - 1 if name == "conv_in" else self.qmax

    def _conv_plan(self, conv, f_in: int, name: str, device) -> tuple:
        """What a call needs besides q, computed once per device: (integer weights in float64
        and float32, piece bits, pieces, integer bias or None, power-of-two output scale)."""
        key = (id(conv), f_in, name, device)
        if key not in self._conv_plans:
            wq, fw = self._conv_weights(conv)
            lim = self._input_limit(name)
            bias = None if conv.bias is None else \
                _round(conv.bias.detach().cpu().double() * _pow2(fw + f_in))[None, :, None, None].to(device)
            b, pieces = _pieces(wq, float(lim))
            scale = _pow2(self.f[name] - (fw + f_in))[None, :, None, None].to(device)
            self._conv_plans[key] = (wq.to(device), wq.float().to(device), b, pieces, bias, scale)
        return self._conv_plans[key]

    def conv(self, conv, q: torch.Tensor, f_in: int, name: str) -> torch.Tensor:
        wq, w32, b, pieces, bias, scale = self._conv_plan(conv, f_in, name, q.device)
        kernel = self.kernel
        if kernel == "auto":
            # two float32 pieces beat one float64 convolution for 3x3 kernels from about 32k
            # input values (batch 3 at 64 x 14 x 14) on; a 1x1 convolution is cheaper in float64
            # at every batch the coder uses (all paths give the same integers). On a GPU float64
            # throughout: its float32 convolutions may run in TF32 (10-bit mantissas), which
            # would break the pieces' exactness
            spatial = conv.kernel_size != (1, 1)
            split = pieces and spatial and q.numel() >= SPLIT_MIN_VALUES and q.device.type == "cpu" \
                and _cpu_float32_exact()
            kernel = "split" if split else "conv2d"
        if kernel == "split":
            acc = _split_conv(q, w32, b, pieces, conv.stride, conv.padding)
        else:
            acc = _integer_conv(q, wq, conv.stride, conv.padding, kernel, self.weight_bits)
        if bias is not None:
            acc.add_(bias)  # integers below 2^53: exact
        # requantise: times a power of two (exact), rounded half to even, clamped
        return acc.mul_(scale).round_().clamp_(-self.qmax, self.qmax)

    def group_norm(self, norm, q: torch.Tensor, f_in: int, name: str) -> torch.Tensor:
        B, C, H, W = q.shape
        G = norm.num_groups
        g = q.reshape(B, G, -1)
        n = float(g.shape[-1])
        s1 = g.sum(-1, keepdim=True)  # exact integer sums
        s2 = (g * g).sum(-1, keepdim=True)
        var = n * s2 - s1 * s1  # n^2 times the group's variance (in q units), exact
        denom = torch.sqrt(var + _norm_eps(norm, n, f_in))
        z = (g * n).sub_(s1).div_(denom).reshape(B, C, H, W)  # (q - mean) / sqrt(var + eps)
        gain, shift = self._norm_affine_at(norm, self.f[name])
        return z.mul_(gain).add_(shift).round_().clamp_(-self.qmax, self.qmax)

    def _norm_affine_at(self, norm, f_out: int) -> tuple:
        """GroupNorm's gain and shift at the output scale, float64 [1, C, 1, 1], computed once."""
        key = (id(norm), f_out)
        if key not in self._norm_affine:
            self._norm_affine[key] = tuple((p.detach().double() * 2.0 ** f_out)[None, :, None, None]
                                           for p in (norm.weight, norm.bias))
        return self._norm_affine[key]

    def _silu_table(self, f_in: int, f_out: int, device) -> torch.Tensor:
        """round(silu(q 2^-f_in) 2^f_out), clamped, at index q + qmax for every |q| <= qmax."""
        key = (f_in, f_out, device)
        if key not in self._tables:
            grid = np.arange(-self.qmax, self.qmax + 1, dtype=np.float64)
            vals = np.rint(_silu_np(np.ldexp(grid, -f_in)) * 2.0 ** f_out)
            self._tables[key] = torch.from_numpy(np.clip(vals, -self.qmax, self.qmax)).to(device)
        return self._tables[key]

    def silu(self, q: torch.Tensor, f_in: int, name: str) -> torch.Tensor:
        table = self._silu_table(f_in, self.f[name], q.device)
        return torch.take(table, q.long().add_(self.qmax))  # take: a flat gather, faster than indexing

    # ----- the fused CPU path: float32 integers, compiled elementwise steps ---------------------
    # The same integers as the steps above (tests/test_integer_net.py compares them): integers
    # below 2^24 are exact in float32, so activations are stored there (half the memory traffic
    # of float64) and channels-last (``_act``), the convolutions are the float32 pieces of
    # ``_split_conv``, and each run of elementwise steps is one pass of a compiled kernel
    # (kernels.py) doing the same operations in float64: the split into pieces, the conv
    # epilogue, GroupNorm with the SiLU table after it, and the sums.

    def conv_fused(self, conv, q: torch.Tensor, f_in: int, name: str, then_add=None) -> torch.Tensor:
        """The convolution ``name``; with ``then_add`` = (y, f_y, f_sum), also the sum that
        follows it, at scale f_sum (``_IntegerOps.add``), in the same pass.

        Each item runs as one float32 piece where its activations are small enough for that,
        else as the plan's pieces (``_pieces``, sized for the worst case |q| = qmax). One piece
        is exact when every partial sum of every output stays below 2^24: a partial sum over
        some of an output's inputs i is at most sum_i |w_oi q_i| <= ||w_o|| ||q_patch|| (Cauchy-
        Schwarz over the kh x kw x C window it reads), so it suffices that
        max_o ||w_o||^2 * max_patch ||q_patch||^2 < 2^48, checked per item in integers
        (``kernels.patch_energy``). Either way the sums are the exact integers, so the split
        changes the speed only, never a bit."""
        key = (id(conv), f_in, name)
        plan = self._fused_plans.get(key)
        if plan is None:  # what a call needs besides q, as the kernel takes it (kept)
            wq, w32, b, pieces, bias, scale = self._conv_plan(conv, f_in, name, q.device)
            C = wq.shape[0]
            w32 = w32.contiguous(memory_format=torch.channels_last)  # the activations' layout (``_act``)
            w_energy = int(wq.long().square().flatten(1).sum(1).max())  # max_o ||w_o||^2
            if wq[0].numel() * self._input_limit(name) ** 2 * w_energy >= 2 ** 63:
                w_energy = 0  # beyond _one_piece's int64: always the plan's pieces
            plan = self._fused_plans[key] = (
                w32, b, pieces, float(2 ** b), np.zeros(C) if bias is None else bias.reshape(-1).numpy().copy(),
                bias is not None, scale.reshape(-1).numpy().copy(), conv.stride, conv.padding,
                conv.kernel_size, w_energy)
        w32, b, pieces, unit, bias_c, has_bias, scale_c, stride, padding, kernel_size, w_energy = plan
        if not pieces:  # float32 pieces cannot be exact for these weights: the float64 path
            out = self.conv(conv, q.double(), f_in, name).float()
            return out if then_add is None else self.add_fused(out, self.f[name], *then_add)
        B, _, H, W = q.shape
        q = q.float()
        q3 = _pixels(q)
        count = np.full(B, pieces, dtype=np.int64)
        if pieces > 1 and w_energy:
            count[_one_piece(q3, H, W, kernel_size, padding, w_energy)] = 1
        start = np.cumsum(count) - count
        rows_total = int(count.sum())
        if rows_total == B:
            stacked = q  # every item in one piece: q itself
        else:
            stacked, rows = _act(rows_total, *q.shape[1:])
            exactmath.compiled("piece_split")(q3.reshape(B, -1), unit, start, count, rows.reshape(rows_total, -1))
        acc = F.conv2d(stacked, w32, None, stride, padding)
        out, o3 = _act(B, *acc.shape[1:])
        if then_add is None:
            y3, sx, sy = o3, 1.0, 1.0  # not read
        else:
            y, f_y, f_sum = then_add
            y3, sx, sy = _pixels(y), 2.0 ** (f_sum - self.f[name]), 2.0 ** (f_sum - f_y)
        exactmath.compiled("conv_requant")(0, o3.shape[0] * o3.shape[1], _pixels(acc), start, count, unit, bias_c,
                                           has_bias, scale_c, float(self.qmax), sx, y3, sy, then_add is not None, o3)
        return out

    def norm_silu_fused(self, norm, q: torch.Tensor, f_in: int, norm_name: str, silu_name: str) -> torch.Tensor:
        B, C, H, W = q.shape
        key = (id(norm), f_in, norm_name, silu_name, C, H * W)
        plan = self._fused_plans.get(key)
        if plan is None:
            G = norm.num_groups
            n = float(C // G * H * W)
            gain, shift = self._norm_affine_at(norm, self.f[norm_name])
            table = self._silu_table(self.f[norm_name], self.f[silu_name], q.device)
            plan = self._fused_plans[key] = (G, n, _norm_eps(norm, n, f_in), gain.reshape(-1).numpy().copy(),
                                             shift.reshape(-1).numpy().copy(), table.numpy().copy())
        G, n, eps, gain_c, shift_c, table_c = plan
        out, o3 = _act(B, C, H, W)
        exactmath.compiled("norm_silu")(0, B, _pixels(q), G, n, eps, gain_c, shift_c, float(self.qmax), table_c, o3)
        return out

    def cat_fused(self, a: torch.Tensor, f_a: int, b: torch.Tensor, f_b: int, f: int) -> torch.Tensor:
        """[requant(a), requant(b)] along the channels, at scale f (``_IntegerOps.cat``)."""
        B, Ca, H, W = a.shape
        if b.shape[0] != B or b.shape[2:] != a.shape[2:]:
            raise ValueError(f"cannot concatenate {tuple(a.shape)} and {tuple(b.shape)}")
        out, o3 = _act(B, Ca + b.shape[1], H, W)
        kernel = exactmath.compiled("requant_into")
        for q, f_q, c0 in ((a, f_a, 0), (b, f_b, Ca)):
            kernel(_pixels(q), 2.0 ** (f - f_q), float(self.qmax), o3, c0)
        return out

    def add_fused(self, a: torch.Tensor, f_a: int, b: torch.Tensor, f_b: int, f: int) -> torch.Tensor:
        """requant(a) + requant(b) at scale f, clamped; b [B, C, H, W], [B, C, 1, 1] or [1, C, 1, 1]."""
        out, o3 = _act(*a.shape)
        sx, sy = 2.0 ** (f - f_a), 2.0 ** (f - f_b)  # powers of two, exactly
        exactmath.compiled("add_requant")(0, o3.shape[0] * o3.shape[1], _pixels(a), sx, _pixels(b), sy,
                                          float(self.qmax), o3)
        return out

    def time_shift(self, block: ResBlock, temb_q: torch.Tensor, f_t: int, name: str):
        """block.time(silu(temb)) as integers at the scale of ``name`` ([B, C, 1, 1])."""
        lin = block.time
        if id(lin) not in self._weights:  # a small layer: 6 bits wider than the convolutions
            w = lin.weight.detach().cpu().double().numpy()
            fw = int(_floor_log2((2 ** (self.weight_bits + 5) - 1) / max(np.abs(w).max(), 1e-30)))
            self._weights[id(lin)] = (np.rint(w * 2.0 ** fw), fw)
        wq, fw = self._weights[id(lin)]
        sq = np.rint(_silu_np(np.ldexp(temb_q.numpy(), -f_t)) * 2.0 ** f_t)
        acc = _exact_matmul(sq, wq) + np.rint(lin.bias.detach().cpu().double().numpy() * 2.0 ** (fw + f_t))
        return torch.from_numpy(np.rint(acc * 2.0 ** (self.f[name] - fw - f_t)))[:, :, None, None]

    def time_embedding(self, t: torch.Tensor):
        """The time MLP in float64 numpy with exactmath, as (a cache entry for the batch's
        distinct times, each item's row in them); the entry holds the integer embedding and its
        scale under "" and each block's time shift once computed (``_IntegerOps.time_shift``).
        A row depends on its own t only, and the coder calls the network at the same n + 1 times
        for every batch, so the time layers run once per distinct t, not once per call."""
        times, inverse = np.unique(t.detach().cpu().double().numpy(), return_inverse=True)
        key = times.tobytes()
        entry = self._time_cache.get(key)
        if entry is None:
            if len(self._time_cache) >= TIME_CACHE_ENTRIES:
                self._time_cache.clear()
            h, f_t = self._time_embedding(times)
            entry = self._time_cache[key] = {"": (torch.from_numpy(h), f_t)}
        return entry, torch.from_numpy(inverse.reshape(-1))

    def _time_embedding(self, t: np.ndarray):
        emb = self.net.time
        half = emb.dim // 2
        k = np.arange(half, dtype=np.float64)
        freqs = exactmath.exp(-(exactmath.log(np.array([10000.0]))[0]) * k / half)
        args = (1000.0 * t)[:, None] * freqs[None, :]
        s, c = exactmath.sin_cos(args)
        feats = np.concatenate([s, c], axis=1)
        f_t = 20
        h = np.rint(feats * 2.0 ** f_t)
        for i, layer in enumerate((emb.mlp[0], emb.mlp[2])):
            w = layer.weight.detach().cpu().double().numpy()
            fw = int(_floor_log2((2 ** 23 - 1) / max(np.abs(w).max(), 1e-30)))
            wq = np.rint(w * 2.0 ** fw)
            acc = _exact_matmul(h, wq) + np.rint(layer.bias.detach().cpu().double().numpy() * 2.0 ** (fw + f_t))
            h = np.rint(np.ldexp(acc, -fw))  # back to scale 2^-f_t
            if i == 0:
                h = np.rint(_silu_np(np.ldexp(h, -f_t)) * 2.0 ** f_t)
        return h, f_t

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # every item's outputs depend on that item alone (convolutions, GroupNorm and the time
        # layers act per item), so a large batch runs in chunks: the same integers, and float64
        # activations that stay in cache (2.3x faster per item at 256 items than in one pass)
        m = self.net.required_multiple()
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"image height and width must be multiples of {m}, got {tuple(x.shape[-2:])}")
        t = t.reshape(-1)
        if t.shape[0] == 1:  # one time for every item, as the float network takes it
            t = t.expand(x.shape[0])
        if t.shape[0] != x.shape[0]:
            raise ValueError(f"{t.shape[0]} times for {x.shape[0]} items")
        fused = self._fused(x)
        ops = _FusedOps if fused else _IntegerOps
        threads = torch.get_num_threads()
        parts = min(threads, x.shape[0] // PART_MIN_ITEMS) if fused else 1
        if parts > 1 and _parts_lock.acquire(blocking=False):
            # the fused path's kernels run on the calling thread, so the batch is cut into one
            # part per torch thread, each run on its own thread with single-threaded torch:
            # the same integers (each item's outputs depend on that item alone), and both
            # cores busy in the elementwise steps as well as in the convolutions. torch's
            # thread count is process-wide: it is restored on return, and only one caller at
            # a time cuts its batch (a concurrent one runs as it is)
            try:
                step = -(-x.shape[0] // parts)
                starts = range(0, x.shape[0], step)
                torch.set_num_threads(1)
                try:
                    outs = list(exactmath.thread_pool(len(starts), "integer-net").map(
                        lambda a: self._passes(ops, x[a:a + step], t[a:a + step]), starts))
                finally:
                    torch.set_num_threads(threads)
            finally:
                _parts_lock.release()
            return torch.cat(outs)
        return self._passes(ops, x, t)

    def _passes(self, ops, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():  # a thread-local mode: set here for the part threads too
            if x.shape[0] <= ITEMS_PER_PASS:
                return _forward(self.net, x, t, ops(self))
            return torch.cat([_forward(self.net, xc, tc, ops(self))
                              for xc, tc in zip(x.split(ITEMS_PER_PASS), t.split(ITEMS_PER_PASS))])

    def _fused(self, x: torch.Tensor) -> bool:
        """The fused path runs for kernel "fused", and for "auto" on the CPU where the compiled
        kernels are available (exactmath.compiled: not with BFN_CODEC_KERNELS=numpy), the
        integers fit float32 (|q| < 2^24) and float32 convolutions keep float32 precision."""
        if self.kernel not in ("fused", "auto"):
            return False
        why = ("it runs on the CPU only" if x.device.type != "cpu" else
               "the integers are too wide for float32" if max(self.act_bits, self.input_bits) > 24 else
               "CPU float32 convolutions are set to a lower precision" if not _cpu_float32_exact() else
               "it needs numba (exactmath.compiled)" if exactmath.compiled("norm_silu") is None else None)
        if why is not None and self.kernel == "fused":
            raise RuntimeError(f"the fused integer path cannot run here: {why}")
        return why is None


class _FloatOps:
    """The float network's own arithmetic, with calibration records."""

    def __init__(self, net, calib: _Calibration):
        self.net, self.c = net, calib

    def input(self, x):
        return self.c.see("input", x)

    def temb(self, t):
        return self.net.time(t), None

    def conv(self, conv, h, name):
        return self.c.see(name, conv(h))

    def norm(self, norm, h, name):
        return self.c.see(name, norm(h))

    def silu(self, h, name):
        return self.c.see(name, F.silu(h))

    def norm_silu(self, norm, h, norm_name, silu_name):
        return self.silu(self.norm(norm, h, norm_name), silu_name)

    def conv_add(self, conv, h, name, y, add_name):
        return self.add(self.conv(conv, h, name), y, add_name)

    def time_shift(self, block, temb, name):
        return self.c.see(name + ".time", block.time(F.silu(temb[0]))[:, :, None, None])

    def add(self, a, b, name):
        return self.c.see(name, a + b)

    def cat(self, a, b, name):
        return self.c.see(name, torch.cat([a, b], 1))

    def output(self, h):
        return h


class _IntegerOps:
    """The same pass on integers; each value carries its scale through ``self.scale``."""

    def __init__(self, inet: IntegerUNet):
        self.i = inet
        self.scale: dict[int, object] = {}
        self.device = torch.device("cpu")  # the input's device (``input``)

    def _f(self, q):
        return self.scale[id(q)]

    def _tag(self, q, f):
        self.scale[id(q)] = f
        return q

    def input(self, x):
        self.device = x.device
        f = self.i.f["input"]
        lim = 2 ** (self.i.input_bits - 1) - 1
        return self._tag(_round(x.double() * 2.0 ** f).clamp_(-lim, lim), f)

    def temb(self, t):
        return self.i.time_embedding(t)

    def conv(self, conv, h, name):
        return self._tag(self.i.conv(conv, h, self._f(h), name), self.i.f[name])

    def norm(self, norm, h, name):
        return self._tag(self.i.group_norm(norm, h, self._f(h), name), self.i.f[name])

    def silu(self, h, name):
        return self._tag(self.i.silu(h, self._f(h), name), self.i.f[name])

    def norm_silu(self, norm, h, norm_name, silu_name):
        return self.silu(self.norm(norm, h, norm_name), silu_name)

    def conv_add(self, conv, h, name, y, add_name):
        return self.add(self.conv(conv, h, name), y, add_name)

    def _shifts(self, block, temb, name):
        """The block's time shift per distinct time [T, C, 1, 1], and each item's row in it.
        The time layers run on the CPU (numpy, exactmath); their integers move to the
        network's device once per distinct time set."""
        entry, rows = temb
        key = (name, self.device)
        if key not in entry:
            entry[key] = self.i.time_shift(block, *entry[""], name + ".time").to(self.device)
        return entry[key], rows

    def time_shift(self, block, temb, name):
        shifts, rows = self._shifts(block, temb, name)
        return self._tag(shifts[rows.to(self.device)], self.i.f[name + ".time"])

    def add(self, a, b, name):
        f = self.i.f[name]
        s = self.i.requant(a, self._f(a), f) + self.i.requant(b, self._f(b), f)
        return self._tag(s.clamp_(-self.i.qmax, self.i.qmax), f)

    def cat(self, a, b, name):
        f = self.i.f[name]
        return self._tag(torch.cat([self.i.requant(a, self._f(a), f), self.i.requant(b, self._f(b), f)], 1), f)

    def output(self, h):
        return (h * 2.0 ** -self._f(h)).float()  # exact: integers times a power of two


class _FusedOps(_IntegerOps):
    """The integer pass on the CPU with activations in float32 and the compiled kernels
    (IntegerUNet's fused path): the same integers as ``_IntegerOps``."""

    def input(self, x):
        if not bool(torch.isfinite(x).all()):  # the kernels would index their tables with it
            raise ValueError("the network input is not finite")
        return self._tag(super().input(x).float(), self.i.f["input"])  # |q| < 2^15: exact

    def conv(self, conv, h, name):
        return self._tag(self.i.conv_fused(conv, h, self._f(h), name), self.i.f[name])

    def norm_silu(self, norm, h, norm_name, silu_name):
        return self._tag(self.i.norm_silu_fused(norm, h, self._f(h), norm_name, silu_name), self.i.f[silu_name])

    def conv_add(self, conv, h, name, y, add_name):
        f = self.i.f[add_name]
        return self._tag(self.i.conv_fused(conv, h, self._f(h), name, (y, self._f(y), f)), f)

    def time_shift(self, block, temb, name):
        shifts, rows = self._shifts(block, temb, name)  # one time: the kernels read row 0 for every item
        return self._tag(shifts if shifts.shape[0] == 1 else shifts[rows], self.i.f[name + ".time"])

    def cat(self, a, b, name):
        f = self.i.f[name]
        return self._tag(self.i.cat_fused(a, self._f(a), b, self._f(b), f), f)


def _ste_round(v: torch.Tensor) -> torch.Tensor:
    """round(v) forward, identity backward (the straight-through estimator)."""
    return v + (torch.round(v) - v).detach()


class _FakeQuantOps:
    """The integer network's rounding and clamping on float values, differentiable through
    straight-through rounding: quantisation-aware fine-tuning trains the float weights so that
    the integer twin built from them (same scales and bit widths) computes nearly the same
    function. Values are real numbers on the integer grid q * 2^-f."""

    def __init__(self, inet: IntegerUNet):
        self.i = inet

    def q(self, v, name, bits=None):
        f = self.i.f[name]
        lim = 2 ** ((bits or self.i.act_bits) - 1) - 1
        return torch.clamp(_ste_round(v * 2.0 ** f), -lim, lim) * 2.0 ** -f

    def _weight(self, w, bits):
        m = w.detach().abs().flatten(1).max(1).values.clamp_min(1e-30)
        fw = torch.from_numpy(_floor_log2(((2 ** (bits - 1) - 1) / m).double().cpu().numpy())).to(w)
        scale = torch.pow(2.0, fw).view(-1, *([1] * (w.ndim - 1)))
        return _ste_round(w * scale) / scale, fw

    def input(self, x):
        return self.q(x, "input", self.i.input_bits)

    def temb(self, t):
        return self.i.net.time(t), None

    def conv(self, conv, h, name):
        w, _ = self._weight(conv.weight, self.i.weight_bits)
        return self.q(F.conv2d(h, w, conv.bias, conv.stride, conv.padding), name)

    def norm(self, norm, h, name):
        return self.q(norm(h), name)

    def silu(self, h, name):
        return self.q(F.silu(h), name)

    def norm_silu(self, norm, h, norm_name, silu_name):
        return self.silu(self.norm(norm, h, norm_name), silu_name)

    def conv_add(self, conv, h, name, y, add_name):
        return self.add(self.conv(conv, h, name), y, add_name)

    def time_shift(self, block, temb, name):
        return self.q(block.time(F.silu(temb[0]))[:, :, None, None], name + ".time")

    def add(self, a, b, name):
        return self.q(self.q(a, name) + self.q(b, name), name)

    def cat(self, a, b, name):
        return torch.cat([self.q(a, name), self.q(b, name)], 1)

    def output(self, h):
        return h


class FakeQuantUNet(torch.nn.Module):
    """The float U-Net with the integer twin's quantisation in its forward pass (for
    quantisation-aware fine-tuning); its parameters are the float network's."""

    def __init__(self, inet: IntegerUNet):
        super().__init__()
        self.net = inet.net
        self.inet = inet

    def forward(self, x, t):
        return _forward(self.net, x, t, _FakeQuantOps(self.inet))


def _res_block(block: ResBlock, h, temb, ops, name):
    a = ops.conv_add(block.conv1, ops.norm_silu(block.norm1, h, name + ".n1", name + ".s1"), name + ".c1",
                     ops.time_shift(block, temb, name + ".c1"), name + ".t")
    skip = h if isinstance(block.skip, torch.nn.Identity) else ops.conv(block.skip, h, name + ".skip")
    return ops.conv_add(block.conv2, ops.norm_silu(block.norm2, a, name + ".n2", name + ".s2"), name + ".c2",
                        skip, name + ".out")


def _forward(net: UNet, x, t, ops):
    """UNet.forward, step by step, with the arithmetic of ``ops`` (float or integer)."""
    temb = ops.temb(t)
    h = F.pixel_unshuffle(x, net.unshuffle) if net.unshuffle > 1 else x
    h = ops.input(h)
    h = ops.conv(net.conv_in, h, "conv_in")
    hs = [h]
    for i, layer in enumerate(net.down):
        if isinstance(layer, ResBlock):
            h = _res_block(layer, h, temb, ops, f"down{i}")
        else:
            h = ops.conv(layer, h, f"down{i}")
        hs.append(h)
    h = _res_block(net.mid1, h, temb, ops, "mid1")
    h = _res_block(net.mid2, h, temb, ops, "mid2")
    for i, layer in enumerate(net.up):
        if isinstance(layer, ResBlock):
            h = _res_block(layer, ops.cat(h, hs.pop(), f"up{i}.cat"), temb, ops, f"up{i}")
        else:
            f = ops._f(h) if isinstance(ops, _IntegerOps) else None
            h = layer(h)
            if f is not None:
                ops._tag(h, f)
    h = ops.norm_silu(net.norm_out, h, "norm_out", "silu_out")
    h = ops.output(ops.conv(net.conv_out, h, "conv_out"))
    return F.pixel_shuffle(h, net.unshuffle) if net.unshuffle > 1 else h
