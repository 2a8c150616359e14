"""Write the golden files of coder revision 7 (once; never rewrite them: tests/test_portable.py
decodes them and re-encodes their data to the same streams, and the cross-kernel test decodes
them under other instruction sets and thread counts). The same images as revision 6's, at a step
count where the chain's kept tables drop entries and its Gaussians escape.

    python3 tests/golden/make_rev7.py
"""
import numpy as np
import torch

import bfn_codec
from bfn_codec.data import binarise
from make_rev6 import SAMPLE, write_golden

FILES = {  # name: (model, images of the bundled sample, transform, steps)
    "rev7-fmnist-binary-32": ("fmnist-binary", slice(40, 72), binarise, 60),
    "rev7-fmnist-6": ("fmnist", slice(40, 46), lambda a: a, 40),
}


def golden_data(name):
    model, part, prep, _ = FILES[name]
    return model, np.ascontiguousarray(prep(np.load(SAMPLE)[part]))


def settings(name) -> dict:
    return {"model": FILES[name][0], "steps": FILES[name][3], "mode": "bfn", "portable": 7}


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in FILES:
        blob = bfn_codec.compress(golden_data(name)[1], **settings(name))
        write_golden(name, blob, golden_data(name)[1])
