"""File names of benchmarks/results/: one scheme for every script (see benchmarks/README.md).

    <what>-<data>[-<key>...].json

* ``what``: the measurement (codec, curve, finetune, tail-scan, r-scan, small-files,
  small-files-steps, support-floor, integer-ptq, integer-speed, piece-bounds, context-reach, byte-alphabet-rates, throughput, classical, compare,
  fuzz, loss);
* ``data``: ``binary`` (fmnist-binary), ``8bit`` (fmnist) or ``both`` (one file for both);
* ``key``: what the numbers depend on, most important first: the first 8 hex digits of the
  weights' SHA-256 where the result depends on weights (finetune: base then tuned; a file for
  both models: binary then 8-bit), ``rev<N>`` (the coder revision) where it depends on the coder
  but on no weights, then the run's own settings (images, ``n<steps>``, ``p<grid power>``, ...).

Files of compare.py and report.py are derived from the others and always regenerated, so they
carry no key. Runs replaced by a later run of the same measurement (newer weights or coder
revision) move, unchanged, to benchmarks/results/archive/, which no script reads.
"""
from __future__ import annotations

import glob
import json
import os
import re
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
DATA = {"fmnist-binary": "binary", "fmnist": "8bit"}
# where each committed result came from; report.py renders it into benchmarks/README.md
COMMANDS = os.path.join(HERE, "commands.json")


def data_token(dataset: str) -> str:
    """``binary`` / ``8bit`` for the two Fashion-MNIST data sets, else the data set's own name."""
    return DATA.get(dataset, dataset)


def weights8(sha256: str) -> str:
    return sha256[:8]


def result_path(what: str, data: str, *keys, ext: str = "json") -> str:
    """benchmarks/results/<what>-<data>-<key>-....<ext> (keys that are None or "" left out)."""
    parts = [what, data, *(str(k) for k in keys if k not in (None, ""))]
    return os.path.join(RESULTS, "-".join(parts) + "." + ext)


def number(x: float) -> str:
    """A setting as it appears in a name: 2.0 -> 2, 1.5 -> 1.5."""
    return f"{x:g}"


def results_of(what: str, data: str, directory: str = RESULTS) -> list[str]:
    """The committed files of one measurement, sorted by name (archive/ is not searched)."""
    return sorted(glob.glob(os.path.join(directory, f"{what}-{data}-*.json")))


def pick(what: str, data: str, *shas: str | None) -> str | None:
    """The file of one measurement for the given weights (every hash in its name); when there is
    none, the last file by name; None when there is no file at all."""
    paths = results_of(what, data)
    keys = [weights8(s) for s in shas if s]
    for path in reversed(paths):
        name = os.path.basename(path)
        if keys and all(f"-{k}" in name for k in keys):
            return path
    return paths[-1] if paths else None


def record_command(path: str) -> None:
    """Note in benchmarks/commands.json the command line that wrote ``path`` (a file in
    results/; others are not tracked), so that benchmarks/README.md lists it after report.py."""
    if os.path.dirname(os.path.abspath(path)) != RESULTS:
        return
    root = os.path.dirname(HERE)
    script = os.path.relpath(os.path.abspath(sys.argv[0]), root)
    argv = [os.path.relpath(os.path.abspath(a), root) if os.path.exists(a) and os.path.isabs(a) else a
            for a in sys.argv[1:]]
    name = os.path.basename(path)
    weights = ", ".join(re.findall(r"(?<=-)[0-9a-f]{8}(?=[-.])", name)) or "-"
    book = json.load(open(COMMANDS)) if os.path.exists(COMMANDS) else {"results": {}, "archive": {}}
    book["results"][name] = {"weights": weights, "command": shlex.join(["python3", script, *argv])}
    with open(COMMANDS, "w") as f:
        json.dump(book, f, indent=1, ensure_ascii=False)
        f.write("\n")


def write_result(out: str, data, indent: int = 2) -> str:
    """Write a result as JSON (creating its folder), note the command that wrote it
    (``record_command``) and say where it went."""
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(data, f, indent=indent)
    record_command(out)
    print(f"written to {out}")
    return out
