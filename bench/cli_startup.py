"""How long `progressbench --help` takes (target: <= 0.3 s), median of N fresh processes.

python bench/cli_startup.py [N]
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time


def main(n: int = 15) -> None:
    exe = shutil.which("progressbench")
    cmd = [exe, "--help"] if exe else [sys.executable, "-m", "progressbench.cli", "--help"]
    times = []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    print(
        f"progressbench --help: median {statistics.median(times):.3f} s, max {max(times):.3f} s "
        f"over {n} runs (target <= 0.3 s)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
