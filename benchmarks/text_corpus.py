"""The byte model's corpus: freely licensed English text and source code from Debian packages.

    python3 benchmarks/text_corpus.py --out runs/text

writes runs/text/train/ (the training files) and runs/text/heldout/ (never trained on), each file
decompressed where the package ships it gzip'd, and runs/text/manifest.json (every file, its
package, its SHA-256). The split is by package and file, so the held-out text shares no file
with the training text:

* train: the GNU manuals in /usr/share/info except coreutils' (packages bc, bzip2, diffutils,
  ed, findutils, gettext, gnupg, grep, gzip, libffi, libtasn1, nettle, readline, sed, time,
  wget: GFDL or GPL), git's documentation and release notes (/usr/share/doc/git/**/*.txt,
  GPL-2) and the Python standard library's modules a*.py to m*.py (/usr/lib/python3.11, PSF);
* held out: the coreutils manual (/usr/share/info/coreutils.info.gz: English technical prose,
  968,434 bytes) and the standard library's n*.py to z*.py (source code);
* calib: three of the training files, one of each kind (argparse.py, git's 2.30.0 release notes,
  the sed manual), on which `bfn-codec calibrate` measures the integer network's activation
  ranges (docs/training.md).
* text8/: the text8-style corpus of the K = 27 model (bfn_codec/text8.py ``normalise``: a-z and
  single spaces): train.txt from the training split's prose (the manuals and git's documents,
  not the Python modules), heldout.txt from the coreutils manual, and calib.txt, the first
  64 KB of train.txt.
No Bible text is used (it is kept for independent evaluation).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import subprocess
from pathlib import Path

INFO = Path("/usr/share/info")
HELD_OUT_INFO = "coreutils.info.gz"
PYLIB = Path("/usr/lib/python3.11")
CALIBRATION = ["usr_lib_python3.11_argparse.py", "usr_share_doc_git_RelNotes_2.30.0.txt", "usr_share_info_sed.info"]


def package_of(path: Path) -> str:
    try:
        out = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True, check=True).stdout
        return out.split(":", 1)[0]
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/text")
    args = ap.parse_args()
    out = Path(args.out)
    train = sorted(p for p in INFO.glob("*.info*.gz") if p.name != HELD_OUT_INFO)
    train += sorted(Path("/usr/share/doc/git").rglob("*.txt"))
    train += sorted(p for p in PYLIB.glob("*.py") if "a" <= p.name[0] <= "m")
    held = [INFO / HELD_OUT_INFO] + sorted(p for p in PYLIB.glob("*.py") if "n" <= p.name[0] <= "z")
    manifest = {}
    for part, files in (("train", train), ("heldout", held)):
        (out / part).mkdir(parents=True, exist_ok=True)
        entries = []
        for src in files:
            data = read(src)
            name = str(src).strip("/").replace("/", "_").removesuffix(".gz")
            (out / part / name).write_bytes(data)
            entries.append({"source": str(src), "file": name, "bytes": len(data),
                            "package": package_of(src), "sha256": hashlib.sha256(data).hexdigest()})
        manifest[part] = entries
        print(f"{part}: {len(entries)} files, {sum(e['bytes'] for e in entries):,} bytes")
    (out / "calib").mkdir(parents=True, exist_ok=True)
    for name in CALIBRATION:
        (out / "calib" / name).write_bytes((out / "train" / name).read_bytes())
    from bfn_codec.text8 import normalise

    prose = [out / "train" / e["file"] for e in manifest["train"] if not e["file"].endswith(".py")]
    (out / "text8").mkdir(parents=True, exist_ok=True)
    text = b" ".join(normalise(f.read_bytes()) for f in prose)
    (out / "text8" / "train.txt").write_bytes(text)
    (out / "text8" / "calib.txt").write_bytes(text[:1 << 16])
    held = normalise((out / "heldout" / manifest["heldout"][0]["file"]).read_bytes())
    (out / "text8" / "heldout.txt").write_bytes(held)
    manifest["text8"] = {"train": {"from": [f.name for f in prose], "characters": len(text),
                                   "sha256": hashlib.sha256(text).hexdigest()},
                         "heldout": {"from": manifest["heldout"][0]["file"], "characters": len(held),
                                     "sha256": hashlib.sha256(held).hexdigest()}}
    print(f"text8: train {len(text):,} characters, heldout {len(held):,}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
