"""The run's timekeeper: the training clock, the cost meter, the speed probe and the checkpoint
records, in a process of their own that the program cannot reach.

The harness forks it before any program code runs (``Keeper``, through the core's
``spawn_witness``: not traceable, no way into its descriptors, and the only holder of the
phase's witness file). From then on the training process sends it one JSON line per event and
waits for its one-line reply. While the training process waits, the keeper reads that
process's CPU clock (``clock_gettime`` on its process CPU clock: every thread of it) and its
own wall clock, so every reading is exact at the event and none can be changed from inside
the training process:

    start                   the clock runs
    pause {kind}            off the clock: warmup, refill, probe, checkpoint, profile, end
    resume                  back on the clock
    tick                    a batch is asked for (the previous batch's work ended);
                            reply: the clock's wall and CPU seconds, and the cost so far
    now                     reply: the clock's wall and CPU seconds
    probe {reps}            the keeper times its own speed probe (while the training waits)
    refill {n}              the tiny corpus's next n tokens (the keeper generates them);
                            reply: a header line, then the tokens' bytes
    checkpoint {tokens}     reply: the checkpoint's record (index, steps, times, cost)
    saved {index, ...}      what the harness saved for it (file, digest, probe loss)
    end                     the keeper writes its record to the witness file and exits

The program can write to the event pipe (it is in its process), but what it can do with that is
limited to what the record shows: an extra tick is a step, a pause is a window whose CPU in the
training process is measured and stored (``pauses``: a pause the program used to train shows as
CPU there, which ``assess`` bounds), and stopping the keeper leaves no record (an invalid run).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import numpy as np
import torch

from progressbench import spawn_witness, write_witness

from . import corpus, cost, integrity

RECORD_VERSION = 1
MAX_REFILL = 1 << 24  # tokens per refill (the harness asks for 2**18 or a batch)
PAUSE_KINDS = ("warmup", "refill", "probe", "checkpoint", "profile", "end")


def _process_cpu_clock(pid: int) -> int:
    """The clock id of ``pid``'s process CPU clock (Linux's CPUCLOCK_SCHED of a whole
    thread group: what ``clock_getcpuclockid`` returns)."""
    return (~pid << 3) | 2


def _last_core(pid: int) -> int | None:
    """The CPU ``pid`` last ran on (field 39 of /proc/PID/stat), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return int(fields[36])
    except (OSError, IndexError, ValueError):
        return None


class _Books:
    """The keeper's state: it runs in the keeper process only."""

    def __init__(self, pid: int, cost_clock: bool, warmup_cap_s: float, world: int):
        self.clock_id = _process_cpu_clock(pid)
        self.pid = pid
        self.world = world
        self.cost_clock = cost_clock
        self.warmup_cap_s = warmup_cap_s
        self.wall = self.cpu = 0.0  # on the clock so far
        self.since: tuple[float, float] | None = None  # (wall, cpu) when it last started
        self.paused: tuple[str, float, float] | None = None
        self.pauses = {kind: {"n": 0, "wall_s": 0.0, "cpu_s": 0.0} for kind in PAUSE_KINDS}
        self.warmup_s = 0.0
        self.profile_marks: list[int] = []  # steps done at each profile pause
        self.meter = cost.CostMeter()
        self.probe: cost.SpeedProbe | None = None
        self.checkpoints: list[dict[str, Any]] = []
        self.corpus: corpus.CorpusStream | None = None

    def refill(self, n: int) -> np.ndarray:
        if self.corpus is None:
            self.corpus = corpus.CorpusStream("train")
        return self.corpus.take(max(0, min(int(n), MAX_REFILL)))

    def now(self) -> tuple[float, float]:
        return time.perf_counter(), time.clock_gettime(self.clock_id)

    def totals(self) -> tuple[float, float]:
        if self.since is None:
            return self.wall, self.cpu
        wall, cpu = self.now()
        return self.wall + wall - self.since[0], self.cpu + cpu - self.since[1]

    def start(self) -> None:
        if self.paused is not None:
            kind, wall0, cpu0 = self.paused
            wall, cpu = self.now()
            books = self.pauses[kind]
            books["n"] += 1
            books["wall_s"] += wall - wall0
            books["cpu_s"] += cpu - cpu0
            if kind == "warmup":  # compilation is free up to the cap; beyond it, training
                over_before = max(0.0, self.warmup_s - self.warmup_cap_s)
                self.warmup_s += wall - wall0
                self.wall += max(0.0, self.warmup_s - self.warmup_cap_s) - over_before
            self.paused = None
        if self.since is None:
            self.since = self.now()

    def pause(self, kind: str) -> None:
        if kind not in self.pauses:
            raise ValueError(f"unknown pause {kind!r}")
        self.wall, self.cpu = self.totals()
        self.since = None
        if kind == "profile":
            self.profile_marks.append(len(self.meter.step_times))
        if self.paused is None:
            wall, cpu = self.now()
            self.paused = (kind, wall, cpu)

    def tick(self) -> dict[str, float]:
        wall, cpu = self.totals()
        self.meter.tick(wall, cpu)
        return {"wall": wall, "cpu": cpu, "cost": self.meter.running(cpu)}

    def time_probe(self, reps: int) -> list[float]:
        """The speed probe, timed here on the core the training process last ran on: the
        probe calibrates the steps by that core's speed (a shared physical core, a noisy
        neighbour), so it runs where they ran."""
        core = _last_core(self.pid)
        if core is not None:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {core})
        if self.probe is None:
            self.probe = cost.SpeedProbe(time.process_time)
        return self.probe.measure(max(1, min(int(reps), 50)))

    def checkpoint(self, tokens: int) -> dict[str, Any]:
        wall, cpu = self.totals()
        cost_s = wall
        if self.cost_clock:
            cost_s = self.meter.checkpoint(self.time_probe(cost.PROBE_REPS), wall)
        record = {
            "index": len(self.checkpoints),
            "train_time_s": round(wall, 4),
            "cpu_s": round(cpu, 4),
            "tokens": int(tokens),
            "steps": len(self.meter.step_times),
            "cost_s": round(cost_s, 4),
        }
        self.checkpoints.append(record)
        return dict(record)

    def saved(self, index: int, fields: dict[str, Any]) -> None:
        record = self.checkpoints[int(index)]
        for key in ("file", "digest", "probe_loss"):
            if key in fields and key not in record:
                record[key] = fields[key]

    def _profiled_steps(self) -> int:
        """The steps in the profiler's window: between its two pauses."""
        marks = self.profile_marks
        return marks[1] - marks[0] if len(marks) >= 2 else 0

    def record(self) -> dict[str, Any]:
        wall, cpu = self.totals()
        return {
            "version": RECORD_VERSION,
            "pid": self.pid,
            "world_size": self.world,
            "train_time_s": round(wall, 4),
            "cpu_s": round(cpu, 4),
            "steps": len(self.meter.step_times),
            "warmup_s": round(self.warmup_s, 4),
            "profiled_steps": self._profiled_steps(),
            "checkpoints": self.checkpoints,
            "pauses": {
                k: {"n": b["n"], "wall_s": round(b["wall_s"], 4), "cpu_s": round(b["cpu_s"], 4)}
                for k, b in self.pauses.items()
            },
            "step_cost": self.meter.summary() if self.cost_clock else None,
        }


def _serve(books: _Books, events: int, replies: int, witness: int | None) -> None:
    """The keeper's loop: one reply per event, until ``end`` or the training process is gone."""
    inbox = os.fdopen(events, "rb")
    outbox = os.fdopen(replies, "wb", buffering=0)
    for line in inbox:
        message = json.loads(line)
        op = message.get("op")
        reply: Any = {}
        if op == "start" or op == "resume":
            books.start()
        elif op == "pause":
            books.pause(str(message.get("kind")))
        elif op == "tick":
            reply = books.tick()
        elif op == "now":
            wall, cpu = books.totals()
            reply = {"wall": wall, "cpu": cpu}
        elif op == "probe":
            books.meter.probe(books.time_probe(int(message.get("reps", 1))))
        elif op == "refill":
            tokens = books.refill(int(message.get("n", 0)))
            data = tokens.tobytes()
            header = {"dtype": tokens.dtype.str, "bytes": len(data)}
            outbox.write(json.dumps(header).encode() + b"\n" + data)
            continue
        elif op == "checkpoint":
            reply = books.checkpoint(int(message.get("tokens", 0)))
        elif op == "saved":
            books.saved(int(message["index"]), message)
        elif op == "end":
            books.pause("end")
            reply = books.record()
            if witness is not None:
                write_witness(witness, reply)
        else:
            reply = {"error": f"unknown event {op!r}"}
        outbox.write(json.dumps(reply).encode() + b"\n")
        if op == "end":
            return


class Keeper:
    """The training process's end of the keeper: ``call`` sends an event and returns the
    keeper's reply."""

    def __init__(self, cost_clock: bool, warmup_cap_s: float, world: int = 1):
        events_r, events_w = os.pipe()
        replies_r, replies_w = os.pipe()
        parent = os.getpid()

        def main(witness: int | None) -> None:
            # One thread, as the probe's reference was measured (and a forked OpenMP pool
            # would hang).
            torch.set_num_threads(1)
            books = _Books(parent, cost_clock, warmup_cap_s, world)
            _serve(books, events_r, replies_w, witness)

        self.pid = spawn_witness(main, keep=(events_r, replies_w))
        os.close(events_r)
        os.close(replies_w)
        self._out = os.fdopen(events_w, "wb", buffering=0)
        self._in = os.fdopen(replies_r, "rb")

    def call(self, op: str, **fields: Any) -> Any:
        self._out.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        line = self._in.readline()
        if not line:
            raise RuntimeError("the run's timekeeper is gone (its process was stopped)")
        return json.loads(line)

    def refill(self, n: int) -> np.ndarray:
        """The tiny corpus's next ``n`` tokens, generated by the keeper."""
        header = self.call("refill", n=int(n))
        data = self._in.read(int(header["bytes"]))
        if len(data) != header["bytes"]:
            raise RuntimeError("the run's timekeeper is gone (its process was stopped)")
        return np.frombuffer(data, dtype=np.dtype(header["dtype"]))

    def close(self) -> None:
        """After ``end``: reap the keeper, its CPU accounted as the harness's own."""
        self._out.close()
        self._in.close()
        _, _, usage = os.wait4(self.pid, 0)
        integrity.count_child(usage)
