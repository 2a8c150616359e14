"""A small progress bar for long work (training, coding many items): rate, ETA and a status."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "train") as bar: bar.update(1, "loss 0.12")``.

    Redraws in place on a terminal; elsewhere (logs, CI) prints a line at most every
    ``log_every`` seconds so that background runs still show their progress."""

    def __init__(self, total: int, label: str, unit: str = "it", stream=None,
                 enabled: bool = True, log_every: float = 30.0, start: int = 0):
        self.total, self.label, self.unit = total, label, unit
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.log_every = log_every
        self.count = start
        self.start_count = start
        self.t0 = time.monotonic()
        self.last_draw = 0.0
        self.status = ""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._draw(final=True)

    def update(self, n: int = 1, status: str | None = None):
        self.count += n
        if status is not None:
            self.status = status
        now = time.monotonic()
        if self.enabled and (now - self.last_draw >= (0.2 if self.tty else self.log_every)):
            self._draw()
            self.last_draw = now

    def rate(self) -> float:
        dt = time.monotonic() - self.t0
        return (self.count - self.start_count) / dt if dt > 0 else 0.0

    def _draw(self, final: bool = False):
        rate = self.rate()
        left = (self.total - self.count) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.count / self.total if self.total else 100.0
        width = 24
        filled = int(width * min(1.0, self.count / self.total)) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        eta = _fmt_time(left) if left == left else "?"
        line = (f"{self.label} [{bar}] {self.count}/{self.total} {pct:5.1f}% "
                f"{rate:.2f} {self.unit}/s ETA {eta} {self.status}")
        if self.tty:
            self.stream.write("\r" + line[:200] + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"
