"""Quantisation-aware fine-tuning trial (issue #20): how much of the rate cost of narrow integer
activations (w8/a7: one exact float32 kernel call per convolution) fine-tuning through
FakeQuantUNet (bfn_codec/integer_net.py) recovers, on the codec's L^n + L^r.

    python3 benchmarks/integer_qat.py MODEL WEIGHT_BITS ACT_BITS MINUTES TEST_IMAGES [LR]
    python3 benchmarks/integer_qat.py fmnist-binary 8 7 20 200 3e-5

Prints the float, post-training-quantised and fine-tuned integer losses on the first TEST_IMAGES
test images (paired, same message noise) and writes results/integer-qat-<data>-<weights8>-w<W>a<A>.json.
The fine-tuned weights go to /tmp (a trial, not a bundled model).
"""
import copy
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integer_ptq import calibration_inputs
from result_names import data_token, result_path, write_result, weights8
torch.set_num_threads(2)
from bfn_codec.models import load_model
from bfn_codec.integer_net import IntegerUNet, FakeQuantUNet
from bfn_codec.evaluate import per_item_total_bits
from bfn_codec.api import codec_settings, power_times
from bfn_codec.train import training_loss
from bfn_codec.data import load_fmnist, binarise
name, wb, ab, minutes, N = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
model = load_model(name)
prep = binarise if name == "fmnist-binary" else (lambda a: a)
test = prep(load_fmnist("test")[:N]).reshape(N, -1)
train = prep(load_fmnist("train")).reshape(60000, -1)
steps, _, p = codec_settings(model, None, None, None)
times = power_times(steps, p)
net = model.net
calib = calibration_inputs(model, train[:64], steps, times)
ref = per_item_total_bits(model, test, steps, 50, 0, times=times)
inet = IntegerUNet.from_float(net, calib, act_bits=ab, weight_bits=wb)
model.net = inet; ptq = per_item_total_bits(model, test, steps, 50, 0, times=times); model.net = net
print(f"float {ref.mean()/784:.5f}  ptq w{wb}a{ab} {100*(ptq.sum()/ref.sum()-1):+.3f}%", flush=True)
config = inet.config()
qnet = copy.deepcopy(net)
fq = FakeQuantUNet(IntegerUNet.from_config(qnet, config))
model.net = fq
opt = torch.optim.AdamW(qnet.parameters(), lr=float(sys.argv[6]) if len(sys.argv) > 6 else 2e-5, weight_decay=0.0)
g = torch.Generator().manual_seed(5)
rng = np.random.default_rng(5)
t0 = time.perf_counter(); k = 0; losses = []
qnet.train()
while time.perf_counter() - t0 < 60 * minutes:
    idx = rng.integers(0, 60000, 16)
    x = torch.from_numpy(train[idx].astype(np.int64))
    loss = training_loss(model, x, steps, g, p).mean() / 784
    opt.zero_grad(); loss.backward(); opt.step(); k += 1
    losses.append(float(loss.detach()))
    if k % 200 == 0:
        print(k, f"{np.mean(losses[-200:])/np.log(2):.5f} bits/dim (train, fake-quant)", f"{time.perf_counter()-t0:.0f}s", flush=True)
qnet.eval()
model.net = IntegerUNet.from_config(qnet, config)
qat = per_item_total_bits(model, test, steps, 50, 0, times=times)
d = qat - ref
print(f"QAT {k} steps: integer w{wb}a{ab} {qat.mean()/784:.5f} = {100*(qat.sum()/ref.sum()-1):+.3f}% ± {100*d.std()/np.sqrt(N)/ref.mean():.3f}% vs float; PTQ was {100*(ptq.sum()/ref.sum()-1):+.3f}%", flush=True)
torch.save(qnet.state_dict(), f"/tmp/qat-{name}-w{wb}a{ab}.pt")
res = {"model": name, "model_sha256": model.weights_sha256,
       "weight_bits": wb, "act_bits": ab, "test_images": N, "steps": steps, "grid_power": p,
       "minutes": minutes, "optimiser_steps": k, "batch_size": 16, "lr": opt.param_groups[0]["lr"],
       "float_bits_per_dim": float(ref.mean() / 784), "ptq_change_percent": float(100 * (ptq.sum() / ref.sum() - 1)),
       "qat_bits_per_dim": float(qat.mean() / 784), "qat_change_percent": float(100 * (qat.sum() / ref.sum() - 1)),
       "qat_paired_stderr_percent": float(100 * d.std() / np.sqrt(N) / ref.mean())}
out = result_path("integer-qat", data_token(name), weights8(model.weights_sha256), f"w{wb}a{ab}")
write_result(out, res)
