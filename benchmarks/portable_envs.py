"""Portable files across package versions: decode the portable golden files (the arrays of coder
revisions 6, 7 and 8, tests/golden/rev6-* ... rev8-*; the byte and text8-style files v6-bfn-*; the
colour image v5-rgb-photo-rgb; the list is tests/golden/check_golden.py's) and re-encode their data,
with the settings they were written with, in a fresh virtual environment with other numpy / torch
versions, and compare with the committed bytes. (tests/test_portable.py does the same across
kernel settings within one environment; package versions need their own environments, so this is
a benchmark.)

    python3 benchmarks/portable_envs.py --numpy 1.26.4
    python3 benchmarks/portable_envs.py --torch 2.14.1

(The other torch on the development machine is 2.14.1, a CUDA build: pip installs its nvidia-*
packages too, about 5.5 GB; it runs on the CPU.)

Writes results/portable-envs-all-rev6-8-v5-v6.json (one entry per environment tried, merged with
the entries already there). The portable-envs-both-* files hold earlier runs, which covered the
array files only (rev6-7: before revision 8).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, write_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN = os.path.join(ROOT, "tests", "golden")


def requirements() -> list[str]:
    """pyproject's dependencies less torch and numpy, whose versions are the point here."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return [d for d in deps if re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() not in ("torch", "numpy")]


CHILD = """
import json, sys, numpy as np, torch, constriction, importlib.metadata as md
sys.path.insert(0, {golden!r})
torch.set_num_threads(1)
import check_golden
out = {{"numpy": np.__version__, "torch": torch.__version__, "constriction": md.version("constriction"),
        "files": {{name: {{"decoded": d, "same_stream": s}} for name, (d, s) in check_golden.check().items()}}}}
# whether the compiled kernels (the exact arithmetic's twins, the fused integer network) ran
from bfn_codec import exactmath
out["compiled_kernels"] = exactmath.compiled("norm_silu") is not None
print(json.dumps(out))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numpy", default=None, help="numpy version for the environment")
    ap.add_argument("--torch", default="2.13.0", help="torch version for the environment")
    ap.add_argument("--out", default=result_path("portable-envs", "all", "rev6-8", "v5", "v6"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        venv = os.path.join(d, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        py = os.path.join(venv, "bin", "python")
        pins = [f"torch=={args.torch}"] + ([f"numpy=={args.numpy}"] if args.numpy else [])
        subprocess.run([py, "-m", "pip", "install", "-q", *pins], check=True)
        # the project pins the torch it is developed with; the point here is another one, so
        # its other requirements are installed by name and the project itself without them
        subprocess.run([py, "-m", "pip", "install", "-q", *pins, *requirements()], check=True)
        subprocess.run([py, "-m", "pip", "install", "-q", "--no-deps", "-e", ROOT], check=True)
        res = subprocess.run([py, "-c", CHILD.format(golden=GOLDEN)], capture_output=True, text=True, cwd=d)
        if res.returncode:
            raise SystemExit(res.stderr[-3000:])
        entry = json.loads(res.stdout.strip().splitlines()[-1])
    # the file merges runs of several environments: each keeps the command that made it
    entry["command"] = " ".join(["python3 benchmarks/portable_envs.py", *(argv if argv is not None else sys.argv[1:])])
    print(entry)
    data = json.load(open(args.out)) if os.path.exists(args.out) else {"runs": []}
    data["runs"] = [r for r in data["runs"] if (r["numpy"], r["torch"]) != (entry["numpy"], entry["torch"])] + [entry]
    write_result(args.out, data)


if __name__ == "__main__":
    main()
