"""The chain driver: runs the BFN message chain (coder.py) over a file's items in lockstep batches.

The encoder seeds the ANS stack with the fallback coder's bytes of the first items (seed.py),
then codes the rest in batches whose size grows with the bits on the stack (the ramp: a batch
of B items borrows about B times one item's deficit before bits back returns it); the batch
schedule goes into the header, so the decoder runs the same batch shapes in reverse order.
"""
from __future__ import annotations

import math
import time

import constriction
import numpy as np

from .coder import RangeError, StackExhausted
from .container import MAX_BATCHES, FormatError, write
from .environment import PORTABLE_REVISIONS, deterministic
from .progress import Progress
from .seed import seed_bytes, seed_items, words

MARGIN_BITS = 64  # the encoder keeps at least this many bits on the stack; the decoder checks it
# The ETA's plan of the ramp simulates at most this many batches (items that leave few bits on
# the stack can keep the ramp at one item per batch for thousands of items) and is redone after
# each of the first REPLAN_EVERY batches, then every REPLAN_EVERY-th: linear work, not quadratic.
PLAN_STEPS, REPLAN_EVERY = 256, 32
AnsCoder = constriction.stream.stack.AnsCoder


def exact_bits(coder) -> float:
    """Exact size of an ANS stack in bits: 32 * words + log2(state) (docs/design.md §11)."""
    pos, state = coder.pos()
    return 32.0 * pos + math.log2(max(state, 1))


def encode_chain(chain, items, flat, header, batch_size, progress, info) -> bytes | None:
    """A chain-mode file of ``items`` (``flat``: the same as [N, D]), or None when the seed the
    chain needs would take every item (the fallback then codes them all). ``header`` receives
    the seed and schedule, ``info`` the statistics."""
    N = len(items)
    t_start = time.perf_counter()
    # Per-item deficit: measured on one item over a large scratch stack.
    scratch = AnsCoder(np.full(1 << 16, 0x9E3779B9, dtype=np.uint32), seal=True)
    before = scratch.num_valid_bits()
    low = chain.encode(scratch, flat[:1].astype(np.int64))
    # The deficit varies little between items (6183-6211 bits measured on five binary items);
    # 15% headroom, and a larger seed is tried if a batch ever runs the stack dry.
    need = 1.15 * (before - low) + MARGIN_BITS
    n_seed = 1
    while True:  # smallest seed whose bits cover one item's deficit (grown on failure)
        while n_seed < N and 8 * len(seed_bytes(items[:n_seed], header.K)) < need:
            n_seed = min(N, max(n_seed + 1, int(n_seed * 1.25)))
        if n_seed >= N:
            return None  # nothing left for the chain: the fallback codes everything
        seed = seed_bytes(items[:n_seed], header.K)
        try:
            coder, batches, nats = _ramp(chain, flat, seed, n_seed, need, batch_size, progress)
            break
        except StackExhausted:
            need *= 2.0
    if len(batches) > MAX_BATCHES:
        raise ValueError(f"{len(batches)} batches exceed the format's limit of {MAX_BATCHES}: "
                         "use a larger batch size or split the input")
    stack = coder.get_compressed()
    header.seed_items, header.seed_bytes, header.batches = n_seed, len(seed), batches
    info.update(seed_items=n_seed, seed_bytes=len(seed), batches=batches,
                network_seconds=chain.network_seconds, network_calls=chain.network_calls,
                trunk_seconds=chain.trunk_seconds, total_seconds=time.perf_counter() - t_start)
    if chain.measure_trajectory:
        per_item = np.concatenate(nats) / math.log(2.0)
        # one sample per item can dip below zero (an unlikely trajectory); a file's cost cannot
        header.trajectory_bits = max(0, round(float(per_item.sum())))
        info.update(trajectory_bits=per_item, trajectory_seconds=chain.trajectory_seconds)
    info["coder_seconds"] = info["total_seconds"] - chain.network_seconds - chain.trajectory_seconds
    return write(header, np.asarray(stack, dtype="<u4").tobytes())


def _ladder(limit: int) -> int:
    """The largest of 1, 2, 3, 4, 6, 8, 12, 16, ... (powers of two and 1.5x them) <= limit. Batch
    sizes from a short ladder repeat, so the run-length coded schedule in the header stays a few
    dozen bytes (the last batches of a file are ladder sizes too, not the exact remainder)."""
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
        if B == batch_size or len(plan) >= PLAN_STEPS:  # the rest at this size: closed form
            q, r = divmod(remaining, B)
            return plan + [B] * q + ([r] if r else [])
        plan.append(B)
        avail += B * per_item
        remaining -= B
    return plan


def _ramp(chain, flat, seed: bytes, start: int, need: float, batch_size: int, progress: bool):
    """Code items start..N-1 in lockstep batches sized by the bits on the stack."""
    N = len(flat)
    coder = AnsCoder(words(seed), seal=True)
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
            if progress and (len(batches) <= REPLAN_EVERY or len(batches) % REPLAN_EVERY == 0):
                now = coder.num_valid_bits()  # this batch first: update() takes it off the plan
                bar.replan([B] + _planned_ramp(now, need, (now - first_bits) / (pos - start), N - pos, batch_size))
            bar.update(B)
    return coder, batches, nats


def decode_items(header, payload: bytes, chain, progress: bool, stats: dict) -> np.ndarray:
    """All items of a file, in order: the chain's batches (if any; ``chain`` codes them with the
    file's model and plan), then the seed the stack unseals to."""
    shape = header.item_shape
    parts = []
    if not header.batches and header.version >= 3:  # fallback mode: the payload is the seed
        seed = payload
    elif not header.batches:  # version 2 fallback mode: the stream is only the sealed seed
        seed = _unsealed_seed(header, AnsCoder(words(payload)))
    else:
        try:
            coder = AnsCoder(words(payload))
            work = chain.batch_work(max(header.batches)) if progress else None
            # revision 5's float outputs depend on the thread count; the portable revisions' do not, so it
            # decodes with the caller's threads
            threads = None if header.coder_revision in PORTABLE_REVISIONS else header.threads
            with deterministic(threads), Progress(header.count, "decompress", "items", enabled=progress,
                                                         start=header.seed_items, batches=header.batches[::-1],
                                                         work=work) as bar:
                for B in reversed(header.batches):
                    # The encoder kept at least MARGIN_BITS on the stack at every point (_ramp),
                    # so a stack that sinks below that is corrupt; checked at every step.
                    parts.append(chain.decode(coder, B, floor=MARGIN_BITS).astype(np.uint8))
                    bar.update(B)
                    if coder.num_valid_bits() < MARGIN_BITS:
                        raise FormatError("corrupt stream (the coded data ran out)")
        except RangeError as e:
            if header.coder_revision in PORTABLE_REVISIONS:
                raise FormatError(f"corrupt stream ({e})") from None
            # The environment digest cannot see the CPU's instruction set, whose float32 kernels
            # change the network's last bits: the commonest cause of this error on intact files.
            raise FormatError(f"corrupt stream ({e}), or one written on a machine whose network outputs "
                              "differ from this one's (another CPU instruction set: docs/format.md, "
                              "'Arithmetic revisions')") from None
        except BaseException as e:  # constriction panics derive from BaseException
            if isinstance(e, (KeyboardInterrupt, SystemExit, FormatError)):
                raise
            raise FormatError(f"corrupt stream ({type(e).__name__}: {e})") from None
        seed = _unsealed_seed(header, coder)
        stats.update(network_seconds=chain.network_seconds, network_calls=chain.network_calls,
                     trunk_seconds=chain.trunk_seconds)
    first = seed_items(seed, header.seed_items, shape, header.K)
    rest = [p.reshape(len(p), *shape).astype(np.uint8) for p in reversed(parts)]
    return np.concatenate([first] + rest, axis=0) if rest else first


def _unsealed_seed(header, coder) -> bytes:
    """The seed's bytes at the bottom of a stack whose chain items are all decoded."""
    try:
        seed_words = coder.get_compressed(unseal=True)
    except BaseException as e:  # constriction panics derive from BaseException
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        raise FormatError(f"corrupt stream ({type(e).__name__})") from None
    if header.seed_bytes > 4 * len(seed_words):
        raise FormatError("the seed is missing from the stream")
    return np.asarray(seed_words, dtype="<u4").tobytes()[: header.seed_bytes]
