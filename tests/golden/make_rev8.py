"""Write the golden files of coder revision 8 (once; never rewrite them: tests/test_portable.py
decodes them and re-encodes their data to the same streams, and the cross-kernel test decodes
them under other instruction sets and thread counts). The same images and step counts as
revision 7's.

    python3 tests/golden/make_rev8.py
"""
import torch

import bfn_codec
from make_rev6 import write_golden
from make_rev7 import FILES as FILES7, golden_data as golden_data7

FILES = {name.replace("rev7", "rev8"): spec for name, spec in FILES7.items()}


def golden_data(name):
    return golden_data7(name.replace("rev8", "rev7"))


def settings(name) -> dict:
    return {"model": FILES[name][0], "steps": FILES[name][3], "mode": "bfn", "portable": 8}


if __name__ == "__main__":
    torch.set_num_threads(1)
    for name in FILES:
        blob = bfn_codec.compress(golden_data(name)[1], **settings(name))
        write_golden(name, blob, golden_data(name)[1])
