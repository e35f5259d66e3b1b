"""One command that checks the nanogpt speedrun path on a CUDA machine, the way a user drives
it (the CLI, in subprocesses), in under 8 minutes on one GPU; exit status 0 when every step that
ran passed, 1 when one failed, 2 when there is no CUDA GPU and no ``--dry-run``.

    python bench/gpu_check.py [--steps 400] [--data-dir D] [--dry-run]

Steps (each a row of the summary table: status ok / FAIL / skipped with the reason, seconds,
the figures that matter):

- environment: torch's version, ``torch.cuda.is_available()``, the devices' count and names.
- doctor: ``progressbench doctor``, its exit status and what it says about the sandbox.
- data: FineWeb10B shards where ``--data-dir`` (or the default place: ``progressbench data
  nanogpt --variant speedrun``) has them; otherwise small shards of random GPT-2 token ids the
  script writes itself into a temporary folder (world-readable: the sandbox's candidate uid
  reads them), passed to the runs as ``--env-option data_dir=...``. Random tokens teach nothing:
  the run cannot reach the 3.28 target, and a valid verdict is all that is asked.
- speedrun eval: ``progressbench eval --env nanogpt --variant speedrun --json`` on the baseline
  (environments/nanogpt/programs/speedrun.py, full width, torch.compile) on the first GPU, cut
  to ``--steps`` harness steps (``max_steps``: batches of 32 x 1024 tokens the train stream
  yields, 16 of them per optimizer step on one GPU) with a shrunk validation and probe set:
  smoke check, the sandboxed run, the verifier, the verdict. Reported: the verdict, the
  validation loss, tokens/s, the verification guard and the reported-vs-verified probe loss,
  telemetry (device, the profiler's top CUDA kernels, CUDA peak memory).
- clock: ``warmup_s`` (compilation inside ``h.warmup()``) and ``train_time_s`` apart; FAIL if
  the result shows the warm-up on the training clock (the first training-loss point's clock
  reading at or past the warm-up's length, or a warm-up of ~0 s where the program compiles).
- torchrun: with 2+ GPUs the same eval, shorter, with ``--env-option nproc=2`` (the harness
  then launches the program under torchrun, environments/nanogpt/launch.py); world size 2 and a
  valid verdict are asked.
- sandbox eval (tiny, CLI): ``--dry-run`` only (on a GPU the speedrun row is that check).

``--dry-run`` runs the same steps on CPU at toy size (CUDA_VISIBLE_DEVICES="" for every step),
in about a minute on 2 cores. The CLI refuses the speedrun variant without a CUDA GPU (exit 2,
by design), so there the speedrun row runs the speedrun harness (smoke, run, verify, assess)
through the environment's own runner, ``python -m progressbench_environments.nanogpt.local``,
which has no sandbox, on the baseline with its knobs shrunk as the tests shrink them (width 64,
one layer, sequences of 64); the tiny variant's ``progressbench eval --json`` then checks the
sandboxed CLI path and its JSON. torchrun is skipped. Load averages (os.getloadavg()) are
printed before and after: on a shared machine they say what the seconds are worth.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BASELINE = REPO / "environments" / "nanogpt" / "programs" / "speedrun.py"
TINY = REPO / "environments" / "nanogpt" / "programs" / "tiny.py"
NO_CUDA = "no CUDA GPU here: run with --dry-run to check the CPU path"
# The speedrun baseline's knobs at toy size (tests/environments/nanogpt/test_nanogpt_runs.py).
TOY_KNOBS = dict(
    MODEL_DIM=64, N_LAYER=1, HEAD_DIM=64, SEQ_LEN=64, MICRO_BATCH=2, GLOBAL_BATCH_SEQS=4,
    WARMUP_COMPILE_STEPS=1,
)  # fmt: skip
GPU_TOKENS_PER_STEP = 32 * 1024  # the baseline's MICRO_BATCH x SEQ_LEN: one harness step
DEADLINE_S = 480.0  # the whole check on one GPU


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Step:
    name: str
    status: str = "ok"  # ok | FAIL | skipped: why
    seconds: float = 0.0
    figures: list[str] = field(default_factory=list)

    def fail(self, why: str) -> None:
        self.status = "FAIL"
        self.figures.append(why)


def pb(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``progressbench ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "progressbench.cli", *args], capture_output=True, text=True,
        env=env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def tail(text: str, n: int = 300) -> str:
    return " ".join(text.strip().split())[-n:]


def check_environment(step: Step, dry: bool) -> list[str]:
    import torch

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    step.figures.append(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    if dry:
        step.figures.append("dry run: CPU only (CUDA_VISIBLE_DEVICES='' for every step)")
    else:
        step.figures.append(f"{len(names)} GPU(s): {', '.join(names)}")
    return names


def check_doctor(step: Step, env: dict[str, str], cwd: Path, gpu: bool) -> None:
    done = pb(["doctor"], env, cwd, 120)
    print("progressbench doctor:\n" + done.stdout.rstrip(), flush=True)
    lines = {}
    for line in done.stdout.splitlines():
        key, _, value = line.partition(":")
        lines[key.strip()] = value.strip()
    if done.returncode != 0:
        step.fail(f"exit {done.returncode}: {tail(done.stderr or done.stdout)}")
        return
    keys = ("network_namespace", "mount_namespace", "uid_drop", "private_tmp", "home_directory")
    keys += tuple(k for k in ("gpu_devices",) if k in lines)  # doctors that probe devices
    said = "; ".join(f"{k}: {lines.get(k, '?')}" for k in keys)
    step.figures.append(f"exit 0; {said}")
    devices = lines.get("gpu_devices", "")
    if gpu and (devices.startswith("none") or "cannot open" in devices):
        step.fail(f"the sandbox's candidates cannot reach the GPU ({devices})")
    if lines.get("network_namespace") != "yes" or lines.get("uid_drop") != "yes":
        step.figures.append("warning: the sandbox lacks a network namespace or a uid drop here")


def write_shards(folder: Path, train: int, val: int) -> Path:
    """Shards of random GPT-2 token ids (as tests/environments/nanogpt/test_nanogpt_data.py
    writes them); returns the ``data_dir`` to pass (its fineweb10B folder holds them)."""
    import numpy as np

    from progressbench_environments.nanogpt import shards
    from progressbench_environments.nanogpt.data import locate

    fw = locate(folder)
    fw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shards.write_shard(fw / shards.VAL_NAME, rng.integers(0, 50257, val))
    shards.write_shard(fw / "fineweb_train_000001.bin", rng.integers(0, 50257, train))
    for path in (folder, fw.parent, fw):  # the sandbox's candidate uid reads them
        path.chmod(0o755)
    for path in fw.iterdir():
        path.chmod(0o644)
    return folder


def check_data(
    step: Step, args: argparse.Namespace, work: Path, sizes: dict[str, int]
) -> str | None:
    """The ``data_dir`` option for the runs (None: the default place holds FineWeb)."""
    from progressbench_environments.nanogpt.data import locate, shards_missing

    if not args.dry_run:
        why = shards_missing(args.data_dir)
        if why is None:
            step.figures.append(f"FineWeb10B shards in {locate(args.data_dir)}")
            return args.data_dir
        step.figures.append(f"FineWeb absent ({why.split(':')[0]})")
    train = sizes["train"]
    val = sizes["val"]
    folder = write_shards(work / "data", train, val)
    step.figures.append(
        f"wrote random-token shards: train {train:,}, val {val:,} tokens in {locate(folder)}"
    )
    return str(folder)


def toy_program(work: Path) -> Path:
    source = BASELINE.read_text()
    for name, value in TOY_KNOBS.items():
        source, n = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", source, count=1, flags=re.M)
        if n != 1:
            raise RuntimeError(f"the baseline has no {name} knob")
    path = work / "speedrun_toy.py"
    path.write_text(source)
    return path


def cli_options(options: dict[str, Any]) -> list[str]:
    return [x for k, v in options.items() for x in ("--env-option", f"{k}={v}")]


def parse_cli(stdout: str) -> dict[str, Any]:
    """``eval --json``'s object, as the other rows read it."""
    d = json.loads(stdout)
    guards = {g["guard"]: g for g in d.get("guards", [])}
    check = guards.get("verification")
    return {
        "valid": bool(d.get("valid")),
        "verdict": d.get("status"),
        "reason": d.get("reason", ""),
        "metrics": d.get("metrics", {}),
        "telemetry": d.get("telemetry", {}),
        "verified": None if check is None else bool(check["passed"]),
        "verify_why": "" if check is None else check.get("reason", ""),
        "phases": {k: (d.get(k) or {}).get("seconds") for k in ("smoke", "full")},
    }


def parse_local(stdout: str) -> dict[str, Any]:
    """``nanogpt.local --json``'s object, in the same shape."""
    d = json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])
    a = d.get("assessment") or {}
    verified = d.get("verified")
    return {
        "valid": bool(a.get("valid")),
        "verdict": "valid" if a.get("valid") else "invalid",
        "reason": a.get("reason", ""),
        "metrics": a.get("metrics", {}),
        "telemetry": a.get("telemetry", {}),
        "verified": None if verified is None else bool(verified.get("ok")),
        "verify_why": (verified or {}).get("error", "") or d.get("verify_error", ""),
        "phases": {k: d.get(f"{k}_s") for k in ("smoke", "full", "verify")},
    }


def report_eval(step: Step, r: dict[str, Any], gpu: bool, world: int) -> None:
    m, tel = r["metrics"], r["telemetry"]
    phases = ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"].items() if v is not None)
    step.figures.append(f"verdict {r['verdict']}" + (f" ({r['reason']})" if r["reason"] else ""))
    if m:
        step.figures.append(
            f"val_loss {m.get('val_loss', float('nan')):.4f}, steps {m.get('steps', 0):.0f} "
            f"(best checkpoint), {m.get('tokens_per_s', 0):,.0f} tokens/s, "
            f"{m.get('params', 0) / 1e6:.1f}M params; phases: {phases}"
        )
    if r["verified"] is None:
        step.fail("no verification result")
    elif not r["verified"]:
        step.fail(f"verification failed: {tail(r['verify_why'])}")
    else:
        step.figures.append(
            f"verified: probe loss reported {m.get('reported_probe_loss', float('nan')):.5f} "
            f"= verifier's {m.get('verified_probe_loss', float('nan')):.5f}"
        )
    if not r["valid"]:
        step.fail(f"verdict {r['verdict']}: {tail(r['reason'])}")
    if not tel:
        step.fail("no telemetry in the result")
        return
    memory = tel.get("memory") or {}
    profile = tel.get("profile") or {}
    top = [f"{t['name'][:40]} {t['share']:.0%}" for t in (profile.get("top") or [])[:3]]
    step.figures.append(
        f"telemetry: {tel.get('device')}; peak RSS {memory.get('peak_rss_mb', 0):.0f} MB"
        + (f", CUDA peak {memory['cuda_peak_allocated_mb']:.0f} MB allocated"
           if "cuda_peak_allocated_mb" in memory else "")
        + (f"; profiler ({profile.get('kind')}): {', '.join(top)}" if profile else "; no profile")
    )  # fmt: skip
    if gpu:
        if "cuda_peak_allocated_mb" not in memory:
            step.fail("telemetry has no CUDA memory")
        if not profile or "CUDA" not in str(profile.get("kind")):
            step.fail("telemetry has no CUDA kernel profile (the profiler window did not run)")
    elif not profile:
        step.fail("telemetry has no profile (profile_at_s=0 asks for one)")
    if m and not str(tel.get("device", "")).endswith(f"x{world}"):
        step.fail(f"device {tel.get('device')!r}: expected x{world}")


def check_clock(step: Step, r: dict[str, Any] | None, compiles: bool, cap_s: float) -> None:
    """Compilation off the training clock, as far as the result shows it."""
    if r is None or not r["telemetry"]:
        step.status = "skipped: the speedrun eval gave no result"
        return
    tel = r["telemetry"]
    warm, train = float(tel.get("warmup_s", 0.0)), float(tel.get("train_time_s", 0.0))
    curve = tel.get("train_curve") or []
    first = float(curve[0][0]) if curve else None
    step.figures.append(
        f"warmup_s {warm:.2f}, train_time_s {train:.2f}, excluded_s {tel.get('excluded_s', 0):.2f}"
        + (f", clock at the first loss point {first:.2f} s" if first is not None else "")
    )
    if compiles and warm < 1.0:
        step.fail(f"warm-up {warm:.2f} s: torch.compile did not run inside h.warmup()")
    if first is None:
        step.fail("no train curve: cannot tell where the warm-up went")
    elif warm <= cap_s and warm >= 1.0 and first >= warm:
        step.fail(f"the clock read {first:.2f} s at the first loss point, past the warm-up "
                  f"({warm:.2f} s): the warm-up is on the clock")  # fmt: skip
    elif warm > cap_s:
        step.figures.append(f"warm-up past the {cap_s:.0f} s cap: the excess is charged (by rule)")
    if train <= 0:
        step.fail("train_time_s is 0")


def run_eval(
    step: Step, args: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> dict[str, Any] | None:
    try:
        done = pb(args, env, cwd, timeout)
    except subprocess.TimeoutExpired:
        step.fail(f"timed out after {timeout:.0f} s")
        return None
    try:
        r = parse_cli(done.stdout)
    except (ValueError, KeyError, TypeError):
        step.fail(f"exit {done.returncode}, no JSON: {tail(done.stderr or done.stdout)}")
        return None
    if done.returncode not in (0, 1):
        step.fail(f"exit {done.returncode}")
    return r


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Without --dry-run it needs a CUDA GPU (else it says so and exits 2). "
        "Install on the GPU machine: README.md's CUDA lines, then pip install -e '.[test]'.",
    )
    parser.add_argument("--steps", type=int, default=400,
                        help="harness steps (batches of 32 x 1024 tokens; 16 make one optimizer "
                             "step on one GPU) of the speedrun run [400]; torchrun gets a quarter")  # fmt: skip
    parser.add_argument("--data-dir", help="where FineWeb10B shards are (the data_dir option; "
                        "default: where `progressbench data nanogpt --variant speedrun` puts them); "
                        "absent shards are written by the script, random tokens")  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU only, toy sizes: the same steps in about a minute")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = env["CUDA_VISIBLE_DEVICES"] = ""
    started, before = time.perf_counter(), load()
    steps: list[Step] = []

    def timed(name: str) -> Step:
        step = Step(name)
        steps.append(step)
        step.seconds = time.perf_counter()
        return step

    def done(step: Step) -> None:
        step.seconds = time.perf_counter() - step.seconds
        print(f"{step.name}: {step.status} ({step.seconds:.1f} s) {'; '.join(step.figures)}",
              flush=True)  # fmt: skip

    step = timed("environment")
    try:
        gpus = check_environment(step, args.dry_run)
    except Exception as exc:  # a broken torch install is this row's finding
        step.fail(f"{type(exc).__name__}: {exc}")
        gpus = []
    if not args.dry_run and not gpus:
        print(NO_CUDA)
        return 2
    done(step)

    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.chmod(0o755)
    try:
        step = timed("doctor")
        check_doctor(step, env, work, gpu=not args.dry_run)
        done(step)

        if args.dry_run:
            sizes = {"train": 40_000, "val": 8_000}
            opts: dict[str, Any] = {
                "max_steps": 8, "val_tokens": 2048, "probe_tokens": 2048, "eval_batch": 1,
                "ckpt_every_steps": 1000, "time_budget_s": 300, "profile_at_s": 0, "threads": 2,
            }  # fmt: skip
        else:
            val, probe = 1 << 19, 1 << 18
            sizes = {"train": (args.steps + 16) * GPU_TOKENS_PER_STEP + probe + 1, "val": val + 1}
            opts = {
                "max_steps": args.steps, "val_tokens": val, "probe_tokens": probe,
                "ckpt_every_steps": max(1, args.steps // 2), "time_budget_s": 300,
                "profile_at_s": 5, "nproc": 1,
            }  # fmt: skip
        step = timed("data")
        data_dir = None
        try:
            data_dir = check_data(step, args, work, sizes)
        except Exception as exc:
            step.fail(f"{type(exc).__name__}: {exc}")
        done(step)
        if data_dir:
            opts = {"data_dir": data_dir, **opts}

        step = timed("speedrun eval")
        result = None
        if args.dry_run:
            refused = pb(["eval", "--env", "nanogpt", "--variant", "speedrun", "--json",
                          str(BASELINE), *cli_options(opts)], env, work, 120)  # fmt: skip
            said = " ".join(refused.stderr.split())
            said = said.split("cannot run here: ")[-1][:70]
            step.figures.append(f"CLI on CPU: exit {refused.returncode} ({said}...), by design; "
                                "so the harness via nanogpt.local (no sandbox), toy knobs")  # fmt: skip
            if refused.returncode != 2:
                step.fail("the CLI should refuse the speedrun without a GPU (exit 2)")
            command = [sys.executable, "-m", "progressbench_environments.nanogpt.local",
                       "--variant", "speedrun", "--json", str(toy_program(work))]  # fmt: skip
            command += [x for k, v in opts.items() for x in ("--option", f"{k}={v}")]
            try:
                ran = subprocess.run(command, capture_output=True, text=True, cwd=work,
                                     env={**env, "TRITON_INTERPRET": "0"}, timeout=300,
                                     stdin=subprocess.DEVNULL)  # fmt: skip
                result = parse_local(ran.stdout)
            except subprocess.TimeoutExpired:
                step.fail("timed out after 300 s")
            except (ValueError, IndexError):
                step.fail(f"exit {ran.returncode}, no JSON: {tail(ran.stderr)}")
        else:
            left = DEADLINE_S - (time.perf_counter() - started)
            one = {
                **env,
                "CUDA_VISIBLE_DEVICES": env.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0] or "0",
            }
            result = run_eval(step, ["eval", "--env", "nanogpt", "--variant", "speedrun",
                                     "--json", str(BASELINE), "--timeout", f"{left:.0f}",
                                     *cli_options(opts)], one, work, left + 60)  # fmt: skip
        if result is not None:
            report_eval(step, result, gpu=not args.dry_run, world=1)
        done(step)

        from progressbench_environments.nanogpt.config import SPEEDRUN

        step = timed("clock (compile excluded)")
        check_clock(step, result, compiles=not args.dry_run, cap_s=SPEEDRUN.warmup_cap_s)
        done(step)

        step = timed("torchrun (2 ranks)")
        if args.dry_run:
            step.status = "skipped: dry run"
        elif len(gpus) < 2:
            step.status = f"skipped: {len(gpus)} GPU"
        else:
            quarter = max(8, args.steps // 4)
            two = {**opts, "nproc": 2, "max_steps": quarter, "ckpt_every_steps": quarter}
            mask = env.get("CUDA_VISIBLE_DEVICES") or "0,1"
            pair = {**env, "CUDA_VISIBLE_DEVICES": ",".join(mask.split(",")[:2])}
            r2 = run_eval(step, ["eval", "--env", "nanogpt", "--variant", "speedrun", "--json",
                                 str(BASELINE), "--timeout", "540", *cli_options(two)],
                          pair, work, 600)  # fmt: skip
            if r2 is not None:
                report_eval(step, r2, gpu=True, world=2)
        done(step)

        step = timed("sandbox eval (tiny, CLI)")
        if not args.dry_run:
            step.status = "skipped: on a GPU the speedrun row ran under the sandbox"
        else:
            tiny = {"max_steps": 10, "val_tokens": 4096, "probe_tokens": 2048,
                    "ckpt_every_steps": 5, "threads": 1, "profile_at_s": 0}  # fmt: skip
            r = run_eval(step, ["eval", "--env", "nanogpt", "--variant", "tiny", "--json",
                                str(TINY), *cli_options(tiny)], env, work, 300)  # fmt: skip
            if r is not None:
                report_eval(step, r, gpu=False, world=1)
        done(step)
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    wall = time.perf_counter() - started
    print()
    print("| step | status | seconds | figures |")
    print("|---|---|---:|---|")
    for s in steps:
        print(f"| {s.name} | {s.status} | {s.seconds:.1f} | {'; '.join(s.figures)} |")
    failed = [s.name for s in steps if s.status == "FAIL"]
    mode = "dry run (CPU, toy sizes)" if args.dry_run else f"{len(gpus)} GPU(s)"
    print(f"\n{mode}: {wall:.1f} s wall; load average {before} -> {load()} "
          f"({os.cpu_count()} cores); {'FAILED: ' + ', '.join(failed) if failed else 'all ok'}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
