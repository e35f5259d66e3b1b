"""The nanogpt environment's platform side: registration through the plugin manager, its
declarations, the assessment rules, and the telemetry text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from progressbench import plugins
from progressbench.contracts.program import join_files
from progressbench.run.edits import evolve_regions
from progressbench.sandbox.loader import write_program
from progressbench_environments.nanogpt import env as env_module
from progressbench_environments.nanogpt import static
from progressbench_environments.nanogpt.config import SPEEDRUN, TINY
from progressbench_environments.nanogpt.env import NanoGPT
from progressbench_plugins.agents.offline import knobs


@pytest.fixture(scope="module")
def nanogpt() -> Any:
    return plugins.get_environment("nanogpt")  # its entry point registers it


def test_registered_through_the_plugin_manager(nanogpt: Any) -> None:
    assert isinstance(nanogpt, NanoGPT)
    assert set(nanogpt.variants) == {"tiny", "speedrun"}
    assert nanogpt.variants["speedrun"].requires_gpu and not nanogpt.variants["tiny"].requires_gpu
    assert nanogpt.verifies and nanogpt.frontier == ("train_cost_s", "val_loss")
    assert "torch" in nanogpt.preload


def test_objective_resources_features(nanogpt: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env_module, "visible_gpus", lambda: 0)
    objective = nanogpt.objective("tiny")
    assert objective.metric == "cost_to_target_s" and objective.direction == "minimize"
    tiny = nanogpt.resources("tiny")
    assert tiny.cpus == 1 and tiny.gpus == 0
    # The wall cap (2.5x the budget) bounds an evaluation on a loaded machine.
    assert tiny.seconds <= 450 and tiny.smoke_seconds <= 30
    assert nanogpt.verification("tiny")["faster"] == "cost_to_target_s"
    assert nanogpt.resources("speedrun").gpus >= 1
    assert [f.name for f in nanogpt.features("tiny")] == ["log10_params", "log10_tokens_per_s"]
    description = nanogpt.task_description("tiny")
    assert (
        f"{TINY.target}" in description
        and "build_model" in description
        and "entropy floor" in description
    )


def test_variant_choice_and_availability(
    nanogpt: Any, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(env_module, "visible_gpus", lambda: 0)
    assert nanogpt.pick_variant(None) == "tiny" and nanogpt.pick_variant("speedrun") == "speedrun"
    assert nanogpt.unavailable("tiny") is None
    assert "needs at least one CUDA GPU" in nanogpt.unavailable("speedrun")
    assert "no variant 'huge'" in nanogpt.unavailable("huge")
    monkeypatch.setattr(env_module, "visible_gpus", lambda: 8)
    monkeypatch.setenv("PROGRESSBENCH_DATA", str(tmp_path))
    assert nanogpt.pick_variant(None) == "speedrun"
    assert "progressbench data nanogpt --variant speedrun" in nanogpt.unavailable("speedrun")


def test_visible_gpus_without_cuda() -> None:
    assert env_module.visible_gpus() == 0  # this machine has none, with torch loaded or not


@pytest.mark.parametrize("variant", ["tiny", "speedrun"])
def test_baselines_are_evolvable_and_pass_the_static_scan(nanogpt: Any, variant: str) -> None:
    code = nanogpt.baseline(variant)
    assert len(evolve_regions(code)) >= 3
    names = {k.name for k in knobs(code)}
    assert {"MODEL_DIM", "N_LAYER", "MATRIX_LR", "TRAIN_STEPS"} <= names
    assert "def build_model(vocab_size)" in code and "def train(model, h)" in code
    assert static.scan(code) == []


# --- assessment ------------------------------------------------------------------------------
def run_result(
    times: list[float],
    vals: list[float],
    *,
    budget: float = 90.0,
    probe_shift: float = 0.0,
    costs: list[float] | None = None,
    **verified_extra: Any,
) -> tuple[dict, dict]:
    """A raw run result and its verification with the given checkpoint times (wall), costs
    (the primary clock; the wall times unless given) and val losses."""
    checkpoints = [
        {
            "index": i,
            "file": f"ckpt_{i:03d}.pt",
            "digest": "d",
            "train_time_s": t,
            "cost_s": c,
            "tokens": 1000 * (i + 1),
            "steps": 10 * (i + 1),
            "probe_loss": v + 0.01,
        }
        for i, (t, c, v) in enumerate(zip(times, costs or times, vals, strict=True))
    ]
    raw = {
        "ok": True,
        "budget_s": budget,
        "tokens": 1000 * len(times),
        "params": 600_000,
        "train_time_s": times[-1],
        "stop_reason": "budget",
        "checkpoints": checkpoints,
        "telemetry": {"tokens_per_s": 20_000.0, "sections": {}, "train_curve": [[0, 0, 3.4]]},
        "violations": [],
        "tampered": [],
    }
    verified = {
        "ok": True,
        "checkpoints": [
            {
                "index": c["index"],
                "train_time_s": c["train_time_s"],
                "cost_s": c["cost_s"],
                "steps": c["steps"],
                "tokens": c["tokens"],
                "reported_probe_loss": c["probe_loss"],
                "probe_loss": c["probe_loss"] + probe_shift,
                "val_loss": v,
                "val_stderr": 0.005,
                "spot_error": 1e-7,
            }
            for c, v in zip(checkpoints, vals, strict=True)
        ],
        "causality_best": {"prefix_change": 0.0, "cross_change": 0.0},
        "causality_final": {"prefix_change": 0.0, "cross_change": 0.0},
        "fresh": {
            "val_loss": min(vals),
            "fresh_loss": min(vals) + 0.01,
            "gap": 0.01,
            "limit": 0.05,
        },
        "tampered": [],
        "violations": [],
    }
    verified.update(verified_extra)
    return raw, verified


T = TINY.target


def test_reaching_the_target_scores_by_time(nanogpt: Any) -> None:
    raw, verified = run_result([10, 20, 30, 40], [T + 1.0, T + 0.3, T - 0.05, T - 0.2])
    a = nanogpt.assess(raw, verified, "tiny")
    assert a.valid and a.metrics["cost_to_target_s"] == 30 and a.metrics["val_loss"] == T - 0.05
    assert a.metrics["time_to_target_s"] == 30 and a.metrics["steps_to_target"] == 30
    assert a.metrics["tokens_to_target"] == 3000
    assert a.metrics["best_val_loss"] == T - 0.2 and a.metrics["reached_target"] == 1.0
    assert a.metrics["train_time_s"] == 30 and a.metrics["tokens"] == 3000
    assert a.metrics["gap_to_floor"] == pytest.approx(T - 0.05 - TINY.entropy_floor)
    assert a.score == pytest.approx(90 / 30)
    assert a.telemetry["val_curve"][-1] == [40, 4000, T - 0.2]  # by step


def test_the_estimated_cost_is_the_primary_clock_on_tiny(nanogpt: Any) -> None:
    """A loaded machine doubles the wall time; the score, the budget and the frontier follow
    the estimate, and the wall time stays beside it."""
    raw, verified = run_result([60, 120], [T + 0.2, T - 0.1], costs=[30, 60])
    a = nanogpt.assess(raw, verified, "tiny")
    assert a.valid and a.metrics["reached_target"] == 1.0  # 120 s of wall, 60 s of cost
    assert a.metrics["cost_to_target_s"] == 60 and a.metrics["time_to_target_s"] == 120
    assert a.metrics["train_cost_s"] == 60 and a.score == pytest.approx(90 / 60)
    raw, verified = run_result([60, 120], [T + 0.2, T - 0.1], costs=[60, 120])
    assert nanogpt.assess(raw, verified, "tiny").metrics["reached_target"] == 0.0


def test_any_run_reaching_the_target_outranks_any_that_does_not(nanogpt: Any) -> None:
    slow = nanogpt.assess(*run_result([85], [T - 0.01]), "tiny")
    fast = nanogpt.assess(*run_result([20], [T - 0.3]), "tiny")
    close = nanogpt.assess(*run_result([90], [T + 0.01]), "tiny")
    far = nanogpt.assess(*run_result([90], [T + 1.0]), "tiny")
    assert fast.score > slow.score > 0 > close.score > far.score
    assert "time_to_target_s" not in close.metrics and close.metrics["val_loss"] == T + 0.01


def test_checkpoints_past_the_budget_do_not_count(nanogpt: Any) -> None:
    a = nanogpt.assess(*run_result([50, 100], [T + 0.1, T - 0.1], budget=90), "tiny")
    assert a.valid and a.metrics["reached_target"] == 0.0 and a.metrics["val_loss"] == T + 0.1
    # A run cannot widen its own budget beyond the variant's.
    late = 1.25 * TINY.budget_s  # past the variant's budget
    a = nanogpt.assess(*run_result([50, late], [T + 0.1, T - 0.1], budget=500), "tiny")
    assert a.metrics["budget_s"] == TINY.budget_s and a.metrics["reached_target"] == 0.0


def test_a_probe_mismatch_is_invalid_with_both_numbers(nanogpt: Any) -> None:
    a = nanogpt.assess(*run_result([10, 20], [2.0, T - 0.1], probe_shift=0.3), "tiny")
    assert not a.valid and "fresh process" in a.reason
    assert a.metrics["reported_probe_loss"] == pytest.approx(2.01)
    assert a.metrics["verified_probe_loss"] == pytest.approx(2.31)
    assert "2.01000" in a.reason and "2.31000" in a.reason


def test_validation_far_below_the_probe_is_invalid_with_both_numbers(nanogpt: Any) -> None:
    raw, verified = run_result([10, 20], [2.0, 1.4])
    last = verified["checkpoints"][-1]
    last.update(probe_loss=1.41, probe_gap=0.01, probe_gap_limit=0.05)
    assert nanogpt.assess(raw, verified, "tiny").valid  # within the sampling noise
    last.update(val_loss=0.6, probe_gap=0.81)
    a = nanogpt.assess(raw, verified, "tiny")
    assert not a.valid and "fitted to the validation tokens" in a.reason
    assert "0.6000" in a.reason and "1.4100" in a.reason and "0.810 > 0.050" in a.reason
    assert a.metrics["val_loss"] == 0.6 and a.metrics["verified_probe_loss"] == 1.41


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"causality_final": {"prefix_change": 0.3, "cross_change": 0.0}}, "not causal"),
        ({"causality_best": {"prefix_change": 0.0, "cross_change": 0.2}}, "other sequences"),
        (
            {"fresh": {"val_loss": 0.5, "fresh_loss": 2.0, "gap": 1.5, "limit": 0.05}},
            "fitted to the validation",
        ),
        ({"tampered": ["torch.logsumexp"]}, "torch.logsumexp"),
        ({"violations": ["used reflection (gc.get_objects)"]}, "gc.get_objects"),
        ({"ok": False, "error": "ProgramError: boom"}, "verification failed: ProgramError: boom"),
    ],
)
def test_failed_checks_are_invalid_with_their_reason(
    nanogpt: Any, change: dict, reason: str
) -> None:
    raw, verified = run_result([10, 20], [2.0, 1.4])
    verified.update(change)
    a = nanogpt.assess(raw, verified, "tiny")
    assert not a.valid and a.score is None and reason in a.reason


def test_checkpoint_problems_and_run_failures(nanogpt: Any) -> None:
    raw, verified = run_result([10, 20], [2.0, 1.4])
    verified["checkpoints"][1] = {
        "index": 1,
        "error": "its file is not the one the harness saved (digest mismatch)",
    }
    assert "digest mismatch" in nanogpt.assess(raw, verified, "tiny").reason
    raw, verified = run_result([10], [float("nan")])
    verified["checkpoints"][0]["probe_loss"] = verified["checkpoints"][0]["reported_probe_loss"] = (
        float("nan")
    )
    assert "not finite" in nanogpt.assess(raw, verified, "tiny").reason
    assert "no result" in nanogpt.assess({}, None, "tiny").reason
    failed = {"ok": False, "violations": ["static check, line 3: uses open [forbidden-name]"]}
    assert "line 3: uses open" in nanogpt.assess(failed, None, "tiny").reason
    raw, _ = run_result([10], [1.4])
    raw["tampered"] = ["time.perf_counter"]
    assert "time.perf_counter" in nanogpt.assess(raw, None, "tiny").reason
    raw, _ = run_result([10], [1.4])
    assert "verification failed" in nanogpt.assess(raw, None, "tiny").reason


def test_speedrun_uses_its_own_target(nanogpt: Any) -> None:
    raw, verified = run_result([100, 200], [3.4, 3.27], budget=SPEEDRUN.budget_s)
    verified["fresh"] = None
    a = nanogpt.assess(raw, verified, "speedrun")
    assert a.valid and a.metrics["time_to_target_s"] == 200 and "entropy_floor" not in a.metrics
    assert a.metrics["cost_to_target_s"] == 200  # the speedrun's clock is the wall


def test_format_telemetry_is_compact_and_complete(nanogpt: Any) -> None:
    raw, verified = run_result([10, 20, 30], [2.0, 1.6, 0.9])
    raw["telemetry"].update(
        {
            "device": "cpu (2 threads) x1",
            "sections": {
                name: {"total_s": 1.0, "share": 0.25, "calls": 10, "mean_ms": 100.0}
                for name in ("forward", "backward", "optimizer", "data")
            },
            "profile": {
                "kind": "CPU ops by self time",
                "steps": 4,
                "top": [{"name": "aten::mm", "self_ms": 9.0, "share": 0.4, "calls": 12}],
            },
            "memory": {"peak_rss_mb": 700.0, "start_rss_mb": 250.0},
            "mfu": 0.31,
            "peak_flops": 1.9e11,
            "peak_flops_source": "measured fp32 matmul, 2 threads",
        }
    )
    text = nanogpt.format_telemetry(nanogpt.assess(raw, verified, "tiny").telemetry)
    lines = text.splitlines()
    assert len(lines) <= 8 and all(len(line) < 400 for line in lines)
    for needle in (
        "tok/s",
        "MFU 31.0%",
        "forward 25.0%",
        "aten::mm 40.0%",
        "peak RSS 700 MB",
        "0.900@step30",
        "entropy floor",
    ):
        assert needle in text
    assert nanogpt.format_telemetry({}) == ""


def test_mfu_only_against_a_peak_measured_idle(nanogpt: Any, monkeypatch, tmp_path) -> None:
    """A CPU's MFU uses the peak stored once per machine (with its date and load), over the
    estimated unloaded time; without a stored peak it is not shown."""
    from progressbench_environments.nanogpt import machine

    monkeypatch.setenv("PROGRESSBENCH_DATA", str(tmp_path))
    raw, verified = run_result([20, 40], [1.5, 0.9], costs=[10, 20])
    raw["telemetry"].update(
        {
            "device": "cpu (1 threads) x1",
            "threads": 1,
            "profile": {"kind": "CPU ops", "steps": 4, "top": [], "flops_per_token": 5e6},
            "step_cost": {
                "steps": 20, "cost_s": 20.0, "cost_ms_per_step": 1000.0, "step_ms_low": 1900.0,
                "step_ms_median": 2100.0, "step_cpu_ms_median": 1950.0, "probe_ms_median": 20.0,
                "probe_reference_ms": 10.0,
                "relative_noise": 0.012,
            },
        }
    )  # fmt: skip
    a = nanogpt.assess(raw, verified, "tiny")
    text = nanogpt.format_telemetry(a.telemetry)
    assert "mfu" not in a.metrics and "MFU not shown" in text
    assert "cost (estimated unloaded training time, CPU-based): 20.0s ± 1.2% over 20 steps" in text
    assert "wall 40.0s, 2.00x the estimate" in text
    assert machine.main(["--force"]) == 0
    peak, label = machine.load_peak(1)  # tiny trains on one thread
    assert peak > 0 and "measured 20" in label and "at load" in label
    a = nanogpt.assess(raw, verified, "tiny")
    assert a.metrics["mfu"] == pytest.approx(5e6 * 2000 / 20 / peak)
    assert "MFU" in nanogpt.format_telemetry(a.telemetry)
    assert machine.load_peak(3) is None


@pytest.mark.parametrize(
    "line",
    [
        "torch._inductor.config.max_autotune = True",
        "import torch._inductor.config as cfg\ncfg.coordinate_descent_tuning = True",
        "from torch._inductor import config\nconfig.max_autotune_gemm = 1",
        "net = torch.compile(nn.Linear(2, 2), mode='max-autotune-no-cudagraphs')",
        "MODE = 'default'\nnet = torch.compile(nn.Linear(2, 2), mode=MODE)",
        "net = torch.compile(nn.Linear(2, 2), options={'max_autotune': True})",
        "with torch._inductor.config.patch(coordinate_descent_tuning=True):\n    pass",
        "torch._inductor.config.patch({'max_autotune_pointwise': True})",
    ],
)
def test_the_scan_refuses_inductor_autotuning(line: str) -> None:
    findings = static.scan(f"import torch\nfrom torch import nn\n{line}\n")
    assert [f.rule for f in findings] == ["compile-flag"], findings


def test_the_scan_lets_other_compiler_switches_through() -> None:
    source = (
        "import torch\nfrom torch import nn\ntorch._inductor.config.triton.cudagraphs = False\n"
        "torch._dynamo.config.cache_size_limit = 64\ntorch.backends.cudnn.benchmark = True\n"
        "net = torch.compile(nn.Linear(2, 2), mode='reduce-overhead', dynamic=False)\n"
    )
    assert static.scan(source) == []


def test_the_scan_reads_every_file_of_a_multi_file_program(tmp_path: Path) -> None:
    text = join_files(
        {
            "main.py": "import helpers\n\ndef build_model(vocab_size):\n    return None\n",
            "helpers.py": "import os\n\nos.system('true')\n",
            "pkg/deep.py": "X = open\n",
        }
    )
    program = write_program(tmp_path, text)
    findings = [str(f) for f in static.scan_program(program)]
    assert findings == [
        "line 3: helpers.py: uses os.system [forbidden-call]",
        "line 1: pkg/deep.py: uses open [forbidden-name]",
    ], findings
    one = tmp_path / "one"
    one.mkdir()
    assert static.scan_program(write_program(one, "X = open\n"))[0].rule == "forbidden-name"
