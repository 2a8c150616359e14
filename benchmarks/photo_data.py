"""The photographs the colour model trains on and the held-out ones the image benchmark codes.

Both come from Debian packages of freely licensed desktop backgrounds, never from the same
package:

* training: ``mate-backgrounds``, the 12 photographs in /usr/share/backgrounds/mate/nature/
  (GPL-2+, debian/copyright of the package), and ``plasma-workspace-wallpapers``, the 12 of its
  wallpapers that are photographs (``PLASMA_PHOTOS``, the largest JPEG of each; GPL-2+; its
  other wallpapers are renderings and drawings), each reduced 2x, 3x and 4x (box filter: a
  JPEG's block artefacts average out, and three scales give three times the patches), and each
  reduced image also mirrored left to right (``--no-mirror``: without; ``--only-mate``: the
  12 photographs the bundled colour model (photo-rgb, d7c8e620) was trained on, unmirrored);
* evaluation: every JPEG of ``lomiri-wallpapers-16.04`` (15 photographs, CC-BY-4.0,
  CC-BY-SA-4.0 and CC0-1.0), reduced 4x, then cut to 64x64, 256x256 and 1024x768 (the centre;
  the whole reduced photograph where it is smaller), each as RGB and as grey (ITU-R 601 luma,
  Pillow's convert("L")).

    apt-get install -y mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers-16.04
    python3 benchmarks/photo_data.py            # -> runs/photos/train, runs/photos/eval

On a machine without the packages (a lent GPU machine reaches no network), ``--train-from
DIR`` reads the same training JPEGs from DIR, as ``--copy-sources DIR`` wrote them here.

The images shipped with scikit-image are not used: they are kept aside for independent
evaluation.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from PIL import Image

TRAIN_GLOB = "/usr/share/backgrounds/mate/nature/*.jpg"
PLASMA_DIR = "/usr/share/wallpapers"
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf",
                 "Grey", "Kite", "OneStandsOut", "Path", "summer_1am", "Volna")
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


def plasma_jpegs() -> list[Path]:
    """The largest JPEG of each of ``PLASMA_PHOTOS`` (each wallpaper comes in several sizes)."""
    out = []
    for name in PLASMA_PHOTOS:
        sizes = sorted(Path(PLASMA_DIR, name, "contents", "images").glob("*.jpg"),
                       key=lambda f: int(f.stem.split("x")[0]) * int(f.stem.split("x")[1]))
        if not sizes:
            raise SystemExit(f"no {name} wallpaper: apt-get install -y plasma-workspace-wallpapers")
        out.append(sizes[-1])
    return out


def training_sources(only_mate: bool) -> list[tuple[str, Path]]:
    """(name, JPEG) of every training photograph, from the installed packages."""
    mate = sorted(Path("/").glob(TRAIN_GLOB.lstrip("/")))
    if not mate:
        raise SystemExit("no training photographs: apt-get install -y mate-backgrounds")
    sources = [(f.stem, f) for f in mate]
    if not only_mate:
        sources += [(f"plasma-{name}", f) for name, f in zip(PLASMA_PHOTOS, plasma_jpegs())]
    return sources


def centre_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    width, height = min(width, img.width), min(height, img.height)
    left, top = (img.width - width) // 2, (img.height - height) // 2
    return img.crop((left, top, left + width, top + height))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/photos", help="writes OUT/train and OUT/eval")
    ap.add_argument("--only-mate", action="store_true",
                    help="only the 12 mate-backgrounds photographs, unmirrored (the first colour model's set)")
    ap.add_argument("--no-mirror", action="store_true", help="no mirrored copies of the training images")
    ap.add_argument("--train-from", metavar="DIR", default=None,
                    help="read the training JPEGs (NAME.jpg) from DIR instead of the installed packages")
    ap.add_argument("--copy-sources", metavar="DIR", default=None,
                    help="copy the training JPEGs to DIR as NAME.jpg (for --train-from elsewhere) and stop")
    ap.add_argument("--skip-eval", action="store_true", help="write only OUT/train")
    args = ap.parse_args()
    if args.train_from:
        sources = [(f.stem, f) for f in sorted(Path(args.train_from).glob("*.jpg"))]
        if args.only_mate:
            sources = [(name, f) for name, f in sources if not name.startswith("plasma-")]
        if not sources:
            raise SystemExit(f"no NAME.jpg files in {args.train_from}")
    else:
        sources = training_sources(args.only_mate)
    if args.copy_sources:
        Path(args.copy_sources).mkdir(parents=True, exist_ok=True)
        for name, f in sources:
            shutil.copyfile(f, Path(args.copy_sources) / f"{name}.jpg")
        print(f"{len(sources)} training JPEGs copied to {args.copy_sources}")
        return
    mirror = not (args.no_mirror or args.only_mate)
    train, evaluation = Path(args.out) / "train", Path(args.out) / "eval"
    train.mkdir(parents=True, exist_ok=True)
    for name, f in sources:
        with Image.open(f) as img:
            img = img.convert("RGB")
            for k in TRAIN_SCALES:
                small = img.reduce(k)
                small.save(train / f"{name}-{k}x.png")
                if mirror:
                    small.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(train / f"{name}-{k}x-mirror.png")
    if not args.skip_eval:
        evaluation.mkdir(parents=True, exist_ok=True)
        for f in package_jpegs(EVAL_PACKAGE):
            with Image.open(f) as img:
                small = img.convert("RGB").reduce(EVAL_SCALE)
                for width, height in EVAL_SIZES:
                    crop = centre_crop(small, width, height)
                    name = f"{f.stem.split('_by_')[0]}-{crop.width}x{crop.height}"
                    crop.save(evaluation / f"{name}-rgb.png")
                    crop.convert("L").save(evaluation / f"{name}-grey.png")
    print(f"{len(list(train.iterdir()))} training images in {train}" +
          ("" if args.skip_eval else f", {len(list(evaluation.iterdir()))} evaluation images in {evaluation}"))


if __name__ == "__main__":
    main()
