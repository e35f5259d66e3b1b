"""A CPU's peak FLOP/s for MFU, measured once per machine while it is idle, stored with the
date and the load it was measured under; without it MFU is not shown. A peak measured during
each run shared that run's load: a 15x slowdown once printed as "MFU 58%".

    python -m progressbench_environments.nanogpt.machine [--threads 1] [--force]

Measuring refuses while the 1-minute load average is above ``IDLE_LOAD`` per core (``--force``
stores it anyway, with the load beside it). Reading is pure Python (assess runs in the
platform process).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from .config import default_data_dir

IDLE_LOAD = 0.25  # load average per core below which the machine counts as idle


def path() -> Path:
    return default_data_dir() / "machine.json"


def load_peak(threads: int) -> tuple[float, str] | None:
    """The stored peak for this host at ``threads`` threads, and a label saying when it was
    measured and under what load; None when there is none."""
    try:
        stored = json.loads(path().read_text())
        entry = stored[socket.gethostname()][str(threads)]
        peak = float(entry["peak_flops"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    label = (
        f"fp32 matmul, {threads} threads, measured {entry.get('measured', '?')} at load "
        f"{entry.get('loadavg', '?')}"
    )
    return peak, label


def measure(threads: int) -> dict[str, Any]:
    import torch

    from .telemetry import matmul_rate

    torch.set_num_threads(threads)
    return {
        "peak_flops": max(matmul_rate() for _ in range(3)),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)  # tiny trains on one
    parser.add_argument("--force", action="store_true", help="store it even under load")
    args = parser.parse_args(argv)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > IDLE_LOAD * cores and not args.force:
        print(
            f"the machine is not idle (load average {load:.2f} on {cores} cores); measure "
            "again when it is, or pass --force to store the figure with its load",
            file=sys.stderr,
        )
        return 2
    entry = measure(args.threads)
    target = path()
    try:
        stored = json.loads(target.read_text())
    except (OSError, ValueError):
        stored = {}
    stored.setdefault(socket.gethostname(), {})[str(args.threads)] = entry
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(stored, indent=1))
    print(f"{entry['peak_flops'] / 1e9:.1f} GFLOP/s stored in {target} ({entry})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
