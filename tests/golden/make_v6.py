"""Write the golden files of format version 6 (any file's bytes; run once, never rewrite them:
tests/test_bytes.py decodes each and re-encodes its bytes to the same file).

    python3 tests/golden/make_v6.py

* v6-bfn-text-bytes.bfn: text through the bundled byte model's chain (mode bfn, n = 4, portable
  arithmetic), its LZMA2 seed first;
* v6-lzma2.bfn, v6-stored.bfn: the same text as LZMA2, and bytes that LZMA2 cannot shrink, stored
  (mode auto without a model does not run the network);
* v6-bfn-text8-chars.bfn: text8-style words (alphabet 1, a-z and spaces) through the bundled
  K = 27 model's chain (mode bfn, n = 4, portable arithmetic), its LZMA2 seed first.

    python3 tests/golden/make_v6.py v6-bfn-text8-chars     # only the files named
"""
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# name -> (file name stored, settings)
GOLDEN = {"v6-bfn-text-bytes": ("notes.txt", {"model": "text-bytes", "steps": 4, "mode": "bfn", "portable": 6}),
          "v6-lzma2": ("notes.txt", {"mode": "fallback"}),
          "v6-stored": ("noise.bin", {"mode": "fallback"}),
          "v6-bfn-text8-chars": ("words.txt", {"model": "text8-chars", "steps": 4, "mode": "bfn", "portable": 6})}


def golden_data(name: str) -> bytes:
    """The bytes of each golden file, from integer arithmetic alone: words drawn by a fixed
    linear congruential sequence (varied enough that the LZMA2 seed does not hold every window),
    or for the stored file the sequence's bytes themselves."""
    state, values = 2026, []
    count = {"v6-stored": 300, "v6-bfn-text8-chars": 9000}.get(name, 4000)
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        values.append(state >> 33)
    if name == "v6-stored":
        return bytes(v & 0xFF for v in values)
    words = [b"the", b"model", b"sends", b"noisy", b"messages", b"and", b"a", b"receiver", b"guesses",
             b"each", b"byte", b"of", b"text", b"file", b"coder", b"bits", b"back", b"stack", b"window"]
    if name == "v6-bfn-text8-chars":  # only a-z and spaces, words at random: a long file
        return b" ".join(words[v % len(words)] for v in values)
    out, line = [], 0
    for v in values:
        out.append(words[v % len(words)])
        line += len(out[-1]) + 1
        out.append(b"\n" if line > 60 and v % 3 == 0 else b" ")
        line = 0 if out[-1] == b"\n" else line
    return b"".join(out)[:7000]


if __name__ == "__main__":
    torch.set_num_threads(1)
    from make_v5 import write_once

    from bfn_codec.api import compress_bytes

    import sys

    for name, (stored, settings) in GOLDEN.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        blob, stats = compress_bytes(golden_data(name), name=stored, **settings)
        write_once(os.path.join(HERE, name + ".bfn"), lambda p: open(p, "wb").write(blob))
        print(name, stats["stream"], len(blob), "bytes written")
