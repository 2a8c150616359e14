"""Portable files across package versions: decode the golden files of revisions 6, 7 and 8
(tests/golden/rev6-*, rev7-*, rev8-*) and re-encode their data, with the settings they were written
with, in a fresh virtual environment with other numpy / torch versions, and compare with the
committed bytes. (tests/test_portable.py does the same across kernel settings
within one environment; package versions need their own environments, so this is a benchmark.)

    python3 benchmarks/portable_envs.py --numpy 1.26.4
    python3 benchmarks/portable_envs.py --torch 2.14.1

(The other torch on the development machine is 2.14.1, a CUDA build: pip installs its nvidia-*
packages too, about 5.5 GB; it runs on the CPU.)

Writes results/portable-envs-both-rev6-8.json (one entry per environment tried, merged with the
entries already there; portable-envs-both-rev6-7.json holds the runs from before revision 8).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from result_names import result_path, write_result  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = ["constriction==0.5.0", "click>=8.1", "safetensors>=0.4", "numba>=0.60"]  # pyproject's, less torch and numpy
GOLDEN = os.path.join(ROOT, "tests", "golden")
CHILD = """
import json, sys, numpy as np, torch, constriction, importlib.metadata as md
sys.path.insert(0, {golden!r})
import bfn_codec
from bfn_codec.container import read
from make_rev6 import FILES
from make_rev7 import FILES as FILES7, settings as settings7
from make_rev8 import FILES as FILES8, settings as settings8
from make_rev8_w7a10 import FILES as FILES8W, settings as settings8w
from bfn_codec.models import load_model, with_calibration
torch.set_num_threads(1)
out = {{"numpy": np.__version__, "torch": torch.__version__, "constriction": md.version("constriction"), "files": {{}}}}
written_with = {{name: dict(model=FILES[name][0], mode="bfn", portable=6) for name in FILES}}
written_with.update({{name: settings7(name) for name in FILES7}})
written_with.update({{name: settings8(name) for name in FILES8}})
written_with.update({{name: settings8w(name) for name in FILES8W}})
for name in sorted(written_with):
    blob = open({golden!r} + "/" + name + ".bfn", "rb").read()
    x = np.load({golden!r} + "/" + name + ".npy")
    decoded = bool(np.array_equal(bfn_codec.decompress(blob), x))
    # with the integer calibration the file names (the zoo keeps earlier ones)
    spec = dict(written_with[name])
    spec["model"] = with_calibration(load_model(spec["model"]), read(blob)[0].model_hash)
    again = bfn_codec.compress(x, **spec)
    out["files"][name] = {{"decoded": decoded, "same_stream": read(again)[1] == read(blob)[1]}}
# whether the compiled kernels (the exact arithmetic's twins, the fused integer network) ran
from bfn_codec import exactmath
out["compiled_kernels"] = exactmath.compiled("norm_silu") is not None
print(json.dumps(out))
"""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--numpy", default=None, help="numpy version for the environment")
    ap.add_argument("--torch", default="2.13.0", help="torch version for the environment")
    ap.add_argument("--out", default=result_path("portable-envs", "both", "rev6-8"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        venv = os.path.join(d, "venv")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        py = os.path.join(venv, "bin", "python")
        pins = [f"torch=={args.torch}"] + ([f"numpy=={args.numpy}"] if args.numpy else [])
        subprocess.run([py, "-m", "pip", "install", "-q", *pins], check=True)
        # the project pins the torch it is developed with; the point here is another one, so
        # its other requirements are installed by name and the project itself without them
        subprocess.run([py, "-m", "pip", "install", "-q", *pins, *REQUIREMENTS], check=True)
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
