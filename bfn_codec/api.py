"""The library API: compress / decompress numpy arrays, estimate the model's code length.

A file is: the first few items coded by a plain fallback coder (raw LZMA2 of the item bytes,
bit-packed for binary data), whose bytes become the bottom of the ANS stack (the *seed*; real
data, not random bits: codec-design §5), followed by the remaining items coded through the BFN
message chain in lockstep batches whose size grows with the stack (a ramp). The batch schedule
is stored in the header, so the decoder runs identical batch shapes in reverse order.
"""
from __future__ import annotations

import contextlib
import lzma
import math
import operator

import constriction
import numpy as np
import torch

from .version import __version__
from .chain import power_times
from .coder import DEFAULT_R, ChainCoder, RangeError, StackExhausted, make_plan
from .container import (DATA_HASH_BYTES, MAX_BATCH, MAX_BATCHES, MAX_TABLE_ENTRIES, FormatError, Header,
                        codec_settings_problem, data_checksum, environment_digest, quantise_setting, read,
                        write)
from .models import ModelError, bundled_model_for, load_model
from .progress import Progress

DEFAULT_STEPS = 25
DEFAULT_BATCH = 256
MARGIN_BITS = 64
LZMA_FILTERS = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
LZMA_PROGRESS_BYTES = 4 << 20  # inputs from this size on get a progress bar for their LZMA2 stream
AnsCoder = constriction.stream.stack.AnsCoder


# ----- environment ---------------------------------------------------------------------------
def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


# Revision of the coder's arithmetic (tables, posteriors, grids). Any change that alters a
# single probability makes older files undecodable, so files record it.
# 1: exact bin-mass posteriors (0.1.0, first files); 2: Sheppard-corrected posteriors and the
# one-pass discretised table; 3: discretised tails with erfc instead of ndtr (ndtr(-z) was 0
# beyond z ~ 9 in float64); 4: receiver weights of discretised data on a window of bins
# (coder.WINDOW_Z); 5: supports of +-5 instead of +-10 std (coder.DEFAULT_TAIL).
CODER_REVISION = 5


def environment(device: str = "cpu") -> str:
    """What must match for a decoder to reproduce the encoder's probabilities bit for bit, apart
    from the thread count (stored on its own: the decoder runs with the encoder's count, since
    float32 results change with it; measured: batch 1 and 7 differ between 1 and 2 threads).
    A file keeps only its digest (container.environment_digest)."""
    return (f"coder={CODER_REVISION};torch={torch.__version__};constriction={_version('constriction')};"
            f"numpy={np.__version__};device={torch.device(device).type};dtype=float32;det=1")


@contextlib.contextmanager
def deterministic(threads: int | None = None):
    """Settings under which network outputs are reproducible (codec-design §6)."""
    prev = (torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision(),
            torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32,
            torch.backends.cuda.matmul.allow_tf32, torch.get_num_threads())
    if threads:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev[0])
        torch.set_float32_matmul_precision(prev[1])
        torch.backends.cudnn.benchmark = prev[2]
        torch.backends.cudnn.allow_tf32 = prev[3]
        torch.backends.cuda.matmul.allow_tf32 = prev[4]
        torch.set_num_threads(prev[5])


def exact_bits(coder) -> float:
    """Exact size of an ANS stack in bits: 32 * words + log2(state) (codec-design §5)."""
    pos, state = coder.pos()
    return 32.0 * pos + math.log2(max(state, 1))


# ----- items ---------------------------------------------------------------------------------
def to_items(array: np.ndarray):
    """uint8 (N, H, W), (H, W) or (N, C, H, W) -> ([N, C, H, W], layout)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise FormatError(f"bfn-codec compresses uint8 arrays, got dtype {array.dtype}")
    if array.ndim in (2, 3, 4) and 0 in array.shape[-2:]:
        raise FormatError(f"images of shape {array.shape[-2:]} hold no pixels")
    if array.ndim == 2:
        return array[None, None], "HW"
    if array.ndim == 3:
        return array[:, None], "NHW"
    if array.ndim == 4:
        if 0 in array.shape[1:]:
            raise FormatError(f"items of shape {array.shape[1:]} hold no values")
        return array, "NCHW"
    raise FormatError(f"expected an array of shape (N, H, W), (H, W) or (N, C, H, W), got {array.shape}")


def from_items(items: np.ndarray, layout: str) -> np.ndarray:
    if layout == "HW":
        return items[0, 0]
    if layout in ("NHW", "IDX"):
        return items[:, 0]
    return items


def default_model_name(items: np.ndarray) -> str:
    """Values in {0, 1} pick the binary model, anything else the 8-bit model."""
    return "fmnist-binary" if items.size and items.max() <= 1 else "fmnist"


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
    codec = getattr(model, "info", {}).get("codec", {}) if hasattr(model, "info") else {}
    values, problem = _typed_settings(codec.get("steps", DEFAULT_STEPS), codec.get("r", DEFAULT_R),
                                      codec.get("grid_power", 1.0))
    if problem:  # a hand-edited config.json is the model's fault, not the caller's
        raise ModelError(f"model {getattr(model, 'name', '?')}: its codec defaults (config.json "
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
        raise FormatError(f"model {getattr(model, 'name', '?')} codes items of shape {tuple(model.shape)}, "
                          f"got items of shape {shape}")
    if items.size and int(items.max()) >= model.flow.K:
        raise FormatError(f"values up to {int(items.max())} do not fit model "
                          f"{getattr(model, 'name', '?')} with K={model.flow.K} levels")


# ----- the fallback coder used for the seed ------------------------------------------------------
def _seed_bytes(items: np.ndarray, K: int, progress: bool = False) -> bytes:
    raw = np.packbits(items.reshape(-1)).tobytes() if K == 2 else items.tobytes()
    if not progress or len(raw) < LZMA_PROGRESS_BYTES:
        return lzma.compress(raw, format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    # Fed in chunks for a progress bar (about 1.4 MB/s here, so seconds on large inputs); the
    # stream is the same bytes as the one-shot call's (liblzma does not depend on the chunking).
    chunk, out = max(1, LZMA_PROGRESS_BYTES >> 2), []
    encoder = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
    with Progress(len(raw), "lzma2 fallback", "bytes") as bar:
        for start in range(0, len(raw), chunk):
            out.append(encoder.compress(raw[start:start + chunk]))
            bar.update(len(raw[start:start + chunk]))
    return b"".join(out) + encoder.flush()


def _seed_items(data: bytes, count: int, shape, K: int) -> np.ndarray:
    try:
        dec = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=LZMA_FILTERS)
        raw = dec.decompress(data, max_length=count * math.prod(shape) + 1)
    except lzma.LZMAError as e:
        raise FormatError(f"corrupt seed stream ({e})") from None
    D = count * math.prod(shape)
    if K == 2:
        bits = np.unpackbits(np.frombuffer(raw, np.uint8))
        if len(raw) != (D + 7) // 8:
            raise FormatError("seed stream has the wrong length")
        return bits[:D].reshape(count, *shape)
    if len(raw) != D:
        raise FormatError("seed stream has the wrong length")
    return np.frombuffer(raw, np.uint8).reshape(count, *shape).copy()


def _words(data: bytes) -> np.ndarray:
    return np.frombuffer(data + b"\0" * (-len(data) % 4), dtype="<u4").astype(np.uint32)


# ----- compress ------------------------------------------------------------------------------
def compress(array, model=None, steps: int | None = None, r: float | None = None,
             batch_size: int = DEFAULT_BATCH, device: str = "cpu", progress: bool = False,
             mode: str = "auto", stats: dict | None = None, layout: str | None = None,
             trajectory: bool = False, grid_power: float | None = None) -> bytes:
    """Compress a uint8 array with a BFN (bundled model name, checkpoint path, or model object).

    ``steps``, ``r`` and ``grid_power`` (time grid t_i = (i/n)^p) default (None) to the model's
    measured choice (its config.json, ``info.codec``); all three are recorded in the file, so a
    value the format cannot carry (1 <= n <= 10,000, 0.1 <= r <= 64, 1/8 <= p <= 8) is a ValueError.

    ``mode``: "auto" writes whichever is smaller of the BFN chain (after its fallback-coded
    seed) and the plain fallback coder for every item; "bfn" always uses the chain (items the
    seed needs still go through the fallback); "fallback" never runs the network.
    ``stats`` (optional dict) receives the mode, batch schedule and time split; with
    ``trajectory=True`` also ``trajectory_bits``: for every chain-coded item (items
    ``seed_items`` onwards), the ideal code length in bits of the message trajectory the encoder
    actually popped (see ``ChainCoder._step_nats``). It costs one more table per step."""
    if mode not in ("auto", "bfn", "fallback"):
        raise ValueError(f"mode must be auto, bfn or fallback, not {mode!r}")
    items, array_layout = to_items(array)
    layout = layout or array_layout
    model = resolve_model(model, items, device)
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
                    model_id="" if bundled_model_for(sha) else getattr(model, "name", "custom")[:255],
                    coder_revision=CODER_REVISION, threads=torch.get_num_threads(),
                    environment_digest=environment_digest(environment(device)))
    plan = make_plan(flow, steps, r, times=power_times(steps, grid_power))
    chain = ChainCoder(model, plan)
    chain.measure_trajectory = bool(trajectory)
    # the decoder refuses batches whose [B, D, K] tables exceed MAX_TABLE_ENTRIES (container.py)
    batch_size = max(1, min(int(batch_size), MAX_BATCH, MAX_TABLE_ENTRIES // (max(flat.shape[1], 1) * flow.K)))
    info = stats if stats is not None else {}
    fallback_all = _seed_bytes(items, flow.K, progress)
    with deterministic():
        blob = None
        if N > 0 and mode != "fallback":
            blob = _compress_chain(chain, items, flat, header, batch_size, progress, info)
    plain = write(Header(flow.data_type, flow.K, header.item_shape, N, layout, data_hash=header.data_hash),
                  fallback_all)
    if blob is None or (mode != "bfn" and len(plain) <= len(blob)):
        info.update(mode="fallback", batches=[], seed_items=N)
        return _readable(plain)
    info["mode"] = "bfn"
    return _readable(blob)


def _readable(blob: bytes) -> bytes:
    """The reader must accept every file the writer produces (header limits, CRC): one it would
    refuse is a bug here, stopped before a caller stores it or deletes the input (compress --rm)."""
    try:
        read(blob)
    except FormatError as e:
        raise RuntimeError(f"internal error: compress produced a file its own reader refuses ({e})") from None
    return blob


def _compress_chain(chain, items, flat, header, batch_size, progress, info):
    import time

    N = len(items)
    t_start = time.perf_counter()
    # Per-item deficit: measured on one item over a large scratch stack.
    scratch = AnsCoder(np.full(1 << 16, 0x9E3779B9, dtype=np.uint32), seal=True)
    before = scratch.num_valid_bits()
    low = chain.encode(scratch, flat[:1].astype(np.int64))
    # The deficit varies little between items (6183-6211 bits measured on five binary items);
    # 15% headroom, and a larger seed is tried if a batch ever runs the stack dry.
    need = 1.15 * (before - low) + MARGIN_BITS
    seed_items = 1
    while True:  # smallest seed whose bits cover one item's deficit (grown on failure)
        while seed_items < N and 8 * len(_seed_bytes(items[:seed_items], header.K)) < need:
            seed_items = min(N, max(seed_items + 1, int(seed_items * 1.25)))
        if seed_items >= N:
            return None  # nothing left for the chain: the fallback codes everything
        seed = _seed_bytes(items[:seed_items], header.K)
        try:
            coder, batches, nats = _ramp(chain, flat, seed, seed_items, need, batch_size, progress)
            break
        except StackExhausted:
            need *= 2.0
    if len(batches) > MAX_BATCHES:
        raise ValueError(f"{len(batches)} batches exceed the format's limit of {MAX_BATCHES}: "
                         "use a larger batch size or split the input")
    words = coder.get_compressed()
    header.seed_items, header.seed_bytes, header.batches = seed_items, len(seed), batches
    info.update(seed_items=seed_items, seed_bytes=len(seed), batches=batches,
                network_seconds=chain.network_seconds, network_calls=chain.network_calls,
                trunk_seconds=chain.trunk_seconds, total_seconds=time.perf_counter() - t_start)
    if chain.measure_trajectory:
        info["trajectory_bits"] = np.concatenate(nats) / math.log(2.0)
        info["trajectory_seconds"] = chain.trajectory_seconds
    info["coder_seconds"] = info["total_seconds"] - chain.network_seconds - chain.trajectory_seconds
    return write(header, np.asarray(words, dtype="<u4").tobytes())


def _ladder(limit: int) -> int:
    """The largest of 1, 2, 3, 4, 6, 8, 12, 16, ... (powers of two and 1.5x them) <= limit, or
    ``limit`` itself when it is the final remainder. Batch sizes from a short ladder repeat, so
    the run-length coded schedule in the header stays a few dozen bytes."""
    value, step = 1, 0
    while True:
        nxt = (1 << ((step + 1) // 2)) * (3 if (step + 1) % 2 else 2) // 2 if step >= 0 else 1
        if nxt > limit:
            return value
        value, step = nxt, step + 1


def _planned_ramp(avail: float, need: float, per_item: float, remaining: int, batch_size: int) -> list:
    """The batch sizes _ramp will choose for the remaining items if each item leaves
    ``per_item`` bits on the stack (its code length: bits back returns what the chain borrows),
    for the progress bar's ETA. Once the cap is reached the rest is closed-form."""
    plan = []
    while remaining > 0:
        B = _ladder(min(batch_size, remaining, max(1, int((avail - MARGIN_BITS) // need))))
        if B == batch_size:
            q, r = divmod(remaining, batch_size)
            return plan + [batch_size] * q + ([r] if r else [])
        plan.append(B)
        avail += B * per_item
        remaining -= B
    return plan


def _ramp(chain, flat, seed: bytes, start: int, need: float, batch_size: int, progress: bool):
    """Code items start..N-1 in lockstep batches sized by the bits on the stack."""
    N = len(flat)
    coder = AnsCoder(_words(seed), seal=True)
    batches, nats = [], []
    pos = start
    # The ETA needs the work still to come: the batches the ramp will choose (re-planned after
    # each one from the bits items leave on the stack) and the cost of a batch against its size
    # (n + 1 network calls whatever B; measured once, see ChainCoder.batch_work).
    work = chain.batch_work(min(batch_size, N - pos)) if progress else None
    first_bits = coder.num_valid_bits()
    with Progress(N, "compress", "items", enabled=progress, start=start, max_batch=batch_size, work=work) as bar:
        while pos < N:
            avail = coder.num_valid_bits()
            B = _ladder(min(batch_size, N - pos, max(1, (avail - MARGIN_BITS) // need)))
            while True:
                snapshot = coder.clone()
                try:
                    low = chain.encode(coder, flat[pos:pos + B].astype(np.int64))
                    if low < MARGIN_BITS:
                        raise StackExhausted
                    break
                except StackExhausted:
                    coder = snapshot
                    if B == 1:
                        raise
                    B = _ladder(B - 1)
            need = max(need, 1.25 * (avail - low) / B + 16)
            batches.append(B)
            if chain.last_trajectory_nats is not None:
                nats.append(chain.last_trajectory_nats)
            pos += B
            if progress:  # this batch first: update() takes it off the plan
                now = coder.num_valid_bits()
                bar.replan([B] + _planned_ramp(now, need, (now - first_bits) / (pos - start), N - pos, batch_size))
            bar.update(B)
    return coder, batches, nats


# ----- decompress ----------------------------------------------------------------------------
def read_header(blob: bytes) -> Header:
    return read(blob)[0]


def decompress(blob, model=None, device: str = "cpu", progress: bool = False,
               check_environment: bool = True, stats: dict | None = None) -> np.ndarray:
    """Decode a bfn-codec file; the model is found from the header unless given."""
    header, payload = read(blob)
    items = _decode(header, payload, model, device, progress, check_environment, stats)
    if data_checksum(items, header.layout)[:len(header.data_hash)] != header.data_hash:
        raise FormatError("decoded data does not match the stored checksum: the file is corrupt or "
                          "was written in an environment whose network outputs differ from this one")
    return from_items(items, header.layout)


def _model_for(header: Header, model, device: str):
    """The model that wrote a chain-mode file: ``model`` if given (checked against the file's
    weights hash), else the bundled model with that hash, else the model named in the file."""
    if model is None:
        model = bundled_model_for(header.model_hash) or header.model_id
        if not model:
            from .models import available_models

            raise ModelError(f"the file was written with model weights {header.model_hash.hex()[:16]}…, "
                             f"which this build does not bundle (available: {', '.join(available_models())}); "
                             "pass the model with --model")
    model = resolve_model(model, device=device)
    sha = bytes.fromhex(model.weights_sha256) if model.weights_sha256 else b"\0" * 32
    if sha[:len(header.model_hash)] != header.model_hash:
        written = f"{header.model_id!r} " if header.model_id else ""
        raise FormatError(f"the file was written with model {written}(weights {header.model_hash.hex()[:12]}…), "
                          f"not with {getattr(model, 'name', '?')!r} ({sha.hex()[:12]}…)")
    if model.flow.data_type != header.data_type or model.flow.K != header.K:
        raise FormatError("the model's data type does not match the file")
    if model.D != header.dims:
        raise FormatError(f"the model codes {model.D} values per item, the file {header.dims}")
    return model


def _check_environment(header: Header, device: str):
    if header.coder_revision != CODER_REVISION:
        raise FormatError(f"the file was written by coder revision {header.coder_revision}; this build of "
                          f"bfn-codec ({__version__}) decodes revision {CODER_REVISION} only")
    here = environment(device)
    if environment_digest(here) != header.environment_digest:
        written = header.environment or f"digest {header.environment_digest.hex()}"
        raise FormatError(f"environment differs from the encoder's ({written} vs {here}): decoding "
                          "would not reproduce the data (see docs/format.md, 'Environment')")


def _decode(header, payload, model, device, progress, check_environment, stats):
    shape = header.item_shape
    parts = []
    if not header.batches and header.version >= 3:  # fallback mode: the payload is the seed
        seed = payload
    elif not header.batches:  # version 2 fallback mode: the stream is only the sealed seed
        try:
            seed_words = AnsCoder(_words(payload)).get_compressed(unseal=True)
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            raise FormatError(f"corrupt stream ({type(e).__name__})") from None
    else:
        model = _model_for(header, model, device)
        if check_environment:
            _check_environment(header, device)
        plan = make_plan(model.flow, header.steps, header.r, times=power_times(header.steps, header.grid_power))
        chain = ChainCoder(model, plan)
        try:
            coder = AnsCoder(_words(payload))
            work = chain.batch_work(max(header.batches)) if progress else None
            with deterministic(header.threads), Progress(header.count, "decompress", "items", enabled=progress,
                                                         start=header.seed_items, batches=header.batches[::-1],
                                                         work=work) as bar:
                for B in reversed(header.batches):
                    # The encoder kept at least MARGIN_BITS on the stack at every point (_ramp),
                    # so a stack that sinks below that is corrupt; checked at every step.
                    parts.append(chain.decode(coder, B, floor=MARGIN_BITS).astype(np.uint8))
                    bar.update(B)
                    if coder.num_valid_bits() < MARGIN_BITS:
                        raise FormatError("corrupt stream (the coded data ran out)")
            seed_words = coder.get_compressed(unseal=True)
        except RangeError as e:
            raise FormatError(f"corrupt stream ({e})") from None
        except BaseException as e:  # constriction panics derive from BaseException
            if isinstance(e, (KeyboardInterrupt, SystemExit, FormatError)):
                raise
            raise FormatError(f"corrupt stream ({type(e).__name__}: {e})") from None
        if stats is not None:
            stats.update(network_seconds=chain.network_seconds, network_calls=chain.network_calls,
                         trunk_seconds=chain.trunk_seconds)
    if header.batches or header.version < 3:
        if header.seed_bytes > 4 * len(seed_words):
            raise FormatError("the seed is missing from the stream")
        seed = np.asarray(seed_words, dtype="<u4").tobytes()[: header.seed_bytes]
    first = _seed_items(seed, header.seed_items, shape, header.K)
    rest = [p.reshape(len(p), *shape).astype(np.uint8) for p in reversed(parts)]
    return np.concatenate([first] + rest, axis=0) if rest else first


# ----- the model's own code length -------------------------------------------------------------
def estimate_loss(array, model=None, steps: int | None = None, batch_size: int = 100, seed: int = 0,
                  grid_power: float | None = None, progress: bool = False) -> dict:
    """L^n + L^r of the model on the same items (all n steps evaluated, on the same time grid
    as ``compress`` uses by default), in bits."""
    from .evaluate import per_item_total_bits

    items, _ = to_items(array)
    model = resolve_model(model, items)
    _check_items(model, items)
    steps, _, grid_power = codec_settings(model, steps, None, grid_power)
    bits = per_item_total_bits(model, items.reshape(len(items), -1), steps, batch_size, seed,
                               times=power_times(steps, grid_power), progress=progress)
    D = items[0].size if len(items) else 1
    return {"steps": steps, "grid_power": grid_power, "items": len(items), "total_bits": float(bits.sum()),
            "bits_per_dim": float(bits.sum() / max(1, bits.size * D)),
            "stderr_bits_per_dim": float(bits.std() / math.sqrt(max(1, len(bits))) / D)}
