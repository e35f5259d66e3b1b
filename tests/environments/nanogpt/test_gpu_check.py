"""bench/gpu_check.py as a user runs it: the dry run passes on CPU, every step in its table;
without a GPU and without --dry-run it says so in one line and exits 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_env

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "gpu_check.py"
STEPS = (
    "environment",
    "doctor",
    "data",
    "speedrun eval",
    "clock (compile excluded)",
    "torchrun (2 ranks)",
    "sandbox eval (tiny, CLI)",
)


def gpu_check(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=cli_env(CUDA_VISIBLE_DEVICES=""),  # no GPU, whatever the machine has
        cwd=ROOT,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(400)
def test_dry_run_passes_on_cpu_and_tables_every_step() -> None:
    done = gpu_check("--dry-run", timeout=380)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    table = done.stdout[done.stdout.index("| step | status |") :]
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:] if "|" in line}
    assert set(rows) == set(STEPS), table
    for name in STEPS:
        status = rows[name].split("|")[2].strip()
        if name == "torchrun (2 ranks)":
            assert status == "skipped: dry run"
        else:
            assert status == "ok", rows[name]
    assert "verified: probe loss reported" in rows["speedrun eval"]
    assert "warmup_s" in rows["clock (compile excluded)"]
    assert "dry run (CPU, toy sizes)" in done.stdout and "all ok" in done.stdout


def test_without_a_gpu_it_asks_for_the_dry_run() -> None:
    done = gpu_check(timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout.strip() == "no CUDA GPU here: run with --dry-run to check the CPU path"
