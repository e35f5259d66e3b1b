"""Multi-process runs: the torchrun command line, and the entry point each worker runs.

    python -m torch.distributed.run --standalone --nproc_per_node=N \\
        -m progressbench_environments.nanogpt.launch PROGRAM SPEC.json

Rank 0 writes the raw result into the harness's checkpoint directory (which the program may not
write), then every worker leaves with ``os._exit`` so that no program code (atexit handlers,
threads) runs after the result exists.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from .config import RunSpec

RESULT = "result.json"
SPEC = "spec.json"
MODULE = __name__


def command(program: Path, spec_path: Path, nproc: int) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", MODULE, str(program), str(spec_path),
    ]  # fmt: skip


def launch(program: Path, spec: RunSpec, nproc: int, timeout: float) -> dict[str, Any]:
    """Run the program on ``nproc`` processes and return rank 0's raw result."""
    from .harness import CHECKPOINT_DIR

    directory = Path(spec.scratch) / CHECKPOINT_DIR
    directory.mkdir(parents=True, exist_ok=True)
    spec_path = directory / SPEC
    spec_path.write_text(json.dumps(spec.to_json()))
    result = directory / RESULT
    result.unlink(missing_ok=True)
    env = dict(os.environ)
    # Each worker gets its share of the CPU threads (torchrun would otherwise set 1).
    env["OMP_NUM_THREADS"] = str(max(1, spec.threads // nproc))
    proc = subprocess.run(
        command(program, spec_path, nproc),
        cwd=spec.scratch,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    sys.stdout.write(proc.stdout[-20_000:])
    sys.stderr.write(proc.stderr[-20_000:])
    if proc.returncode != 0 or not result.exists():
        output = proc.stderr or proc.stdout
        raise RuntimeError(
            f"torchrun ({nproc} processes) exited with status {proc.returncode}: "
            f"{_first_error(output)}\n{output[-3000:]}"
        )
    return json.loads(result.read_text())


def _first_error(output: str) -> str:
    """The first exception a rank printed (a collective's timeout, the program's error):
    torchrun's own summary, which ends the output, names only the rank that failed."""
    for line in output.splitlines():
        found = _EXCEPTION_LINE.match(line.strip())
        if found and "ChildFailedError" not in line:
            return found.group(1)[:500]
    return "no rank printed an exception"


_EXCEPTION_LINE = re.compile(r"^(?:\[rank\d+\]:\s*)?((?:[\w.]+\.)?\w*(?:Error|Exception)\b:.*)")


def main(argv: list[str]) -> int:
    from .harness import CHECKPOINT_DIR, run_training

    program, spec_path = Path(argv[0]), Path(argv[1])
    spec = RunSpec.from_json(json.loads(spec_path.read_text()))
    try:
        raw = run_training(program, spec)
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    if int(os.environ.get("RANK", "0")) == 0:
        out = Path(spec.scratch) / CHECKPOINT_DIR / RESULT
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw))
        tmp.replace(out)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
