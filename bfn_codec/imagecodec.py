"""Images of any size, grey or colour, and image files: each entry of a version-5 file
(imageset.py) coded by the smallest of the BFN stream of its tiles and the classical streams.

The BFN stream is the item coder's version-3 file of ``images.to_tiles`` of the entry: the
model codes P x Q tiles, whatever the image size, so memory follows the coder's batch, not the
image. The classical streams (PNG, WebP lossless: classical.py) need no network, so an image
unlike the model's training data never costs more than the best of them plus the index
(about 20 bytes and the name). The item coder is passed in (``encode_items``, ``decode_items``:
api.py's), so this layer does not depend on the coder's modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import classical
from .container import FormatError
from .data import DataError
from .images import ImageFile, check_patch, from_nhwc, from_tiles, nhwc_shape, to_nhwc, to_tiles
from .imageset import (PIXELS_HASH_BYTES, Entry, ImageSet, pixels_checksum, read_imageset, stream_bytes,
                       write_imageset)

# encode_items(tiles [T, c, P, Q], model_choice) -> (version-3 file, statistics)
EncodeItems = Callable[[np.ndarray], tuple]
# decode_items(version-3 file) -> (tiles [T, c, P, Q])
DecodeItems = Callable[[bytes], np.ndarray]
# model_for(pixels [N, H, W, C]) -> the model that codes them (for its item shape), or None
ModelFor = Callable[[np.ndarray], object]
# estimate_bits(tiles [T, c, P, Q], model) -> the model's L^n + L^r on them, bits per value
EstimateBits = Callable[[np.ndarray, object], float]

# In auto mode an entry of more tiles than this first has the model's loss estimated on a sample
# of SAMPLE_TILES of them (n + 1 network calls each, a few seconds): the BFN stream, which costs
# n + 1 network calls per tile on each side (minutes to hours for a photograph), is only coded if
# that estimate is below the best classical stream's bits per value.
PROBE_ABOVE_TILES = 64
SAMPLE_TILES = 16


@dataclass
class Coding:
    """How to code each entry: ``mode`` auto (the smallest stream), bfn (always the BFN stream)
    or fallback (the smallest classical stream, no network)."""
    encode_items: EncodeItems
    model_for: ModelFor
    mode: str = "auto"
    estimate_bits: EstimateBits | None = None


def encode_entry(pixels: np.ndarray, coding: Coding, name: str = "") -> tuple[str, bytes, dict]:
    """(stream name, stream bytes, statistics) for images [N, H, W, C]: the smallest candidate."""
    candidates, info = {}, {}
    if coding.mode != "bfn":
        binary = pixels.size > 0 and int(pixels.max()) <= 1
        for stream in classical.STREAMS:
            data = classical.encode(pixels, stream, binary)
            if data is not None:
                candidates[stream] = data
    if coding.mode != "fallback":
        model = coding.model_for(pixels)
        if len(model.shape) != 3:
            raise DataError(f"model {model.name} codes sequences, not images")
        check_patch(pixels.shape[-1], tuple(model.shape), model.name)
        tiles = to_tiles(pixels, tuple(model.shape))
        probe = _probe(tiles, model, candidates, pixels.size, coding)
        if probe is None or probe["estimate_bits_per_value"] < probe["classical_bits_per_value"]:
            candidates["bfn"], info = coding.encode_items(tiles, model)
        info = dict(info, tiles=len(tiles), tile_shape=tuple(model.shape), **({"probe": probe} if probe else {}))
    stream = min(candidates, key=lambda s: (len(candidates[s]), s != "bfn"))
    info["candidates"] = {s: len(d) for s, d in candidates.items()}
    return stream, candidates[stream], info


def _probe(tiles, model, candidates: dict, values: int, coding: Coding) -> dict | None:
    """In auto mode, for an entry of many tiles: the model's estimated bits per value on an even
    sample of its tiles beside the best classical stream's (None: no probe, code the BFN stream)."""
    if coding.mode != "auto" or coding.estimate_bits is None or len(tiles) <= PROBE_ABOVE_TILES or not candidates:
        return None
    sample = tiles[np.linspace(0, len(tiles) - 1, SAMPLE_TILES).round().astype(int)]
    return {"tiles": SAMPLE_TILES, "estimate_bits_per_value": float(coding.estimate_bits(sample, model)),
            "classical_bits_per_value": 8 * min(len(d) for d in candidates.values()) / values}


def _entry(pixels: np.ndarray, stream: str, data: bytes, **fields) -> Entry:
    N, H, W, C = pixels.shape
    return Entry(N, H, W, C, stream, len(data), pixels_checksum(pixels)[:PIXELS_HASH_BYTES], **fields)


def compress_files(files: list[ImageFile], coding: Coding, folder: bool = False,
                   progress: Callable[[int, ImageFile], None] | None = None) -> tuple[bytes, dict]:
    """One version-5 file of image files (kind "files"): each file its own entry and stream."""
    entries, streams, per_file = [], [], []
    for i, f in enumerate(files):
        if progress:
            progress(i, f)
        stream, data, info = encode_entry(f.pixels, coding, f.name)
        entries.append(_entry(f.pixels, stream, data, name=f.name, file_format=f.file_format, mode=f.mode))
        streams.append(data)
        per_file.append(dict(name=f.name, stream=stream, bytes=len(data), **{k: v for k, v in info.items()
                                                                              if k in ("candidates", "tiles", "probe")}))
    blob = write_imageset(ImageSet("files", entries, folder=folder), streams)
    return blob, {"mode": "images", "files": per_file}


def compress_array(array: np.ndarray, layout: str, coding: Coding) -> tuple[bytes, dict]:
    """One version-5 file of an array of images (kind "array", one entry)."""
    pixels = np.ascontiguousarray(to_nhwc(array, layout))
    stream, data, info = encode_entry(pixels, coding)
    image_set = ImageSet("array", [_entry(pixels, stream, data)], layout=layout, array_shape=tuple(array.shape))
    return write_imageset(image_set, [data]), dict(info, mode=stream if stream != "bfn" else info.get("mode"),
                                                   stream=stream)


def classical_array_file(array: np.ndarray, layout: str) -> bytes | None:
    """The version-5 file of ``array`` with the smallest classical stream (a candidate beside the
    item coder's file for arrays of the model's item shape), or None if no stream holds it."""
    pixels = np.ascontiguousarray(to_nhwc(array, layout))
    if pixels.shape[-1] > 4:
        return None
    binary = pixels.size > 0 and int(pixels.max()) <= 1
    best = None
    for stream in classical.STREAMS:
        data = classical.encode(pixels, stream, binary)
        if data is not None and (best is None or len(data) < len(best[1])):
            best = (stream, data)
    if best is None:
        return None
    image_set = ImageSet("array", [_entry(pixels, *best)], layout=layout, array_shape=tuple(array.shape))
    return write_imageset(image_set, [best[1]])


def decode_entry(blob, entry: Entry, decode_items: DecodeItems, tile_shape_of: Callable[[bytes], tuple]) -> np.ndarray:
    """The pixels [N, H, W, C] of one entry, checked against its checksum."""
    data = stream_bytes(blob, entry)
    if entry.stream == "bfn":
        patch = tile_shape_of(data)
        tiles = np.asarray(decode_items(data))
        try:
            check_patch(entry.channels, patch, "of the file")
            pixels = from_tiles(tiles.reshape(-1, *patch), entry.shape, patch)
        except (DataError, ValueError) as e:
            raise FormatError(f"the BFN stream does not hold the entry's images ({e})") from None
    else:
        pixels = classical.decode(data, entry.stream, entry.shape)
    if pixels_checksum(pixels)[:PIXELS_HASH_BYTES] != entry.pixels_hash:
        raise FormatError(f"decoded pixels{' of ' + entry.name if entry.name else ''} do not match the "
                          "stored checksum: the file is corrupt")
    return pixels


def decompress(blob, decode_items: DecodeItems, tile_shape_of: Callable[[bytes], tuple],
               progress: Callable[[int, Entry], None] | None = None) -> tuple[ImageSet, list]:
    """(the index, the pixels [N, H, W, C] of each entry)."""
    image_set = read_imageset(blob)
    out = []
    for i, e in enumerate(image_set.entries):
        if progress:
            progress(i, e)
        out.append(decode_entry(blob, e, decode_items, tile_shape_of))
    return image_set, out


def as_array(image_set: ImageSet, pixels: list) -> np.ndarray:
    """A kind-"array" file's array, in the shape and layout it was given in."""
    array = from_nhwc(pixels[0], image_set.layout)
    if nhwc_shape(array.shape, image_set.layout) != pixels[0].shape or array.shape != image_set.array_shape:
        raise FormatError("the decoded images do not make the stored array shape")
    return array
