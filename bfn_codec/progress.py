"""A small progress bar for long work (training, coding many items): rate, elapsed time, ETA and a status."""
from __future__ import annotations

import math
import sys
import time
from collections import deque


class Progress:
    """``with Progress(total, "train") as bar: bar.update(1, "loss 0.12")``.

    Redraws in place on a terminal; elsewhere (logs, CI) prints a line at most every
    ``log_every`` seconds so that background runs still show their progress.

    The ETA is the time per unit of work measured so far times the work still to come. By
    default an update of n items is n units (the usual rate-based ETA). The codec passes
    ``work``, the relative cost of a batch of B items, because its batches are far from
    proportional to their size: each runs the network n + 1 times whatever B, and the first
    batches are tiny (1, 1, 2, 3, ...), so items per second on them says little about the
    batches of 256 to come (a rate-based ETA was many times too high at first). The updates
    still to come are ``batches`` (the decoder knows them; the encoder re-plans them with
    ``replan`` as its stack grows), else updates of ``max_batch``, else of the last size.

    ``deadline`` (a time on ``clock``): the work stops then whatever is left (training with a
    wall-clock budget), so the ETA is never later than it."""

    def __init__(self, total: int, label: str, unit: str = "it", stream=None,
                 enabled: bool = True, log_every: float = 30.0, start: int = 0, *,
                 batches=None, max_batch: int | None = None, work=None, clock=time.monotonic,
                 deadline: float | None = None):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every = log_every
        self.count = start
        self.start_count = start
        self.clock = clock
        self.t0 = clock()
        self.last_draw = -math.inf
        self.status = ""
        self.plan = deque(batches) if batches is not None else None
        self.max_batch = max_batch
        self.work = work or float
        self.work_done = 0.0
        self.last_size = 0
        self.deadline = deadline

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._draw(final=True)

    def replan(self, batches) -> None:
        """The sizes of the updates still to come, in order (replacing any earlier plan)."""
        self.plan = deque(batches)

    def update(self, n: int = 1, status: str | None = None):
        now = self.clock()
        self.work_done += self.work(n)
        self.last_size = n
        if self.plan:
            self.plan.popleft()
        self.count += n
        if status is not None:
            self.status = status
        if self.enabled and (now - self.last_draw >= (0.2 if self.tty else self.log_every)):
            self._draw()
            self.last_draw = now

    def rate(self) -> float:
        dt = self.clock() - self.t0
        return (self.count - self.start_count) / dt if dt > 0 else 0.0

    def _remaining_updates(self) -> list:
        if self.plan is not None:
            return list(self.plan)
        items = max(0, self.total - self.count)
        cap = self.max_batch or self.last_size
        if items == 0 or cap <= 0:
            return []
        q, r = divmod(items, cap)
        return [cap] * q + ([r] if r else [])

    def eta(self) -> float | None:
        """Seconds left, or None before the first update (nothing measured yet)."""
        left = self._work_eta()
        if self.deadline is None:
            return left
        budget = max(0.0, self.deadline - self.clock())
        return budget if left is None else min(left, budget)

    def _work_eta(self) -> float | None:
        rest = self._remaining_updates()
        if not rest:
            return 0.0 if self.count >= self.total else None
        if self.work_done <= 0:
            return None
        return (self.clock() - self.t0) / self.work_done * sum(map(self.work, rest))

    def _draw(self, final: bool = False):
        elapsed = self.clock() - self.t0
        left = self.eta()
        pct = 100.0 * self.count / self.total if self.total else 100.0
        width = 24
        filled = int(width * min(1.0, self.count / self.total)) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        eta = _fmt_time(left) if left is not None else "?"
        line = (f"{self.label} [{bar}] {self.count}/{self.total} {pct:5.1f}% "
                f"{self.rate():.2f} {self.unit}/s {_fmt_time(elapsed)} elapsed ETA {eta} {self.status}")
        line = line.rstrip()[:199]
        if self.tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
