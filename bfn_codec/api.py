"""The library API: compress / decompress numpy arrays, estimate the model's code length.

A file is either the plain fallback coder's stream of every item (seed.py), or a chain-mode
file: the first items through the fallback coder, their bytes at the bottom of the ANS stack,
the rest through the BFN message chain in growing batches (driver.py, coder.py); ``compress``
keeps the smaller (mode auto). The container is in container.py (docs/format.md).
"""
from __future__ import annotations

import functools
import math
import operator

import numpy as np
import torch

from . import bytecodec, imagecodec
from . import portable as portable_arithmetic
from .chain import power_times
from .coder import DEFAULT_R, ChainCoder, GridChainCoder, KeptChainCoder, PortableChainCoder, make_plan
from .data import DataError, as_items
from .container import (DATA_HASH_BYTES, MAX_BATCH, FormatError, Header, chunk_bytes,
                        codec_settings_problem, data_checksum, environment_digest, is_archive, quantise_setting,
                        read, read_archive, write)
from .driver import decode_items, encode_chain
from .environment import CODER_REVISION, PORTABLE_REVISION, PORTABLE_REVISIONS, deterministic, environment
from .images import ImageFile, array_layout
from .bytefile import is_bytefile
from .imageset import is_imageset, read_imageset
from .models import ExactModel, has_portable_form, load_model, portable_model, with_calibration
from .zoo import ModelError, available_models, bundled_model_for, portable_identity
from .seed import seed_bytes
from .version import __version__

DEFAULT_STEPS = 25
DEFAULT_BATCH = 256
# The encoder's own cap on a batch, in [B, D, K] table entries: the coder keeps about a dozen float64
# tables of a batch's shape alive at once (receiver and bridge parameters, bin masses, frequencies), so
# 2^23 entries hold a batch near 1 GB of memory whatever the input (41 8-bit 28x28 tiles; 21 MB each
# measured), and the network gains little from batches above ~32 items on 2 cores (thread_scaling.py).
# The decoder follows the file's batches and accepts up to MAX_TABLE_ENTRIES (container.py).
ENCODE_TABLE_ENTRIES = 1 << 23


# ----- items ---------------------------------------------------------------------------------
def from_items(items: np.ndarray, layout: str) -> np.ndarray:
    if layout == "HW":
        return items[0, 0]
    if layout in ("NHW", "IDX"):
        return items[:, 0]
    return items


# The bundled model for 8-bit RGB images; without it each colour channel is coded as a grey image.
COLOUR_MODEL = "photo-rgb"
# The bundled byte model (any file that is not an array or an image); without it such files are
# stored or LZMA2-coded. Files of only "a".."z" and spaces also try the bundled text8-style model
# (K = 27 per character, bytecodec.ALPHABETS).
BYTE_MODEL = "text-bytes"
TEXT8_MODEL = "text8-chars"
BYTE_MODELS = {"bytes8": BYTE_MODEL, "text8": TEXT8_MODEL}  # the default model of each alphabet


def default_model_name(items: np.ndarray, channels: int = 1) -> str:
    """Values in {0, 1} pick the binary model; images of 3 channels (RGB, ``channels`` of the
    [N, H, W, C] pixels) the bundled colour model where it is installed; anything else the 8-bit
    grey model."""
    if items.size and items.max() <= 1:
        return "fmnist-binary"
    if channels == 3 and COLOUR_MODEL in available_models():
        return COLOUR_MODEL
    return "fmnist"


def resolve_model(model, items=None, device: str = "cpu"):
    if model is None:
        if items is None:
            raise ModelError("no model given")
        model = default_model_name(items)
    if isinstance(model, str):
        return load_model(model, device=device)
    return model


def _typed_settings(steps, r, grid_power) -> tuple[tuple | None, str | None]:
    """(n, r, p) as (int, float, float) and what is wrong with them for a file (None: nothing),
    so model_defaults and codec_settings share one conversion and one rule."""
    try:
        steps = operator.index(steps)
    except TypeError:
        return None, f"the number of steps must be an integer, got {steps!r}"
    try:
        r, grid_power = quantise_setting(r), quantise_setting(grid_power)
    except (TypeError, ValueError):
        return None, f"r and the grid power must be numbers, got {r!r} and {grid_power!r}"
    return (steps, r, grid_power), codec_settings_problem(steps, r, grid_power)


def model_defaults(model) -> dict:
    codec = model.info.get("codec", {})
    values, problem = _typed_settings(codec.get("steps", DEFAULT_STEPS), codec.get("r", DEFAULT_R),
                                      codec.get("grid_power", 1.0))
    if problem:  # a hand-edited config.json is the model's fault, not the caller's
        raise ModelError(f"model {model.name}: its codec defaults (config.json "
                         f"info.codec) are not usable: {problem}")
    return dict(zip(("steps", "r", "grid_power"), values))


def codec_settings(model, steps=None, r=None, grid_power=None) -> tuple[int, float, float]:
    """(n, r, p) for coding with ``model``: None takes the model's default; anything else must be
    a value a file can carry (container.codec_settings_problem), else ValueError, so compress
    never writes a file that decompress would refuse and 0 never silently means "default".
    r and p are rounded to the 1/1024 grid the file stores them on."""
    defaults = model_defaults(model)
    values, problem = _typed_settings(defaults["steps"] if steps is None else steps,
                                      defaults["r"] if r is None else r,
                                      defaults["grid_power"] if grid_power is None else grid_power)
    if problem:
        raise ValueError(problem)
    return values


def _check_items(model, items: np.ndarray):
    shape = tuple(items.shape[1:])
    if shape != tuple(model.shape) and not (len(model.shape) == 1 and math.prod(shape) == model.shape[0]):
        raise DataError(f"model {model.name} codes items of shape {tuple(model.shape)}, "
                          f"got items of shape {shape}")
    if items.size and int(items.max()) >= model.flow.K:
        raise DataError(f"values up to {int(items.max())} do not fit model "
                          f"{model.name} with K={model.flow.K} levels")


# ----- compress ------------------------------------------------------------------------------
def compress(array, model=None, *, steps: int | None = None, r: float | None = None,
             grid_power: float | None = None, mode: str = "auto", batch_size: int = DEFAULT_BATCH,
             device: str = "cpu", progress: bool = False, portable: bool | None = None,
             jobs: int = 1, chunk_items: int | None = None) -> bytes:
    """Compress a uint8 array with a BFN (bundled model name, checkpoint path, or model object;
    None picks a bundled model by the values: fmnist-binary for 0/1 data, fmnist otherwise).
    ``bytes`` (any file's contents) go to ``compress_bytes`` and decompress back to bytes.
    Images of any size and (H, W, C) / (N, H, W, C) arrays are coded as tiles of the model's
    item shape, beside PNG and lossless WebP (docs/images.md); image files: compress_images.

    ``steps``, ``r`` and ``grid_power`` (time grid t_i = (i/n)^p) default (None) to the model's
    measured choice (its config.json, ``info.codec``); all three are recorded in the file, so a
    value the format cannot carry (1 <= n <= 10,000, 0.1 <= r <= 64, 1/8 <= p <= 8) is a ValueError.

    ``mode``: "auto" writes whichever is smaller of the BFN chain (after its fallback-coded
    seed) and the plain fallback coder for every item; "bfn" always uses the chain (items the
    seed needs still go through the fallback); "fallback" never runs the network.

    ``jobs`` > 1 or ``chunk_items``: code independent chunks of ``chunk_items`` items (default
    limits.DEFAULT_CHUNK_ITEMS) in ``jobs`` worker processes into one chunked file (format
    version 4), which decodes in parallel and chunk by chunk (``decompress_chunk``). The bytes
    depend on the chunk size, not on ``jobs``. An input of one chunk or less is a plain file."""
    if isinstance(array, (bytes, bytearray, memoryview)):
        return compress_bytes(array, model, steps=steps, r=r, grid_power=grid_power, mode=mode,
                              batch_size=batch_size, device=device, progress=progress, portable=portable,
                              jobs=jobs, chunk_items=chunk_items)[0]
    return compress_with_stats(array, model, steps=steps, r=r, grid_power=grid_power, mode=mode,
                               batch_size=batch_size, device=device, progress=progress, portable=portable,
                               jobs=jobs, chunk_items=chunk_items)[0]


def compress_with_stats(array, model=None, *, steps: int | None = None, r: float | None = None,
                        grid_power: float | None = None, mode: str = "auto", batch_size: int = DEFAULT_BATCH,
                        device: str = "cpu", progress: bool = False, layout: str | None = None,
                        trajectory: bool = True, portable: bool | None = None, jobs: int = 1,
                        chunk_items: int | None = None, classical: bool = True) -> tuple[bytes, dict]:
    """``compress`` for the command line and the benchmarks: also returns the coding statistics
    (mode, seed, batch schedule, time split). ``layout`` overrides how the array's shape is
    recorded (the command line's IDX files). The statistics include ``trajectory_bits``: for
    every chain-coded item (items ``seed_items`` onwards), the ideal code length in bits of the
    message trajectory the encoder actually popped (see ``ChainCoder._step_nats``); the header
    records their sum. ``trajectory=False`` skips that (4-8% of the encoding time) and writes
    a file without it.

    ``portable``: True codes with the newest portable revision, 7 (the integer network and
    exact arithmetic: the file decodes on any machine), False with revision 5 (float kernels:
    the file decodes only where the environment matches), None (default) with 7 whenever the
    model has an integer calibration (the bundled models do); an int, an older portable
    revision (6), which writes what that release wrote (the golden files' tests use it).

    Images that are not the model's item shape (any size, colour with a grey model, or an
    (H, W, C) / (N, H, W, C) array: ``images.array_layout``) are coded as tiles of the item
    shape in a version-5 file (imagecodec.py), with PNG and WebP lossless as candidates in auto
    mode. ``classical`` (default True) makes those a candidate for any image-shaped array in
    auto mode (False: the item coder's file only, as chunks need)."""
    if mode not in ("auto", "bfn", "fallback"):
        raise ValueError(f"mode must be auto, bfn or fallback, not {mode!r}")
    jobs = operator.index(jobs)
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, not {jobs}")
    settings = dict(steps=steps, r=r, grid_power=grid_power, batch_size=batch_size, device=device,
                    progress=progress, trajectory=trajectory, portable=portable, jobs=jobs, chunk_items=chunk_items)
    array, resolved = np.asarray(array), None
    if layout in (None, "IDX") and array.dtype == np.uint8:
        shape_layout = layout or array_layout(array)
        if array.size and shape_layout not in ("HWC", "NHWC"):
            resolved = resolve_model(model, array, device)
        tiles = shape_layout in ("HWC", "NHWC") or (resolved is not None and
                                                    not _fits(resolved, as_items(array)[0].shape[1:]))
        if tiles:
            blob, info = imagecodec.compress_array(array, shape_layout, _image_coding(model, mode, device, settings))
            return _readable(blob), info
    items, items_layout = as_items(array)
    layout = layout or items_layout
    if jobs > 1 or chunk_items is not None:
        from .limits import DEFAULT_CHUNK_ITEMS
        from .parallel import compress_chunked

        chunk_items = DEFAULT_CHUNK_ITEMS if chunk_items is None else operator.index(chunk_items)
        if chunk_items < 1:
            raise ValueError(f"the chunk size must be at least 1 item, not {chunk_items}")
        if len(items) > chunk_items:
            # settings checked once here, so a bad value is one error, not one per worker
            codec_settings(resolve_model(model, items, device), steps, r, grid_power)
            encode = functools.partial(compress_with_stats, layout="NCHW", steps=steps, r=r, grid_power=grid_power,
                                       mode=mode, batch_size=batch_size, device=device, trajectory=trajectory,
                                       portable=portable, classical=False)
            blob, info = compress_chunked(encode, items, layout, model, jobs, chunk_items, progress)
            return _readable(blob), info
    model = resolved if resolved is not None else resolve_model(model, items, device)
    _check_items(model, items)
    steps, r, grid_power = codec_settings(model, steps, r, grid_power)
    N = len(items)
    # a uint8 view: each batch is widened to int64 on its own, so memory does not grow with N
    flat = items.reshape(N, math.prod(items.shape[1:]))
    flow = model.flow
    if flow.data_type not in ("discrete", "discretised"):
        raise FormatError(f"the coder handles discrete and discretised data, not {flow.data_type}")
    sha = bytes.fromhex(model.weights_sha256) if model.weights_sha256 else b""
    header = Header(flow.data_type, flow.K, tuple(items.shape[1:]), N, layout,
                    data_hash=data_checksum(items, layout)[:DATA_HASH_BYTES], steps=steps, r=r,
                    grid_power=grid_power, model_hash=sha,
                    # a bundled model is found again from its weights' hash; others by name
                    model_id="" if bundled_model_for(sha) else model.name[:255],
                    coder_revision=CODER_REVISION, threads=torch.get_num_threads(),
                    environment_digest=environment_digest(environment(device)))
    revision = portable_revision(portable, model)
    coded = model
    if revision and mode != "fallback":
        coded = portable_model(model)  # a clear ModelError if the model has no integer calibration
        header.coder_revision = revision
        header.model_hash = model_identity(model, revision)
    chain = chain_coder(coded, header.coder_revision, steps, r, grid_power)
    chain.measure_trajectory = bool(trajectory)
    batch_size = max(1, min(int(batch_size), MAX_BATCH, ENCODE_TABLE_ENTRIES // (max(flat.shape[1], 1) * flow.K)))
    info = {}
    with deterministic():
        blob = None
        if N > 0 and mode != "fallback":
            blob = encode_chain(chain, items, flat, header, batch_size, progress, info)
    if blob is not None and mode == "bfn":  # the fallback file is only a candidate in auto mode
        info["mode"] = "bfn"
        return _readable(blob), info
    plain = write(Header(flow.data_type, flow.K, header.item_shape, N, layout, data_hash=header.data_hash),
                  seed_bytes(items, flow.K, progress))
    if blob is None or len(plain) <= len(blob):
        info.update(mode="fallback", batches=[], seed_items=N)
        blob = plain
    else:
        info["mode"] = "bfn"
    if classical and mode == "auto" and N > 0 and items.shape[1] <= 4:
        picture = imagecodec.classical_array_file(array, layout)
        if picture is not None and len(picture) < len(blob):
            info.update(mode=read_imageset(picture).entries[0].stream, batches=[], seed_items=N)
            return _readable(picture), info
    return _readable(blob), info


def _fits(model, item_shape) -> bool:
    """Whether ``model`` codes items of ``item_shape`` (C, H, W) as they are (else: tiles)."""
    shape = tuple(model.shape)
    return tuple(item_shape) == shape or (len(shape) == 1 and math.prod(item_shape) == shape[0])


def _image_coding(model, mode: str, device: str, settings: dict) -> imagecodec.Coding:
    """How imagecodec codes images: tiles through compress_with_stats (version-3 files, chunked
    with jobs), the model given or, per set of images, the bundled one their values pick."""
    loaded, specs = {}, {}

    def model_for(pixels):
        key = model if isinstance(model, str) or model is None else id(model)
        key = key if key is not None else default_model_name(pixels, pixels.shape[-1])
        if key not in loaded:
            loaded[key] = resolve_model(model if model is not None else key, pixels, device)
            if isinstance(key, str):  # worker processes (jobs > 1) load the model by its name
                specs[id(loaded[key])] = key
        return loaded[key]

    def encode_items(tiles, tile_model):
        chosen = specs.get(id(tile_model), tile_model) if settings["jobs"] > 1 else tile_model
        return compress_with_stats(tiles, chosen, mode="bfn" if mode == "bfn" else "auto", layout="NCHW",
                                   classical=False, **settings)

    def estimate_bits(tiles, tile_model):
        from .evaluate import per_item_total_bits

        steps, _, grid_power = codec_settings(tile_model, settings["steps"], None, settings["grid_power"])
        bits = per_item_total_bits(tile_model, tiles.reshape(len(tiles), -1), steps, batch_size=len(tiles),
                                   times=power_times(steps, grid_power))
        return bits.sum() / tiles.size

    return imagecodec.Coding(encode_items, model_for, mode, estimate_bits)


def default_byte_model(alphabet: str = "bytes8"):
    """The bundled model of an alphabet where it is installed, else None (files are then stored,
    LZMA2-coded or coded under another alphabet)."""
    name = BYTE_MODELS[alphabet]
    return name if name in available_models() else None


def _byte_model(model, device: str):
    model = resolve_model(model, device=device)
    if bytecodec.alphabet_of(model) is None:
        raise DataError(f"model {model.name} codes items of shape {tuple(model.shape)} ({model.flow.data_type}, "
                        f"K={model.flow.K}), not byte windows (binary, (8, 4, 64)) or text8 windows (K=27, "
                        f"(1, 4, 64)): pick a byte model, e.g. {BYTE_MODEL}")
    return model


def _byte_coding(model, mode: str, device: str, settings: dict) -> bytecodec.Coding:
    loaded: dict = {}

    def model_for(alphabet: str):
        if alphabet not in loaded:
            if model is not None:  # the caller's model codes its own alphabet only
                chosen = _byte_model(model, device)
                loaded[alphabet] = chosen if bytecodec.alphabet_of(chosen) == alphabet else None
            else:
                spec = default_byte_model(alphabet)
                loaded[alphabet] = None if spec is None else _byte_model(spec, device)
        return loaded[alphabet]

    def encode_items(items, byte_model):
        # several jobs load the model again in each worker, by name: a bundled model's name
        chosen = byte_model
        if settings["jobs"] > 1:
            chosen = model if isinstance(model, str) else (byte_model.name if model is None else byte_model)
        return compress_with_stats(items, chosen, mode="bfn" if mode == "bfn" else "auto", layout="NCHW",
                                   classical=False, **settings)

    def decode_items(stream):
        return decompress(stream, model, device=device, progress=settings["progress"], jobs=settings["jobs"])

    def estimate_bits(items, byte_model):
        from .evaluate import per_item_total_bits

        steps, _, grid_power = codec_settings(byte_model, settings["steps"], None, settings["grid_power"])
        return per_item_total_bits(byte_model, items.reshape(len(items), -1), steps, batch_size=len(items),
                                   times=power_times(steps, grid_power))

    return bytecodec.Coding(encode_items, decode_items, model_for, mode, estimate_bits)


def compress_bytes(data, model=None, *, name: str = "", mode: str = "auto", steps: int | None = None,
                   r: float | None = None, grid_power: float | None = None, batch_size: int = DEFAULT_BATCH,
                   device: str = "cpu", progress: bool = False, portable: bool | None = None, jobs: int = 1,
                   chunk_items: int | None = None) -> tuple[bytes, dict]:
    """Any file's bytes -> a version-6 file and its statistics. The bytes go through the byte
    model (``model``, default the bundled ``text-bytes``) as 256-byte windows of 8 binary
    variables per byte (bytestream.py), and, when they are only "a".."z" and spaces, through the
    text8-style model (default the bundled ``text8-chars``, K = 27 per character, text8.py),
    beside raw LZMA2 and the stored bytes; auto mode keeps the smallest (bfn: the first model's
    stream that takes the file; fallback: no network). A given ``model`` codes its own alphabet
    only. ``name`` (a file name,
    no folders) is stored and given back by ``decompress_bytes``."""
    if mode not in ("auto", "bfn", "fallback"):
        raise ValueError(f"mode must be auto, bfn or fallback, not {mode!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"compress_bytes takes bytes, not {type(data).__name__}")
    settings = dict(steps=steps, r=r, grid_power=grid_power, batch_size=batch_size, device=device,
                    progress=progress, trajectory=True, portable=portable, jobs=operator.index(jobs),
                    chunk_items=chunk_items)
    from .bytefile import name_problem

    if name_problem(name):  # a name the format cannot carry (e.g. with a backslash) is not stored
        name = ""
    blob, info = bytecodec.compress(bytes(data), name, _byte_coding(model, mode, device, settings))
    return _readable(blob), info


def decompress_bytes(blob, model=None, *, device: str = "cpu", progress: bool = False,
                     jobs: int = 1) -> tuple[str, bytes]:
    """A version-6 file -> (the stored file name, the bytes), checked against the checksum."""
    settings = dict(steps=None, r=None, grid_power=None, batch_size=DEFAULT_BATCH, device=device,
                    progress=progress, trajectory=True, portable=None, jobs=jobs, chunk_items=None)
    return bytecodec.decompress(blob, _byte_coding(model, "auto", device, settings).decode_items)


def compress_images(files: list, model=None, *, folder: bool = False, mode: str = "auto",
                    steps: int | None = None, r: float | None = None, grid_power: float | None = None,
                    batch_size: int = DEFAULT_BATCH, device: str = "cpu", progress: bool = False,
                    portable: bool | None = None, jobs: int = 1, chunk_items: int | None = None,
                    on_file=None) -> tuple[bytes, dict]:
    """Image files (``images.ImageFile``, e.g. from ``images.read_image``) -> one version-5 file
    and its statistics. Each file is coded by the smallest of the BFN stream of its tiles and
    PNG / WebP lossless (``mode`` auto; bfn: always the BFN stream; fallback: no network).
    ``folder``: decompress writes the files into a folder (their names are paths in it)."""
    if mode not in ("auto", "bfn", "fallback"):
        raise ValueError(f"mode must be auto, bfn or fallback, not {mode!r}")
    settings = dict(steps=steps, r=r, grid_power=grid_power, batch_size=batch_size, device=device,
                    progress=progress, trajectory=True, portable=portable, jobs=operator.index(jobs),
                    chunk_items=chunk_items)
    blob, info = imagecodec.compress_files(files, _image_coding(model, mode, device, settings), folder, on_file)
    return _readable(blob), info


def decompress_images(blob, model=None, *, device: str = "cpu", progress: bool = False,
                      jobs: int = 1, on_file=None) -> tuple[bool, list]:
    """A version-5 file of image files -> (whether it was a folder, [ImageFile]) with the pixels,
    names, formats and modes the files had; every image checked against its checksum."""
    image_set, pixels = _decompress_imageset(blob, model, device, progress, jobs, on_file)
    if image_set.kind != "files":
        raise ValueError("the file holds an array, not image files: use decompress")
    return image_set.folder, [ImageFile(e.name, p, e.file_format, e.mode) for e, p in zip(image_set.entries, pixels)]


def _decompress_imageset(blob, model, device, progress, jobs, on_file=None):
    def decode_items(data):
        return decompress(data, model, device=device, progress=progress, jobs=jobs)

    def tile_shape_of(data):
        return tuple(read_archive(data).item_shape if is_archive(data) else read(data)[0].item_shape)

    return imagecodec.decompress(blob, decode_items, tile_shape_of, on_file)


def _readable(blob: bytes) -> bytes:
    """The reader must accept every file the writer produces (header limits, CRC): one it would
    refuse is a bug here, stopped before a caller stores it or deletes the input (compress --rm)."""
    try:
        if is_imageset(blob):
            read_imageset(blob)
            return blob
        if is_bytefile(blob):
            from .bytefile import read_bytefile

            read_bytefile(blob)
            return blob
        if is_archive(blob):
            archive = read_archive(blob)
            for i in range(len(archive.chunks)):
                chunk_bytes(blob, archive, i)
            return blob
        read(blob)
    except FormatError as e:
        raise RuntimeError(f"internal error: compress produced a file its own reader refuses ({e})") from None
    return blob


# ----- decompress ----------------------------------------------------------------------------
def read_header(blob: bytes) -> Header:
    return read(blob)[0]


def decompress(blob, model=None, *, device: str = "cpu", progress: bool = False, jobs: int = 1) -> np.ndarray:
    """Decode a bfn-codec file; the model is found from the header unless given. A chunked
    file (compress with jobs/chunk_items) decodes its chunks in ``jobs`` worker processes. A
    file of bytes (compress_bytes) decodes to ``bytes``."""
    return decompress_with_stats(blob, model, device=device, progress=progress, jobs=jobs)[0]


def decompress_chunk(blob, index: int, model=None) -> np.ndarray:
    """Chunk ``index`` of a chunked file alone, as items [count, C, H, W] (random access: only
    that chunk is decoded; its checksum is verified). ``chunk_index`` says which items it holds."""
    archive = read_archive(blob)
    items = decompress(chunk_bytes(blob, archive, index), model)
    return np.asarray(items).reshape(-1, *archive.item_shape)


def chunk_index(blob) -> list[tuple[int, int]]:
    """[(first item, item count)] of each chunk of a chunked file (one entry for a plain file)."""
    if is_archive(blob):
        return [(c.first, c.count) for c in read_archive(blob).chunks]
    return [(0, read(blob)[0].count)]


def decompress_with_stats(blob, model=None, *, device: str = "cpu", progress: bool = False,
                          check_environment: bool = True, jobs: int = 1) -> tuple[np.ndarray, dict]:
    """``decompress`` for the command line and the benchmarks: also returns the time split.
    ``check_environment=False`` tries a chain-mode file written in another environment (the data
    hash still refuses a wrong result)."""
    if isinstance(blob, (bytes, bytearray, memoryview)) and is_bytefile(blob):
        _, data = decompress_bytes(blob, model, device=device, progress=progress, jobs=jobs)
        return data, {"mode": "bytes"}
    if isinstance(blob, (bytes, bytearray, memoryview)) and is_imageset(blob):
        image_set, pixels = _decompress_imageset(blob, model, device, progress, jobs)
        if image_set.kind == "array":
            return imagecodec.as_array(image_set, pixels), {"mode": image_set.entries[0].stream}
        if len(pixels) != 1:
            raise ValueError(f"the file holds {len(pixels)} image files: read them with decompress_images")
        image = pixels[0][0]
        return (image[..., 0] if image.shape[-1] == 1 else image), {"mode": image_set.entries[0].stream}
    if isinstance(blob, (bytes, bytearray, memoryview)) and is_archive(blob):
        from .parallel import decompress_archive

        items, layout = decompress_archive(decompress, blob, model, jobs, progress)
        return from_items(items, layout), {"chunks": len(read_archive(blob).chunks), "jobs": jobs}
    header, payload = read(blob)
    chain, stats = None, {}
    if header.batches:
        model = _model_for(header, model, device)
        chain = chain_coder(model, header.coder_revision, header.steps, header.r, header.grid_power)
        if header.coder_revision not in PORTABLE_REVISIONS and check_environment:
            _check_environment(header, device)
    items = decode_items(header, payload, chain, progress, stats)
    if data_checksum(items, header.layout)[:len(header.data_hash)] != header.data_hash:
        raise FormatError("decoded data does not match the stored checksum: the file is corrupt or "
                          "was written in an environment whose network outputs differ from this one")
    return from_items(items, header.layout), stats


def portable_revision(portable, model) -> int:
    """The portable revision ``compress(portable=...)`` asks for, 0 for revision 5 (float)."""
    if portable is None:
        portable = has_portable_form(model)
    if isinstance(portable, bool):
        return PORTABLE_REVISION if portable else 0
    if portable not in PORTABLE_REVISIONS:
        raise ValueError(f"portable must be True, False, None or a portable revision {PORTABLE_REVISIONS}, "
                         f"not {portable!r}")
    return int(portable)


def chain_coder(model, revision: int, steps: int, r: float, grid_power: float) -> ChainCoder:
    """The chain coder of arithmetic revision ``revision`` (6 and 7: portable, 5: float kernels)."""
    if revision in PORTABLE_REVISIONS:
        if not isinstance(model, ExactModel):
            if not has_portable_form(model):
                raise FormatError(f"the file was written with the portable arithmetic (coder revision {revision}), which "
                                  f"needs the model's integer network; model {model.name} has none for its weights")
            model = portable_model(model)
        plan = make_plan(model.flow, steps, r, times=portable_arithmetic.power_times(steps, grid_power), exact=True)
        return {6: PortableChainCoder, 7: KeptChainCoder}.get(revision, GridChainCoder)(model, plan)
    if revision != CODER_REVISION:
        raise FormatError(f"the file was written by coder revision {revision}, which this build of bfn-codec "
                          f"({__version__}) does not decode: revisions 1-4 are read by the 0.1.0 release, "
                          f"5 to {PORTABLE_REVISION} by this one")
    return ChainCoder(model, make_plan(model.flow, steps, r, times=power_times(steps, grid_power)))


def model_identity(model, revision: int) -> bytes:
    """The model hash a file of this coder revision records: the weights' SHA-256, or for
    a portable revision the portable identity (weights and integer calibration,
    zoo.portable_identity); b"" when there is none."""
    if revision in PORTABLE_REVISIONS:
        return portable_identity(model.weights_sha256, getattr(model, "integer", None)) or b""
    return bytes.fromhex(model.weights_sha256) if model.weights_sha256 else b""


def _model_for(header: Header, model, device: str):
    """The model that wrote a chain-mode file: ``model`` if given (checked against the file's
    weights hash), else the bundled model with that hash, else the model named in the file."""
    if model is None:
        model = bundled_model_for(header.model_hash) or header.model_id
        if not model:
            raise ModelError(f"the file was written with model weights {header.model_hash.hex()[:16]}…, "
                             f"which this build does not bundle (available: {', '.join(available_models())}); "
                             "pass the model with --model")
    model = resolve_model(model, device=device)
    if header.coder_revision in PORTABLE_REVISIONS:
        # the calibration the file names: the model's current one or one it keeps from before
        model = with_calibration(model, header.model_hash) or model
    sha = model_identity(model, header.coder_revision) or b"\0" * 32
    if sha[:len(header.model_hash)] != header.model_hash:
        written = f"{header.model_id!r} " if header.model_id else ""
        what = ("weights and integer calibration" if header.coder_revision in PORTABLE_REVISIONS
                else "weights")
        raise FormatError(f"the file was written with model {written}({what} {header.model_hash.hex()[:12]}…), "
                          f"not with {model.name!r} ({sha.hex()[:12]}…)")
    if model.flow.data_type != header.data_type or model.flow.K != header.K:
        raise FormatError("the model's data type does not match the file")
    if model.D != header.dims:
        raise FormatError(f"the model codes {model.D} values per item, the file {header.dims}")
    return model


def _check_environment(header: Header, device: str):
    here = environment(device)
    if environment_digest(here) != header.environment_digest:
        written = header.environment or f"digest {header.environment_digest.hex()}"
        raise FormatError(f"environment differs from the encoder's ({written} vs {here}): decoding "
                          "would not reproduce the data (a revision-5 file, --arithmetic float; see "
                          "docs/format.md, 'Arithmetic revisions')")


# ----- the model's own code length -------------------------------------------------------------
def estimate_loss(array, model=None, steps: int | None = None, batch_size: int = 100, seed: int = 0,
                  grid_power: float | None = None, progress: bool = False) -> dict:
    """L^n + L^r of the model on the same items (all n steps evaluated, on the same time grid
    as ``compress`` uses by default), in bits."""
    from .evaluate import per_item_total_bits

    items, _ = as_items(array)
    model = resolve_model(model, items)
    _check_items(model, items)
    steps, _, grid_power = codec_settings(model, steps, None, grid_power)
    bits = per_item_total_bits(model, items.reshape(len(items), -1), steps, batch_size, seed,
                               times=power_times(steps, grid_power), progress=progress)
    D = items[0].size if len(items) else 1
    return {"steps": steps, "grid_power": grid_power, "items": len(items), "total_bits": float(bits.sum()),
            "bits_per_dim": float(bits.sum() / max(1, bits.size * D)),
            "stderr_bits_per_dim": float(bits.std() / math.sqrt(max(1, len(bits))) / D)}
