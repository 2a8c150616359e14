"""Integer inference (bfn_codec/integer_net.py): the same integers on every kernel path, and
close to the float network it was calibrated from."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from bfn_codec.integer_net import IntegerUNet
from bfn_codec.networks import UNet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _net_and_inputs(seed=0):
    torch.manual_seed(seed)
    net = UNet(in_channels=1, out_channels=2, channels=16, channel_mult=(1, 1), num_res_blocks=1,
               unshuffle=2, attention=False).eval()
    for p in net.parameters():  # a random, not a zero, output layer
        p.data.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(seed + 1)
    batches = [(torch.rand(6, 1, 16, 16, generator=g) * 2 - 1, torch.rand(6, generator=g)) for _ in range(3)]
    return net, batches


def test_integer_outputs_follow_the_float_network():
    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches, act_bits=12, weight_bits=10)
    x, t = batches[0]
    with torch.inference_mode():
        ref, out = net(x, t), inet(x, t)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    err = (out - ref).abs().max() / ref.abs().max()
    assert err < 0.02, float(err)
    coarse = IntegerUNet.from_float(net, batches, act_bits=6, weight_bits=5)(x, t)
    assert (coarse - ref).abs().max() / ref.abs().max() > err  # fewer bits, larger error


def _digest(out):
    return hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest()


def test_the_integers_do_not_depend_on_threads_layout_batching_or_kernel():
    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches)
    x, t = batches[1]
    threads = torch.get_num_threads()
    with torch.inference_mode():
        ref = inet(x, t)
        try:
            torch.set_num_threads(1)
            one_thread = inet(x, t)
        finally:
            torch.set_num_threads(threads)
        split = torch.cat([inet(x[i:i + 1], t[i:i + 1]) for i in range(len(x))])
        channels_last = inet(x.contiguous(memory_format=torch.channels_last), t)
        others = []
        for kernel in ("conv2d", "unfold", "split", "float32", "fused"):  # float32 kernels: exact pieces
            inet.kernel = kernel
            others.append(inet(x, t))
    for other in (one_thread, split, channels_last, *others):
        assert torch.equal(other, ref)


def test_the_fused_path_gives_the_torch_steps_integers(monkeypatch):
    """The CPU default (compiled kernels on float32 integers, the batch cut into one part per
    torch thread) against the float64 torch steps, on ordinary, saturating and tiny inputs,
    with 1 to 3 torch threads (3 parts of 8 items); some convolution calls run some of their
    items as one float32 piece and others as two."""
    from bfn_codec import exactmath, integer_net

    decided = []
    one_piece = integer_net._one_piece
    monkeypatch.setattr(integer_net, "_one_piece", lambda *a: decided.append(one_piece(*a)) or decided[-1])

    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches)
    x, t = batches[0]
    x, t = torch.cat([x, x * 40.0, x * 1e-3, -x]), torch.cat([t, t, t, 1.0 - t])
    threads = torch.get_num_threads()
    with torch.inference_mode():
        assert inet._fused(x)
        with exactmath.numpy_only():
            assert not inet._fused(x)
            ref = inet(x, t)
        outs = []
        try:
            for n in (1, 2, 3):
                torch.set_num_threads(n)
                outs.append(inet(x, t))
                assert torch.get_num_threads() == n  # restored after the parts
        finally:
            torch.set_num_threads(threads)
    for out in outs:  # the same bits (torch.equal would take -0.0 for +0.0)
        assert torch.equal(out.view(torch.int32), ref.view(torch.int32))
    assert any(d.any() and not d.all() for d in decided)  # one and two pieces in one call


@pytest.mark.parametrize("C,k,pad,H,W,top", [(64, 3, 1, 28, 28, 2047), (128, 3, 1, 7, 5, 2047),
                                             (128, 1, 0, 14, 14, 2047), (3, 3, 0, 6, 9, 2047),
                                             (4, 3, 1, 14, 14, 32767)])
def test_patch_energy_is_the_largest_windowed_sum_of_squares(C, k, pad, H, W, top):
    """kernels.patch_energy against a float64 box filter of sum_c q^2 over the zero-padded
    input (exact: integers), per item, on integers up to the 12-bit activations' extremes and
    the 16-bit network input's (whose four channels' squares overflow 32-bit sums)."""
    from bfn_codec import exactmath

    kernel = exactmath.compiled("patch_energy")
    if kernel is None:
        pytest.skip("no compiled kernels here")
    rng = np.random.default_rng(C + k)
    q = np.rint(rng.uniform(-top, top, (4, H, W, C))).astype(np.float32)
    q[1] = 0.0
    q[2, H // 2, W // 2] = top  # one large pixel
    q[2, H // 2 - 1, W // 2] = -top
    q[3, :2] = top
    out = np.empty(4, dtype=np.int64)
    kernel(q.reshape(4, H * W, C), H, W, k, k, pad, pad, out)
    energy = torch.from_numpy(q.astype(np.float64) ** 2).sum(-1)[:, None]  # [B, 1, H, W]
    ref = torch.nn.functional.conv2d(energy, torch.ones(1, 1, k, k, dtype=torch.float64), padding=pad)
    assert np.array_equal(out, ref.flatten(1).max(1).values.numpy().astype(np.int64))


def test_one_float32_piece_is_exact_up_to_its_bound():
    """integer_net._one_piece admits an item when max_o ||w_o||^2 max_patch ||q_patch||^2 < 2^48
    (Cauchy-Schwarz bounds every partial sum by 2^24). Inputs aligned with the largest row of
    weights make that bound nearly tight: the admitted one's sums come within 0.1% of 2^24 and
    float32 still gives the float64 integers; a slightly larger one is not admitted."""
    from bfn_codec import exactmath
    from bfn_codec.integer_net import _one_piece

    if exactmath.compiled("patch_energy") is None:
        pytest.skip("no compiled kernels here")
    g = torch.Generator().manual_seed(5)
    wq = torch.randint(-511, 512, (4, 64, 3, 3), generator=g).double()
    norms = wq.square().flatten(1).sum(1)
    w_energy, o = int(norms.max()), int(norms.argmax())

    def aligned(c):  # one 3x3 patch of round(c w_o) at the centre of a 5x5 image
        q = torch.zeros(1, 64, 5, 5, dtype=torch.float64)
        q[0, :, 1:4, 1:4] = torch.round(c * wq[o])
        return q

    def admitted(c):
        q3 = aligned(c).permute(0, 2, 3, 1).reshape(1, 25, 64).float().numpy()
        return bool(_one_piece(np.ascontiguousarray(q3), 5, 5, (3, 3), (1, 1), w_energy)[0])

    lo, hi = 0.0, 2047.0 / 511.0
    for _ in range(60):  # the largest admitted scale
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if admitted(mid) else (lo, mid)
    q = aligned(lo)
    ref = torch.nn.functional.conv2d(q, wq, padding=1)  # float64: exact
    assert 0.999 * 2 ** 24 < float(ref.abs().max()) < 2 ** 24
    assert torch.equal(torch.nn.functional.conv2d(q.float(), wq.float(), padding=1).double(), ref)
    assert not admitted(lo * 1.001)


@pytest.mark.parametrize("bits,pieces", [(7, 2), (11, 2), (6, 4)])
def test_the_compiled_piece_split_gives_the_torch_pieces(bits, pieces):
    """kernels.piece_split (the fused path's split of the activations) against _piece_stack to
    the bit, on integers up to the largest the pieces cover, both signs, zeros of both signs."""
    from bfn_codec import exactmath
    from bfn_codec.integer_net import _piece_stack

    kernel = exactmath.compiled("piece_split")
    if kernel is None:
        pytest.skip("no compiled kernels here")
    top = 2.0 ** (bits * pieces - 1)
    rng = np.random.default_rng(bits)
    q = torch.from_numpy(np.rint(rng.uniform(-top, top - 1, (3, 5, 4, 6))).astype(np.float32))
    q.view(-1)[:4] = torch.tensor([0.0, -0.0, top - 1, -top])
    ref = _piece_stack(q, bits, pieces)
    out = torch.empty_like(ref)
    start, count = np.arange(3) * pieces, np.full(3, pieces)  # item-major: item i's pieces together
    kernel(q.numpy().reshape(3, -1), float(2 ** bits), start, count, out.numpy().reshape(3 * pieces, -1))
    item_major = ref.reshape(pieces, 3, -1).transpose(0, 1).reshape(ref.shape)
    assert torch.equal(out.view(torch.int32), item_major.view(torch.int32))


def test_the_integer_network_takes_one_time_for_every_item_and_refuses_bad_input():
    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches)
    x, t = batches[0]
    x = torch.cat([x, x])  # 12 items: cut into parts on 2 or more torch threads
    with torch.inference_mode():
        each = inet(x, torch.full((12,), 0.25))
        assert torch.equal(inet(x, torch.tensor(0.25)), each)
        assert torch.equal(inet(x, torch.tensor([0.25])), each)
        with pytest.raises(ValueError, match="5 times for 12 items"):
            inet(x, torch.full((5,), 0.25))
        with pytest.raises(ValueError, match="multiples of"):
            inet(x[..., :14, :14], torch.full((12,), 0.25))
        bad = x.clone()
        bad[3, 0, 2, 2] = float("nan")
        with pytest.raises(ValueError, match="not finite"):
            inet(bad, torch.full((12,), 0.25))


@pytest.mark.parametrize("setting", ["conv", "all"])
def test_lower_precision_float32_convolutions_leave_the_integers_alone(setting):
    """torch can let oneDNN run float32 convolutions in bf16 or TF32, which would break the
    float32 pieces' exact sums: the integer network then uses float64 convolutions."""
    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches)
    x, t = batches[0]
    x = torch.cat([x] * 6)  # 36 items: large enough for the split convolutions
    t = torch.cat([t] * 6)
    with torch.inference_mode():
        ref = inet(x, t)
    backend = torch.backends.mkldnn.conv if setting == "conv" else torch.backends.mkldnn
    before = backend.fp32_precision
    backend.fp32_precision = "bf16"
    try:
        assert not inet._fused(x)
        with torch.inference_mode():
            assert torch.equal(inet(x, t), ref)
            inet.kernel = "split"
            with pytest.raises(ValueError, match="fp32_precision"):
                inet(x, t)
        inet.kernel = "fused"
        with pytest.raises(RuntimeError, match="lower precision"):
            inet(x, t)
    finally:
        backend.fp32_precision = before
        inet.kernel = "auto"


def test_the_fused_epilogues_round_ties_to_even_and_clamp():
    """conv_requant and add_requant against the torch steps on values built to land on .5
    after scaling (ties) and beyond the clamp, with a bias and two pieces; the kernels take
    channels-last arrays [B, L, C], the torch steps [B, C, L]."""
    from bfn_codec import exactmath

    def nhwc(v):  # [B, C, L] -> [B, L, C]
        return np.ascontiguousarray(v.numpy().transpose(0, 2, 1))

    g = torch.Generator().manual_seed(9)
    acc = torch.randint(-2 ** 14, 2 ** 14, (2 * 3, 4, 50), generator=g).float()
    acc[:, :, :10] = torch.arange(-5, 5).float() * 2 + 1  # odd: ties after * 2^-1
    bias = torch.tensor([0.0, 3.0, -7.0, 2.0 ** 20], dtype=torch.float64)
    scale = torch.tensor([2.0 ** -1, 2.0 ** -4, 2.0 ** -9, 1.0], dtype=torch.float64)
    qmax = 2047.0
    out = np.empty((3, 50, 4), dtype=np.float32)
    # acc holds the low pieces in rows 0-2, the top ones in rows 3-5; the kernel takes each
    # item's pieces in consecutive rows (kernels.piece_split's layout)
    item_major = acc.reshape(2, 3, 4, 50).transpose(0, 1).reshape(6, 4, 50)
    exactmath.compiled("conv_requant")(0, 150, nhwc(item_major), np.arange(3) * 2, np.full(3, 2), 2.0 ** 7,
                                       bias.numpy(), True, scale.numpy(), qmax, 1.0, out, 1.0, False, out)
    total = acc[3:].double() * 2.0 ** 7 + acc[:3].double()  # the pieces recombined
    ref = ((total + bias[None, :, None]) * scale[None, :, None]).round().clamp(-qmax, qmax)
    assert torch.equal(torch.from_numpy(out.transpose(0, 2, 1)).double(), ref)
    x, y = acc[:3].contiguous(), acc[3:].contiguous()
    exactmath.compiled("add_requant")(0, 150, nhwc(x), 2.0 ** -1, nhwc(y), 2.0 ** -3, qmax, out)
    ref = ((x.double() * 2.0 ** -1).round().clamp(-qmax, qmax) +
           (y.double() * 2.0 ** -3).round().clamp(-qmax, qmax)).clamp(-qmax, qmax)
    assert torch.equal(torch.from_numpy(out.transpose(0, 2, 1)).double(), ref)


@pytest.mark.parametrize("kernel", ["conv2d", "split", "fused"])
def test_small_convolution_errors_are_rounded_away(monkeypatch, kernel):
    """A kernel library may pick a transform algorithm (Winograd, FFT; cuDNN on a GPU) whose
    fractions leave small errors on integer sums: every integer-valued convolution output is
    rounded before it is scaled, so such errors change no integer. (Here up to 0.2: float32
    sums between 2^22 and 2^23 are multiples of 1/2, where a larger error can round to a tie.)"""
    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches)
    inet.kernel = kernel
    x, t = batches[1]
    with torch.inference_mode():
        ref = inet(x, t)
    conv2d, g = torch.nn.functional.conv2d, torch.Generator().manual_seed(5)

    def inexact(*args, **kwargs):
        out = conv2d(*args, **kwargs)
        return out + (torch.rand(out.shape, generator=g, dtype=out.dtype) - 0.5) * 0.4

    monkeypatch.setattr(torch.nn.functional, "conv2d", inexact)
    with torch.inference_mode():
        assert torch.equal(inet(x, t), ref)


def test_split_convolutions_are_exact_at_their_worst_case():
    """_pieces sizes the float32 pieces by the largest row sum of |w|: inputs that drive every
    piece's partial sums to that bound (all weights of a row at +511, all inputs at +-2047,
    whose pieces are then at their extremes) still give the float64 convolution's integers,
    and a row that float32 cannot bound at all is refused."""
    from bfn_codec.integer_net import FLOAT32_EXACT, _pieces, _split_conv

    g = torch.Generator().manual_seed(3)
    wq = torch.randint(-511, 512, (2, 64, 3, 3), generator=g).double()
    wq[0] = 511.0  # row sum 576 * 511
    lim = 2047.0
    b, pieces = _pieces(wq, lim)
    row = 576 * 511.0
    assert row * (2 ** b - 1) < FLOAT32_EXACT <= row * (2 ** (b + 1) - 1)  # the largest such b
    assert row * np.ceil(lim / 2 ** (b * (pieces - 1))) < FLOAT32_EXACT  # the top piece fits
    assert row * np.ceil(lim / 2 ** (b * (pieces - 2))) >= FLOAT32_EXACT  # one piece fewer would not
    q = torch.stack([torch.full((64, 3, 3), lim), torch.full((64, 3, 3), -lim),
                     torch.randint(-2047, 2048, (64, 3, 3), generator=g).double()])
    ref = torch.nn.functional.conv2d(q, wq)  # float64: exact
    assert float(ref.abs().max()) == 2047 * row > FLOAT32_EXACT
    assert torch.equal(_split_conv(q, wq.float(), b, pieces, (1, 1), (0, 0)), ref)
    assert _pieces(torch.full((1, 4096, 3, 3), 511.0), lim) == (0, 0)  # 2^24 / row < 2: no pieces


SCRIPT = r"""
import hashlib, sys, torch
sys.path.insert(0, sys.argv[1] + "/tests")
from test_integer_net import _net_and_inputs
from bfn_codec.integer_net import IntegerUNet
net, batches = _net_and_inputs()
inet = IntegerUNet.from_float(net, batches)
with torch.inference_mode():
    out = torch.cat([inet(x, t) for x, t in batches])
print(hashlib.sha256(out.contiguous().numpy().tobytes()).hexdigest())
"""


@pytest.mark.slow
def test_the_integers_are_the_same_with_oneDNN_held_to_older_instruction_sets():
    """The float network's outputs change when oneDNN may not use AVX-512 (issue #20); the
    integer network's must not. Each setting runs in its own process (the cap is read once)."""
    digests = {}
    for isa in ("ALL", "AVX2", "SSE41"):
        env = dict(os.environ, ONEDNN_MAX_CPU_ISA=isa, OMP_NUM_THREADS="1")
        proc = subprocess.run([sys.executable, "-c", SCRIPT, ROOT], capture_output=True, text=True,
                              env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        digests[isa] = proc.stdout.strip()
    assert len(set(digests.values())) == 1, digests


def test_too_many_bits_for_exact_float64_sums_are_refused():
    net, batches = _net_and_inputs()
    with pytest.raises(ValueError, match="2\\^52"):
        IntegerUNet.from_float(net, batches, act_bits=24, weight_bits=24)(*batches[0])


def test_a_stored_configuration_rebuilds_the_same_integers():
    """The calibrated scales and bit widths are the whole integer network besides the float
    weights: stored as JSON and restored, they give the same outputs without recalibrating."""
    import json

    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches, act_bits=11, weight_bits=9)
    config = json.loads(json.dumps(inet.config()))
    again = IntegerUNet.from_config(net, config)
    x, t = batches[2]
    with torch.inference_mode():
        assert torch.equal(again(x, t), inet(x, t))
    assert config["act_bits"] == 11 and config["scales"]["input"] == inet.f["input"]


def test_fractional_bits_are_exact_at_powers_of_two():
    """floor(log2(L / m)) from frexp: exact where a log2 function might round down."""
    from bfn_codec.integer_net import _floor_log2, _frac_bits

    xs = np.array([2.0 ** k for k in range(-30, 31)] + [3.0, 0.75, 1e-9, 12345.678])
    assert np.array_equal(_floor_log2(xs), np.floor(np.log2(xs)).astype(int))
    for m in (0.1, 1.0, 2.0 ** -7, 3.999, 1000.0):
        f = _frac_bits(m, 12)
        assert m * 2.0 ** f <= 2047 < m * 2.0 ** (f + 1)


def test_fake_quantisation_follows_the_integer_network_and_passes_gradients():
    """Quantisation-aware fine-tuning trains through FakeQuantUNet: its forward pass is the
    integer network's rounding on floats (close to the integers; GroupNorm and the time MLP
    are float there), and rounding passes gradients straight through."""
    from bfn_codec.integer_net import FakeQuantUNet

    net, batches = _net_and_inputs()
    inet = IntegerUNet.from_float(net, batches, act_bits=8, weight_bits=8)
    fq = FakeQuantUNet(inet)
    x, t = batches[0]
    out = fq(x, t)
    with torch.inference_mode():
        exact, ref = inet(x, t), net(x, t)
    scale = ref.abs().max()
    assert (out.detach() - exact).abs().max() < (exact - ref).abs().max() + 0.05 * scale
    out.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)
