"""Write the golden file of coder revision 8 with fmnist-binary's second integer calibration
(7-bit weights, 10-bit activations: one float32 kernel call for most convolutions), once; never
rewrite it. The same images and step count as revision 8's file of the first calibration, which
stays in the zoo (config.json "integer_earlier") so that file keeps decoding too.

    python3 tests/golden/make_rev8_w7a10.py
"""
import torch

import bfn_codec
from bfn_codec.models import load_model
from make_rev6 import write_golden
from make_rev7 import FILES as FILES7, golden_data as golden_data7

FILES = {"rev8-fmnist-binary-w7a10-32": FILES7["rev7-fmnist-binary-32"]}


def golden_data(name):
    return golden_data7("rev7-fmnist-binary-32")


def settings(name) -> dict:
    return {"model": FILES[name][0], "steps": FILES[name][3], "mode": "bfn", "portable": 8}


if __name__ == "__main__":
    cal = load_model("fmnist-binary").integer
    assert (cal["weight_bits"], cal["act_bits"]) == (7, 10), "the bundled calibration is not the one this file pins"
    torch.set_num_threads(1)
    for name in FILES:
        blob = bfn_codec.compress(golden_data(name)[1], **settings(name))
        write_golden(name, blob, golden_data(name)[1])
