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
from .images import ImageFile, check_patch, from_nhwc, from_tiles, nhwc_shape, tiles_per_image, to_nhwc, to_tiles
from .imageset import (PIXELS_HASH_BYTES, Entry, ImageSet, entry_context, pixels_checksum, pool_bytes,
                       read_imageset, stream_bytes, write_imageset)

# encode_items(tiles [T, c, P, Q], model_choice) -> (version-3 file, statistics)
EncodeItems = Callable[[np.ndarray], tuple]
# decode_items(version-3 file) -> (tiles [T, c, P, Q])
DecodeItems = Callable[[bytes], np.ndarray]
# model_for(pixels [N, H, W, C]) -> the model that codes them (for its item shape), or None
ModelFor = Callable[[np.ndarray], object]
# estimate_bits(tiles [T, c, P, Q], model) -> the model's L^n + L^r on them, bits per value
EstimateBits = Callable[[np.ndarray, object], float]

# In auto mode an entry of more tiles than a sample first has the model's loss estimated on
# SAMPLE_TILES of them (n + 1 network calls each, a few seconds): the BFN stream, which costs
# n + 1 network calls per tile on each side (minutes to hours for a photograph), is only coded if
# that estimate is below the best classical stream's bits per value.
SAMPLE_TILES = 16
PROBE_ABOVE_TILES = SAMPLE_TILES
# Image files of at most this many tiles share one chain, the pool (imageset.py), when there are
# several and their model is the same: a chain pays a seed of a few dozen items before it saves
# anything, so small images coded one by one would never beat PNG. The pool is kept if it is
# smaller than the pooled images' best classical streams together (mode auto), always in mode bfn.
POOL_MAX_TILES = 64


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
        candidates = classical_candidates(pixels)
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


def _entry(pixels: np.ndarray, stream: str, data: bytes, image_set: ImageSet, **fields) -> Entry:
    """The entry of ``pixels`` in ``image_set`` (its checksum covers entry_context)."""
    N, H, W, C = pixels.shape
    entry = Entry(N, H, W, C, stream, len(data), b"", **fields)
    entry.pixels_hash = pixels_checksum(pixels, entry_context(image_set, entry))[:PIXELS_HASH_BYTES]
    return entry


def classical_candidates(pixels: np.ndarray) -> dict:
    """{stream: bytes} of the classical streams that can hold images [N, H, W, C]."""
    binary = pixels.size > 0 and int(pixels.max()) <= 1
    found = {stream: classical.encode(pixels, stream, binary) for stream in classical.STREAMS}
    return {stream: data for stream, data in found.items() if data is not None}


def _pool_members(files: list, coding: Coding) -> tuple[list, object]:
    """(indices of the files the pool would hold, their model): the small images coded by the
    same model as the first small one."""
    members, model = [], None
    for i, f in enumerate(files):
        _, H, W, C = f.pixels.shape
        m = coding.model_for(f.pixels)
        if (len(m.shape) == 3 and m.shape[0] in (1, C) and (model is None or m is model)
                and tiles_per_image(C, H, W, tuple(m.shape)) <= POOL_MAX_TILES):
            members.append(i)
            model = m
    return members, model


def compress_files(files: list[ImageFile], coding: Coding, folder: bool = False,
                   progress: Callable[[int, ImageFile], None] | None = None) -> tuple[bytes, dict]:
    """One version-5 file of image files (kind "files"): small images in the pool if it pays,
    every other file its own entry and stream."""
    entries, streams, per_file, pool, stats = [None] * len(files), [None] * len(files), [None] * len(files), b"", {}
    image_set = ImageSet("files", entries, folder=folder)
    members, model = _pool_members(files, coding) if coding.mode != "fallback" and len(files) > 1 else ([], None)
    if len(members) > 1:
        options = {}
        for i in members:
            if progress:
                progress(i, files[i])
            options[i] = classical_candidates(files[i].pixels) if coding.mode != "bfn" else {}
        tiles = np.concatenate([to_tiles(files[i].pixels, tuple(model.shape)) for i in members])
        blob, _ = coding.encode_items(tiles, model)
        best = {i: min(o, key=lambda s: len(o[s])) for i, o in options.items() if o}
        classical_bytes = sum(len(options[i][s]) for i, s in best.items())
        use_pool = coding.mode == "bfn" or len(blob) < classical_bytes
        stats["pool"] = {"images": len(members), "tiles": len(tiles), "bytes": len(blob),
                         "classical_bytes": classical_bytes if coding.mode != "bfn" else None, "used": use_pool}
        pool = blob if use_pool else b""
        for i in members:
            f, stream = files[i], "pool" if use_pool else best[i]
            data = b"" if use_pool else options[i][stream]
            entries[i] = _entry(f.pixels, stream, data, image_set, name=f.name, file_format=f.file_format,
                                mode=f.mode)
            streams[i] = data
            per_file[i] = dict(name=f.name, stream=stream, bytes=len(data),
                               candidates={s: len(d) for s, d in options[i].items()})
    for i, f in enumerate(files):
        if entries[i] is not None:
            continue
        if progress:
            progress(i, f)
        stream, data, info = encode_entry(f.pixels, coding, f.name)
        entries[i] = _entry(f.pixels, stream, data, image_set, name=f.name, file_format=f.file_format, mode=f.mode)
        streams[i] = data
        per_file[i] = dict(name=f.name, stream=stream, bytes=len(data), **{k: v for k, v in info.items()
                                                                           if k in ("candidates", "tiles", "probe")})
    blob = write_imageset(image_set, streams, pool)
    return blob, {"mode": "images", "files": per_file, **stats}


def compress_array(array: np.ndarray, layout: str, coding: Coding) -> tuple[bytes, dict]:
    """One version-5 file of an array of images (kind "array", one entry)."""
    pixels = np.ascontiguousarray(to_nhwc(array, layout))
    stream, data, info = encode_entry(pixels, coding)
    image_set = ImageSet("array", layout=layout, array_shape=tuple(array.shape))
    image_set.entries.append(_entry(pixels, stream, data, image_set))
    return write_imageset(image_set, [data]), dict(info, mode=stream if stream != "bfn" else info.get("mode"),
                                                   stream=stream)


def classical_array_file(array: np.ndarray, layout: str) -> bytes | None:
    """The version-5 file of ``array`` with the smallest classical stream (a candidate beside the
    item coder's file for arrays of the model's item shape), or None if no stream holds it."""
    pixels = np.ascontiguousarray(to_nhwc(array, layout))
    options = classical_candidates(pixels) if pixels.shape[-1] <= 4 else {}
    if not options:
        return None
    best = min(options.items(), key=lambda kv: len(kv[1]))
    image_set = ImageSet("array", layout=layout, array_shape=tuple(array.shape))
    image_set.entries.append(_entry(pixels, *best, image_set))
    return write_imageset(image_set, [best[1]])


def _checked(pixels: np.ndarray, entry: Entry, image_set: ImageSet) -> np.ndarray:
    if pixels_checksum(pixels, entry_context(image_set, entry))[:PIXELS_HASH_BYTES] != entry.pixels_hash:
        raise FormatError(f"decoded pixels{' of ' + entry.name if entry.name else ''} do not match the "
                          "stored checksum: the file is corrupt")
    return pixels


def _from_tiles(tiles: np.ndarray, entry: Entry, patch: tuple) -> np.ndarray:
    try:
        check_patch(entry.channels, patch, "of the file")
        return from_tiles(tiles.reshape(-1, *patch), entry.shape, patch)
    except (DataError, ValueError) as e:
        raise FormatError(f"the BFN stream does not hold the entry's images ({e})") from None


def decode_entry(blob, image_set: ImageSet, entry: Entry, decode_items: DecodeItems,
                 tile_shape_of: Callable[[bytes], tuple]) -> np.ndarray:
    """The pixels [N, H, W, C] of one entry with a stream of its own, checked against its checksum."""
    data = stream_bytes(blob, entry)
    if entry.stream == "bfn":
        pixels = _from_tiles(np.asarray(decode_items(data)), entry, tile_shape_of(data))
    else:
        pixels = classical.decode(data, entry.stream, entry.shape)
    return _checked(pixels, entry, image_set)


def decompress(blob, decode_items: DecodeItems, tile_shape_of: Callable[[bytes], tuple],
               progress: Callable[[int, Entry], None] | None = None) -> tuple[ImageSet, list]:
    """(the index, the pixels [N, H, W, C] of each entry)."""
    image_set = read_imageset(blob)
    tiles, patch, used = None, None, 0
    if image_set.pool_length:
        data = pool_bytes(blob, image_set)
        patch = tile_shape_of(data)
        tiles = np.asarray(decode_items(data)).reshape(-1, *patch)
    out = []
    for i, e in enumerate(image_set.entries):
        if progress:
            progress(i, e)
        if e.stream != "pool":
            out.append(decode_entry(blob, image_set, e, decode_items, tile_shape_of))
            continue
        count = tiles_per_image(e.channels, e.height, e.width, patch) * e.count if patch[0] in (1, e.channels) else -1
        if count < 0 or used + count > len(tiles):
            raise FormatError("the pool does not hold the tiles of its entries")
        out.append(_checked(_from_tiles(tiles[used:used + count], e, patch), e, image_set))
        used += count
    if tiles is not None and used != len(tiles):
        raise FormatError(f"the pool holds {len(tiles)} tiles, its entries {used}")
    return image_set, out


def as_array(image_set: ImageSet, pixels: list) -> np.ndarray:
    """A kind-"array" file's array, in the shape and layout it was given in."""
    array = from_nhwc(pixels[0], image_set.layout)
    if nhwc_shape(array.shape, image_set.layout) != pixels[0].shape or array.shape != image_set.array_shape:
        raise FormatError("the decoded images do not make the stored array shape")
    return array
