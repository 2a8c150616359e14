"""The photographs the colour model trains on and the held-out ones the image benchmark codes.

Both come from Debian packages of freely licensed desktop backgrounds, never from the same
package:

* training: ``mate-backgrounds``, the 12 photographs in /usr/share/backgrounds/mate/nature/
  (GPL-2+, debian/copyright of the package), each reduced 2x, 3x and 4x (box filter: a JPEG's
  block artefacts average out, and three scales give three times the patches);
* evaluation: every JPEG of ``lomiri-wallpapers-16.04`` (15 photographs, CC-BY-4.0,
  CC-BY-SA-4.0 and CC0-1.0), reduced 4x, then cut to 64x64, 256x256 and 1024x768 (the centre;
  the whole reduced photograph where it is smaller), each as RGB and as grey (ITU-R 601 luma,
  Pillow's convert("L")).

    apt-get install -y mate-backgrounds lomiri-wallpapers-16.04
    python3 benchmarks/photo_data.py            # -> runs/photos/train, runs/photos/eval

The images shipped with scikit-image are not used: they are kept aside for independent
evaluation.
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from PIL import Image

TRAIN_GLOB = "/usr/share/backgrounds/mate/nature/*.jpg"
EVAL_PACKAGE = "lomiri-wallpapers-16.04"
TRAIN_SCALES = (2, 3, 4)
EVAL_SCALE = 4
EVAL_SIZES = ((64, 64), (256, 256), (1024, 768))


def package_jpegs(package: str) -> list[Path]:
    try:
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        raise SystemExit(f"package {package} is not installed: apt-get install -y {package}") from None
    return sorted(Path(p) for p in listing.split() if p.lower().endswith((".jpg", ".jpeg")))


def centre_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    width, height = min(width, img.width), min(height, img.height)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return img.crop((left, top, left + width, top + height))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/photos", help="writes OUT/train and OUT/eval")
    args = ap.parse_args()
    train_files = sorted(Path("/").glob(TRAIN_GLOB.lstrip("/")))
    if not train_files:
        raise SystemExit("no training photographs: apt-get install -y mate-backgrounds")
    train, evaluation = Path(args.out) / "train", Path(args.out) / "eval"
    train.mkdir(parents=True, exist_ok=True)
    evaluation.mkdir(parents=True, exist_ok=True)
    for f in train_files:
        with Image.open(f) as img:
            img = img.convert("RGB")
            for k in TRAIN_SCALES:
                img.reduce(k).save(train / f"{f.stem}-{k}x.png")
    for f in package_jpegs(EVAL_PACKAGE):
        with Image.open(f) as img:
            small = img.convert("RGB").reduce(EVAL_SCALE)
            for width, height in EVAL_SIZES:
                crop = centre_crop(small, width, height)
                name = f"{f.stem.split('_by_')[0]}-{crop.width}x{crop.height}"
                crop.save(evaluation / f"{name}-rgb.png")
                crop.convert("L").save(evaluation / f"{name}-grey.png")
    print(f"{len(list(train.iterdir()))} training images in {train}, "
          f"{len(list(evaluation.iterdir()))} evaluation images in {evaluation}")


if __name__ == "__main__":
    main()
