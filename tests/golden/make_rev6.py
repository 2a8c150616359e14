"""Write the golden files of coder revision 6 (run once per new arithmetic revision; never
rewrite existing ones: tests/test_portable.py decodes them and re-encodes their data to the same
bytes, which is how a change to any probability is caught before it orphans users' files).

    python3 tests/golden/make_rev6.py
"""
import os

import numpy as np
import torch

import bfn_codec
from bfn_codec.data import binarise

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLE = os.path.join(HERE, "..", "..", "bfn_codec", "samples", "fmnist-test-256.npy")
FILES = {  # name: (model, images of the bundled sample, transform)
    "rev6-fmnist-binary-32": ("fmnist-binary", slice(40, 72), binarise),
    "rev6-fmnist-6": ("fmnist", slice(40, 46), lambda a: a),
}


def write_golden(name, blob: bytes, x: np.ndarray) -> None:
    """NAME.bfn and NAME.npy in this folder; an existing golden file is never rewritten."""
    for ext, write in ((".bfn", lambda p: open(p, "wb").write(blob)), (".npy", lambda p: np.save(p, x))):
        path = os.path.join(HERE, name + ext)
        if os.path.exists(path):
            raise SystemExit(f"{path} exists: golden files are never rewritten")
        write(path)
    print(name, len(blob), "bytes")


def golden_data(name):
    model, part, prep = FILES[name]
    return model, np.ascontiguousarray(prep(np.load(SAMPLE)[part]))


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in FILES:
        model, x = golden_data(name)
        blob = bfn_codec.compress(x, model=model, mode="bfn", portable=6)
        write_golden(name, blob, x)
