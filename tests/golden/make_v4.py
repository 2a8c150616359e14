"""Write the golden chunked file (format version 4; run once, never rewrite it: tests/test_parallel.py
decodes it and re-encodes its data to the same bytes).

    python3 tests/golden/make_v4.py
"""
import os

import numpy as np
import torch

import bfn_codec
from bfn_codec.data import binarise

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "bfn_codec", "samples", "fmnist-test-256.npy")
NAME = "v4-fmnist-binary-70"
# 70 images in chunks of 32: two chain chunks (portable arithmetic) and a short fallback chunk
SETTINGS = {"model": "fmnist-binary", "steps": 12, "mode": "bfn", "chunk_items": 32, "portable": 6}


def golden_data():
    return np.ascontiguousarray(binarise(np.load(SAMPLE)[:70]))


if __name__ == "__main__":
    torch.set_num_threads(1)
    x = golden_data()
    from make_rev6 import write_golden

    write_golden(NAME, bfn_codec.compress(x, **SETTINGS), x)
