"""Whole evaluations under the nanogpt harness (smoke, run, verify in fresh forked processes,
then assess), on CPU: the tiny variant, and the speedrun variant on small shards the test
writes, in one process and through torchrun; the Triton kernel in interpreter mode."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from test_nanogpt_data import write_fineweb

ROOT = Path(__file__).resolve().parents[3]
SMALL = ROOT / "tests" / "environments" / "nanogpt" / "nanogpt_data" / "small_gpt.py"
PROGRAMS = ROOT / "environments" / "nanogpt" / "programs"
# Bounded in steps, not seconds: the machine may be shared, and a loaded one only runs slower.
TINY_OPTIONS = {
    "max_steps": 40,
    "time_budget_s": 300,
    "ckpt_every_steps": 5,
    "profile_at_s": 0,
    "val_tokens": 8192,
    "probe_tokens": 4096,
    "threads": 1,
}


def evaluate(
    programs: list[Path],
    variant: str = "tiny",
    options: dict[str, Any] | None = None,
    smoke: bool = True,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run the local evaluator in a fresh interpreter (torch is forked there, never here)."""
    cmd = [
        sys.executable,
        "-m",
        "progressbench_environments.nanogpt.local",
        "--json",
        "--variant",
        variant,
    ]
    for key, value in (options or {}).items():
        cmd += ["--option", f"{key}={json.dumps(value)}"]
    if not smoke:
        cmd.append("--no-smoke")
    proc = subprocess.run(
        cmd + [str(p) for p in programs],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def shrink(source: str, **values: Any) -> str:
    """Change hyperparameters the way an agent's edit would (one assignment line each)."""
    for name, value in values.items():
        source, n = re.subn(
            rf"^{name} = .*$", f"{name} = {value!r}", source, count=1, flags=re.MULTILINE
        )
        assert n == 1, name
    return source


def test_small_program_end_to_end() -> None:
    (result,) = evaluate([SMALL], options=TINY_OPTIONS)
    a = result["assessment"]
    assert a["valid"], result
    assert result["smoke"]["steps"] >= 1
    m = a["metrics"]
    assert 1.0 < m["val_loss"] < 3.4 and result["raw"]["steps"] == 40
    assert m["reported_probe_loss"] == pytest.approx(m["verified_probe_loss"], abs=2e-3)
    assert m["warmup_s"] > 0 and m["tokens"] > 0
    tel = a["telemetry"]
    for name in ("forward", "backward", "optimizer", "data"):
        assert tel["sections"][name]["calls"] > 0 and tel["sections"][name]["total_s"] > 0
    assert sum(s["share"] for s in tel["sections"].values()) == pytest.approx(1.0, abs=0.01)
    assert tel["profile"]["top"] and tel["profile"]["steps"] >= 4
    assert tel["memory"]["peak_rss_mb"] > 0 and tel["profile"]["flops_per_token"] > 0
    assert "attention" in tel["profile"]["flops_counted"]
    cost = tel["step_cost"]  # the primary clock, with its noise, beside the wall clock
    assert cost["steps"] == 40 and 0 < m["train_cost_s"] and cost["probe_ms_median"] > 0
    assert tel["val_curve"] and tel["train_curve"] and tel["probe_curve"]


def test_tiny_reference_runs_and_smoke_catches_broken_programs(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    # Time-major logits train fine (the loss flattens them) but break the logits contract.
    cap = "return LOGIT_CAP * torch.tanh(logits / LOGIT_CAP)"
    tiny = (PROGRAMS / "tiny.py").read_text()
    broken.write_text(tiny.replace(cap, f"return ({cap[7:]}).transpose(0, 1).contiguous()"))
    noncausal = tmp_path / "noncausal.py"
    noncausal.write_text(
        (PROGRAMS / "tiny.py").read_text().replace("is_causal=True", "is_causal=False")
    )
    options = {**TINY_OPTIONS, "max_steps": 20}
    reference, broken_result, noncausal_result = evaluate(
        [PROGRAMS / "tiny.py", broken, noncausal], options=options
    )
    assert reference["assessment"]["valid"], reference
    # Zero-initialised head: log(32) = 3.466 at step 0; any training at all goes below it.
    assert reference["assessment"]["metrics"]["val_loss"] < 3.46
    assert (
        "must return logits of shape [8, 256, >= 32], got (256, 8, 32)"
        in broken_result["smoke_error"]
    )
    assert "the model is not causal" in noncausal_result["smoke_error"]
    assert not noncausal_result["assessment"]["valid"]


@pytest.fixture(scope="module")
def fineweb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    write_fineweb(root, [60_000, 40_000], 8_000)
    return root


def speedrun_program(tmp_path: Path) -> Path:
    """The speedrun reference at toy size (what an agent's edit of its knobs would give)."""
    source = shrink(
        (PROGRAMS / "speedrun.py").read_text(),
        MODEL_DIM=64, N_LAYER=1, HEAD_DIM=64, SEQ_LEN=64, MICRO_BATCH=2, GLOBAL_BATCH_SEQS=4,
        COMPILE=False, WARMUP_COMPILE_STEPS=1,
    )  # fmt: skip
    path = tmp_path / "speedrun_toy.py"
    path.write_text(source)
    return path


def speedrun_options(fineweb: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data_dir": str(fineweb),
        "val_tokens": 2048,
        "probe_tokens": 2048,
        "eval_batch": 1,
        "max_steps": 8,
        "time_budget_s": 300,
        "ckpt_every_steps": 1000,
        "threads": 1,
        **extra,
    }


def test_speedrun_on_cpu_in_one_process(fineweb: Path, tmp_path: Path) -> None:
    (result,) = evaluate(
        [speedrun_program(tmp_path)],
        variant="speedrun",
        options=speedrun_options(fineweb),
        smoke=False,
        env={"TRITON_INTERPRET": "0"},
    )
    a = result["assessment"]
    assert a["valid"], result
    assert result["raw"]["world_size"] == 1 and a["metrics"]["reached_target"] == 0.0
    assert a["metrics"]["val_loss"] > 3.28  # random tokens: nothing to learn, no target to reach
    assert result["verified"]["val_tokens"] == 2048 and result["verified"]["eval_seq_len"] == 1024


def test_speedrun_through_torchrun(fineweb: Path, tmp_path: Path) -> None:
    from progressbench_environments.nanogpt.launch import command

    line = command(Path("p.py"), Path("s.json"), 2)
    assert line[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    options = speedrun_options(fineweb, nproc=2, threads=2, max_steps=4)
    (result,) = evaluate(
        [speedrun_program(tmp_path)],
        variant="speedrun",
        options=options,
        smoke=False,
        env={"TRITON_INTERPRET": "0"},
    )
    a = result["assessment"]
    assert a["valid"], result
    raw = result["raw"]
    assert raw["world_size"] == 2 and raw["checkpoints"]
    # Both ranks read disjoint halves of each global batch: tokens count both.
    assert raw["tokens"] == raw["steps"] * 2 * 2 * 64


def test_triton_kernel_in_interpreter_mode(tmp_path: Path) -> None:
    """The speedrun reference's fused kernel, forward and backward, run by Triton's CPU
    interpreter while the harness's sentinel is armed (Triton reads sources, walks frames)."""
    pytest.importorskip("triton")
    program = PROGRAMS / "speedrun.py"
    script = f"""
import torch
from pathlib import Path
from progressbench.sandbox.loader import load_program
from progressbench_environments.nanogpt.integrity import Sentinel
sentinel = Sentinel(Path({str(program)!r}), [], Path("ckpt"))
with sentinel.active():
    m = load_program(Path({str(program)!r}))
    x = torch.randn(3, 1000, dtype=torch.float64, requires_grad=True)
    y = m.relu2(x)
    g = torch.randn_like(y)
    (dx,) = torch.autograd.grad(y, x, g)
assert torch.allclose(y, torch.relu(x) ** 2)
assert torch.allclose(dx, 2 * torch.relu(x) * g)
assert torch.ops.speedrun.relu2.default is not None and not sentinel.violations
print("ok")
"""
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TRITON_INTERPRET": "1"},
        cwd=tmp_path,
    )
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]


def test_through_the_platforms_local_evaluator() -> None:
    """The same environment under the platform's own evaluator: warm worker, sandboxed
    children (dropped uid, no network, hidden home when run as root), JSON across."""
    from progressbench import plugins
    from progressbench.contracts.evaluator import EvalJob, Limits

    env = plugins.get_environment("nanogpt")
    evaluator_cls = plugins.get("evaluators", "local")
    resources = env.resources("tiny")
    limits = Limits(seconds=resources.seconds, memory_mb=resources.memory_mb)
    hostile = ROOT / "tests" / "hostile" / "nanogpt" / "gc_hunt.py"
    with evaluator_cls(env, "tiny", 1) as evaluator:
        smoke, honest, refused = (
            evaluator.evaluate(
                EvalJob(program=p.read_text(), phase=m, limits=limits, options=TINY_OPTIONS)
            )
            for p, m in ((SMALL, "smoke"), (SMALL, "full"), (hostile, "full"))
        )
    assert smoke.ok and smoke.raw["steps"] == 3, smoke.error
    assert honest.ok and honest.verified is not None, honest.error
    a = env.assess(honest.raw, honest.verified, "tiny")
    assert a.valid and a.telemetry["sections"]["backward"]["calls"] == 40
    assert "profiler_start" not in honest.stderr  # kineto's chatter stays out of the agent's view
    assert refused.ok
    assert (
        "used reflection (gc.get_objects)"
        in env.assess(refused.raw, refused.verified, "tiny").reason
    )


def test_speedrun_shards_under_the_hidden_home_stay_readable_to_the_harness(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shards fetched to the default place (under the platform user's home, which the sandbox
    hides when run as root) or to $PROGRESSBENCH_DATA reach the harness in the sandbox: the
    variable passes the scrubbed environment and the environment declares the directory."""
    import pwd
    import tempfile

    from progressbench import plugins
    from progressbench.contracts.evaluator import EvalJob, Limits

    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    with tempfile.TemporaryDirectory(dir=home, prefix=".progressbench-test-") as data:
        write_fineweb(Path(data) / "nanogpt", [60_000, 40_000], 8_000)
        monkeypatch.setenv("PROGRESSBENCH_DATA", data)
        env = plugins.get_environment("nanogpt")
        assert env.readable_paths("speedrun") == [str(Path(data) / "nanogpt" / "fineweb10B")]
        options = {k: v for k, v in speedrun_options(Path("unused")).items() if k != "data_dir"}
        program = speedrun_program(tmp_path).read_text()
        resources = env.resources("speedrun")
        assert resources.file_mb and resources.disk_mb  # checkpoints are capped, not unbounded
        with plugins.get("evaluators", "local")(env, "speedrun", 1) as evaluator:
            outcome = evaluator.evaluate(
                EvalJob(
                    program=program,
                    phase="smoke",
                    limits=Limits(seconds=300, memory_mb=8192),
                    options=options,
                )
            )
            isolation = evaluator.isolation
    assert outcome.ok, (outcome.error, outcome.stderr[-2000:])
    assert outcome.raw["steps"] >= 1
    if os.geteuid() == 0:  # the home really was hidden around the shards
        assert str(home) in str(isolation)


def test_a_collective_one_rank_never_joins_fails_the_run_at_the_timeout(
    fineweb: Path, tmp_path: Path
) -> None:
    """Rank 1 never joins rank 0's first collective (it sleeps): without a collective timeout
    rank 0 would wait until the evaluation's time limit (minutes on the speedrun)."""
    program = speedrun_program(tmp_path)
    program.write_text(
        "import time\n"
        + program.read_text()
        + "\n\n_train = train\n\n\ndef train(model, h):\n"
        + "    if h.rank == 1:\n        time.sleep(600)\n    _train(model, h)\n"
    )
    options = speedrun_options(fineweb, nproc=2, threads=2, max_steps=4, collective_timeout_s=5)
    started = time.monotonic()
    (result,) = evaluate([program], variant="speedrun", options=options, smoke=False)
    assert time.monotonic() - started < 150
    assert result["raw"] is None and not result["assessment"]["valid"]
    # The first line names the cause, whatever torchrun's summary at the end says.
    first = next(line for line in result["full_error"].splitlines() if "torchrun (2" in line)
    assert "exited with status" in first and "Timed out" in first, result["full_error"]


def test_torch_compile_under_the_harness_is_valid_and_its_compile_off_the_clock(
    fineweb: Path, tmp_path: Path
) -> None:
    """What the speedrun does on a GPU, on CPU: torch.compile (Dynamo and Inductor, C++ kernels)
    inside h.warmup(), under the sentinel and the patch watch. First contact failed twice:
    Dynamo's guard expressions (string code) read ``__code__``, and Dynamo's tagging wrappers
    of nn.Module.__init__/__setstate__ looked like the program patching torch."""
    program = speedrun_program(tmp_path)
    source = program.read_text().replace("COMPILE = False", "COMPILE = True")
    source = source.replace(
        'if COMPILE and h.device.type == "cuda" and not h.smoke:', "if COMPILE and not h.smoke:"
    )
    assert "if COMPILE and not h.smoke:" in source
    program.write_text(source)
    (result,) = evaluate(
        [program], variant="speedrun", options=speedrun_options(fineweb, max_steps=4), smoke=False
    )
    a = result["assessment"]
    assert a["valid"], result
    raw = result["raw"]
    assert raw["violations"] == [] and raw["tampered"] == []
    # Compiling took seconds, in the warm-up: the four toy steps on the clock took less.
    assert raw["warmup_s"] > 1.0 and raw["train_time_s"] < raw["warmup_s"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the full sandbox (uid drop, namespaces) needs root")
def test_speedrun_through_torchrun_under_the_real_sandbox(tmp_path: Path) -> None:
    """Two gloo ranks started by the harness inside the local evaluator's sandbox: dropped
    uid, network namespace (the rendezvous on loopback), the speedrun's declared task limit,
    the data where the run's data_dir option says (bound into the worker's private /tmp)."""
    import shutil
    import tempfile

    from progressbench import plugins
    from progressbench.contracts.evaluator import EvalJob
    from progressbench.run import stages
    from progressbench.run.config import RunConfig

    data = Path(tempfile.mkdtemp(prefix="pb-fineweb-"))  # the candidate uid must read it
    try:
        write_fineweb(data, [60_000, 40_000], 8_000)
        for path in [data, *data.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        options = speedrun_options(data, nproc=2, threads=2, max_steps=4)
        env = plugins.get_environment("nanogpt")
        config = RunConfig(env="nanogpt", variant="speedrun", env_options=options)
        limits = stages.limits_for(env.resources("speedrun"), config, "full")
        assert limits.processes > 64
        program = speedrun_program(tmp_path).read_text()
        with stages.make_evaluator(env, "speedrun", 1, config) as evaluator:
            out = evaluator.evaluate(
                EvalJob(program=program, phase="full", options=options, limits=limits)
            )
        assert out.ok, out.error
        assert out.raw is not None and out.raw["world_size"] == 2 and out.raw["checkpoints"]
        assessment, _ = stages.assess_outcome(env, "speedrun", [], program, out)
        assert assessment.valid, assessment.reason
    finally:
        shutil.rmtree(data)
