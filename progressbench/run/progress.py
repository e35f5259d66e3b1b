"""A live one-line progress display (on a terminal) or periodic log lines (in CI and pipes)."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from progressbench.contracts.environment import format_score


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    def __init__(self, metric: str, stream: TextIO | None = None, width: int = 24):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.metric = metric
        self.width = width
        self._last_log = 0.0
        self._last_done = -1
        self._closed = False

    def update(self, stats: Any, budget: int, elapsed: float, calls: Any = None) -> None:
        """``stats``: the run's counters (``retries``: the fast error catcher's fix
        prompts); ``calls``: this session's model calls retried and failed, if any."""
        done = min(stats.done, budget)
        filled = int(self.width * done / budget) if budget else self.width
        bar = "#" * filled + "." * (self.width - filled)
        best = format_score(stats.best_metric)
        llm = ""
        if calls is not None and (calls.retries or calls.errors):
            llm = f"llm retries {calls.retries} errors {calls.errors}  "
        line = (
            f"[{bar}] {done}/{budget}  best {self.metric} {best}  failed {stats.failed}  "
            f"fixes {stats.retries}  {llm}${stats.cost:.4f}  {_clock(elapsed)}"
        )
        if self.tty:
            self.stream.write("\r" + line)
            if done >= budget:
                self.stream.write("\n")
            self.stream.flush()
            return
        # Not a terminal: a line every 10% or 30 s, and at the end.
        step = max(1, budget // 10)
        now = time.monotonic()
        due = done >= budget or done - self._last_done >= step or now - self._last_log >= 30
        if due and done != self._last_done:
            self.stream.write(line + "\n")
            self.stream.flush()
            self._last_log, self._last_done = now, done

    def close(self) -> None:
        """End the live line (once: Ctrl-C and the normal end may both ask)."""
        if self.tty and not self._closed:
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True
