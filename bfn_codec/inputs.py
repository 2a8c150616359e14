"""The one input dispatcher: what a path (or standard input) holds, read for the coder.

* a folder: every image file in it and its subfolders (names relative to it, sorted, so the
  order is the same on every machine); other files are skipped and listed in ``skipped``;
* a file whose bytes are a .npy array, an IDX file (or either gzip'd): an array;
* a file Pillow reads as PNG, PGM/PPM, TIFF or BMP: an image file;
* a bfn-codec file: refused (it is compressed already);
* any other file: its bytes (text, source code, PDFs, binaries; also a JPEG or a 16-bit PNG,
  and a .npy array of another dtype: formats whose pixels or values we do not code, but whose
  bytes come back exactly), with ``note`` saying why a file that looked like an image or an
  array is coded as bytes.
The kind is found from the bytes, never from the name. A corrupt image file stays an error
(it would compress as bytes, but the user most likely wants to know).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .container import MAGIC
from .data import DataError
from .errors import NotCodedAsImage
from .files import NPY_MAGIC, parse_array, read_input_bytes
from . import images
from .images import is_image, read_image

@dataclass
class Input:
    path: str
    kind: str  # "array", "images" or "bytes"
    array: np.ndarray | None = None
    layout: str | None = None  # kind "array": "IDX" for an IDX file, else None (read from the shape)
    files: list = field(default_factory=list)  # kind "images": [ImageFile]
    folder: bool = False
    skipped: list = field(default_factory=list)  # folder: [(relative name, why)]
    data: bytes = b""  # kind "bytes": the file's contents
    note: str = ""  # kind "bytes": why a file that looked like an image or array is coded as bytes

    @property
    def name(self) -> str:
        """The file name stored for kind "bytes" (no folders; "" for standard input)."""
        return "" if self.path == "-" else os.path.basename(self.path.rstrip("/"))

    @property
    def values(self) -> int:
        if self.kind == "array":
            return int(self.array.size)
        if self.kind == "bytes":
            return len(self.data)
        return sum(int(f.pixels.size) for f in self.files)


def _is_array(raw: bytes) -> bool:
    return raw[:6] == NPY_MAGIC or raw[:2] == b"\x1f\x8b" or (len(raw) >= 4 and raw[:3] == b"\x00\x00\x08")


def classify(raw: bytes, name: str) -> Input:
    """The Input that ``raw`` (the bytes of the file ``name``) holds."""
    if raw[:4] == MAGIC:
        raise DataError(f"{name} is a bfn-codec file already (decompress it with -d)")
    if _is_array(raw):
        try:
            array, layout = parse_array(raw, name)
        except DataError as e:
            return Input(name, "bytes", data=raw, note=str(e))
        return Input(name, "array", array=array, layout=layout)
    if is_image(raw):
        try:
            image = read_image(raw, Path(name).name if name != "-" else "stdin.png")
        except NotCodedAsImage as e:
            return Input(name, "bytes", data=raw, note=str(e))
        return Input(name, "images", files=[image])
    return Input(name, "bytes", data=raw)


def read_folder(path: str) -> Input:
    """Every image file under ``path`` (images.read_folder)."""
    files, skipped = images.read_folder(path)
    return Input(path, "images", files=files, folder=True, skipped=skipped)


def read_input(path: str) -> Input:
    """What ``path`` holds (``-``: standard input); a one-line DataError if it is none of the kinds."""
    if path != "-" and os.path.isdir(path):
        return read_folder(path)
    return classify(read_input_bytes(path), path)
