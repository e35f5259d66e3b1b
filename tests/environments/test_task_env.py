"""Tasks in the OpenEvolve / SkyDiscover format (``--env task:PATH``): the folder read in the
platform, its evaluator run in the sandbox (cascade stage 1 as the smoke check), what comes
back judged in the platform, bad folders refused in one line, and whole runs on the
leaderboard with their trust label."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, pb, query

from progressbench import PluginError, UserError, hookimpl, plugins
from progressbench.testing import check_program

TASKS = REPO / "tests" / "tasks"
CASCADE = TASKS / "cascade"
PROGRAM = "# EVOLVE-BLOCK-START\nX = 1.0\n# EVOLVE-BLOCK-END\n"


def task(root: Path, evaluator: str, program: str = PROGRAM, **files: str) -> Path:
    """A task folder: ``files`` maps a file name (dots as underscores) to its text."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "initial_program.py").write_text(program)
    (root / "evaluator.py").write_text(textwrap.dedent(evaluator))
    for name, text in files.items():
        (root / name.replace("_", ".")).write_text(textwrap.dedent(text))
    return root


def test_a_task_folder_resolves_to_one_environment(monkeypatch):
    monkeypatch.chdir(REPO)
    env = plugins.get_environment("task:tests/tasks/cascade")
    assert env.name == f"task:{CASCADE}"
    assert plugins.get_environment(f"task:{CASCADE}") is env
    assert env.trust == "evaluator-in-sandbox"
    assert env.baseline("default") == (CASCADE / "initial_program.py").read_text()
    # config.yaml: the system message is the task text, the evaluator's timeout the limit.
    assert env.description.startswith("You improve a one-dimensional search.")
    assert env.resources("default").seconds == env.resources("default").smoke_seconds == 20
    objective = env.objective("default")
    assert (objective.metric, objective.direction) == ("combined_score", "maximize")
    scipy_task = plugins.get_environment(f"task:{TASKS / 'requirements'}")
    assert scipy_task.packages == ("numpy", "scipy")
    assert (
        scipy_task.install_hint == f"pip install -r {TASKS / 'requirements' / 'requirements.txt'}"
    )
    assert "may import numpy, scipy" in scipy_task.task_description("default")


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda d: d / "nowhere", "nowhere: does not exist"),
        (lambda d: _file(d / "plain.txt"), "plain.txt: is not a directory"),
        (lambda d: _folder(d / "empty"), "has no initial_program.py"),
        (lambda d: _file(d / "half" / "initial_program.py", PROGRAM).parent, "has no evaluator.py"),
        (lambda d: task(d / "t", "def score(p):\n    return {}\n"), "defines no evaluate("),
        (lambda d: task(d / "t", "def evaluate(p:\n"), "evaluator.py: line 1: syntax error"),
        (lambda d: task(d / "t", "def evaluate(p): ...", "x = (\n"), "initial_program.py: line 1"),
        (lambda d: task(d / "t", "def evaluate(p): ...", "X = 1\n"), "EVOLVE"),
        (lambda d: task(d / "t", "def evaluate(p): ...", config_yaml="a: [1,\n"), "not valid YAML"),
        (
            lambda d: task(
                d / "t", "def evaluate(p): ...", config_yaml="evaluator:\n  timeout: -1\n"
            ),
            "config.yaml: evaluator.timeout",
        ),
    ],
)
def test_a_bad_task_folder_is_one_line_naming_the_file(tmp_path, build, message):
    where = build(tmp_path)
    with pytest.raises(UserError, match=message.replace("(", r"\(")):
        plugins.get_environment(f"task:{where}")


def test_run_refuses_a_bad_task_folder_before_storing_anything(tmp_path, db):
    folder = task(tmp_path / "t", "def score(p):\n    return {}\n")
    res = pb("run", "--env", f"task:{folder}", "--budget", "2", "--db", str(db))
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "defines no evaluate(program_path)" in res.stderr
    assert not db.exists() or query(db, "select count(*) from run")[0][0] == 0


def test_stage_1_is_the_smoke_check_and_the_stages_make_the_score():
    name = f"task:{CASCADE}"
    env = plugins.get_environment(name)
    good = check_program(name, env.baseline("default"))
    assert good.valid, good.reason
    # Both stages' numbers are merged; the strings are feedback.
    assert good.metrics["in_range"] == 1.0 and "x" in good.metrics and "value" in good.metrics
    assert "the lowest value" in good.assessment.telemetry["artifacts"]["summary"]
    assert "summary: f(" in env.format_telemetry(good.assessment.telemetry)
    out_of_range = env.baseline("default").replace("    return x\n", "    return x + 10.0\n")
    assert out_of_range != env.baseline("default")
    bad = check_program(name, out_of_range)
    assert bad.smoke is not None and not bad.smoke.ok and bad.full is None
    assert "stage 1: x = 1" in bad.reason and "is outside [-5, 5]" in bad.reason


def test_a_stage_below_its_cascade_threshold_stops_the_program(tmp_path):
    evaluator = """
        def evaluate(p):
            return {"combined_score": 1.0}

        def evaluate_stage1(p):
            return {"combined_score": 0.3, "note": "stage 1 ran"}

        def evaluate_stage2(p):
            raise AssertionError("stage 2 must not run below the threshold")
    """
    config = "evaluator:\n  cascade_thresholds: [0.5]\n"
    folder = task(tmp_path / "t", evaluator, config_yaml=config)
    checked = check_program(f"task:{folder}", PROGRAM)
    assert "combined_score 0.3 is below the threshold 0.5" in checked.reason
    # Without the cascade, `evaluate` alone scores it.
    config = "evaluator:\n  cascade_evaluation: false\n"
    plain = check_program(f"task:{task(tmp_path / 'u', evaluator, config_yaml=config)}", PROGRAM)
    assert plain.valid and plain.metrics == {"combined_score": 1.0}


def test_results_carry_over_as_metrics_and_feedback(tmp_path):
    evaluator = """
        import numpy as np

        class EvaluationResult:  # OpenEvolve's result type, as a task may define it
            def __init__(self, metrics, artifacts):
                self.metrics, self.artifacts = metrics, artifacts

        def evaluate(p):
            return EvaluationResult({"combined_score": np.float32(0.25), "n": np.int64(3)},
                                    {"stdout": "three tries", "image": b"bytes"})
    """
    checked = check_program(f"task:{task(tmp_path / 'a', evaluator)}", PROGRAM)
    assert checked.valid and checked.metrics == {"combined_score": 0.25, "n": 3.0}
    assert checked.assessment.telemetry["artifacts"] == {"stdout": "three tries", "image": "bytes"}
    failing = """
        def evaluate(p):
            return {"combined_score": 0.0, "error": "run_search() crashed", "hint": "check x"}
    """
    refused = check_program(f"task:{task(tmp_path / 'b', failing)}", PROGRAM)
    assert not refused.valid
    assert refused.reason == "run_search() crashed; hint: check x"


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ("[1.0]", "evaluate() returned list, not a dict"),
        ('{"x": 1.0}', "returned no combined_score (x)"),
    ],
)
def test_an_evaluator_giving_no_score_is_the_tasks_fault_exit_2(tmp_path, db, returns, message):
    folder = task(tmp_path / "t", f"def evaluate(p):\n    return {returns}\n")
    program = folder / "initial_program.py"
    res = pb("eval", "--env", f"task:{folder}", str(program), "--save", "--db", str(db))
    assert res.returncode == 2, res.stdout
    assert message in res.stderr and str(folder / "evaluator.py") in res.stderr
    assert errors(res.stderr) == [res.stderr.strip().splitlines()[-1]] and not db.exists()
    run = pb("run", "--env", f"task:{folder}", "--budget", "2", "--db", str(db))
    assert run.returncode == 2 and message in run.stderr
    # The run never began: no run row is left behind (field trial: a failed one was).
    assert query(db, "select count(*) from run") == [(0,)]


def test_an_evaluator_that_raises_fails_the_program_with_its_message(db):
    folder = TASKS / "raises"
    res = pb("eval", "--env", f"task:{folder}", str(folder / "initial_program.py"))
    assert res.returncode == 1
    assert (
        "RuntimeError: this evaluator is broken" in res.stdout and "verdict: failed" in res.stdout
    )
    run = pb("run", "--env", f"task:{folder}", "--budget", "2", "--db", str(db))
    assert run.returncode == 2
    assert "the reference program" in run.stderr and "this evaluator is broken" in run.stderr
    assert query(db, "select (select count(*) from run) + (select count(*) from program)") == [(0,)]


def test_a_missing_requirement_is_one_line_with_the_pip_command(tmp_path, db):
    folder = task(
        tmp_path / "t",
        'def evaluate(p):\n    return {"combined_score": 1.0}\n',
        requirements_txt="numpy>=1.24\nprogressbench-no-such-package[extra]>=1.0  # needed\n",
    )
    env = plugins.get_environment(f"task:{folder}")
    assert env.packages == ("numpy", "progressbench-no-such-package")
    for command in (["eval", "--env", f"task:{folder}", str(folder / "initial_program.py")],
                    ["run", "--env", f"task:{folder}", "--budget", "2", "--db", str(db)]):  # fmt: skip
        res = pb(*command)
        assert res.returncode == 2, res.stdout
        assert errors(res.stderr) == [
            "error: package progressbench-no-such-package (which "
            f"'task:{folder}' candidates may import) does not import in the sandbox: "
            f"pip install -r {folder / 'requirements.txt'}"
        ]
    assert query(db, "select count(*) from run")[0][0] == 0  # stopped before the run began


def test_a_run_on_a_task_ranks_with_its_trust_label(db, monkeypatch):
    res = pb(
        "run", "--env", "task:tests/tasks/cascade", "--budget", "20", "--db", str(db), cwd=REPO
    )
    assert res.returncode == 0, res.stderr
    saved = pb("eval", "--env", f"task:{CASCADE}", str(CASCADE / "initial_program.py"), "--save",
               "--db", str(db))  # fmt: skip
    assert saved.returncode == 0, saved.stderr
    rows = json.loads(pb("leaderboard", "--format", "json", "--db", str(db)).stdout)
    # One group: the run (given a relative path) and the eval (an absolute one) are one task.
    assert {(r["env"], r["trust"]) for r in rows} == {(f"task:{CASCADE}", "evaluator-in-sandbox")}
    agent_run = next(r for r in rows if r["agent"] == "offline")
    assert agent_run["evaluations"] == 20 and agent_run["status"] == "finished"
    assert agent_run["best"] >= agent_run["reference"]
    table = pb("leaderboard", "--db", str(db)).stdout
    assert f"task:{CASCADE} (default) - combined_score; trust: evaluator-in-sandbox" in table
    # --env finds the task by the path the user typed too.
    mine = pb("leaderboard", "--env", "task:tests/tasks/cascade", "--db", str(db), cwd=REPO)
    assert agent_run["run"] in mine.stdout
    show = pb("show", agent_run["run"], "--db", str(db)).stdout
    assert "trust: evaluator-in-sandbox" in show
    listing = pb("plugins").stdout
    assert (
        "resolves: task:PATH, an OpenEvolve/SkyDiscover task folder (trust: evaluator-in-sandbox)"
        in listing
    )


def test_a_resolver_must_build_an_environment(plugin):
    class Resolver:
        @hookimpl
        def resolve_environment(self, name):
            return "not an environment" if name == "odd:x" else None

    plugin(Resolver(), name="odd-resolver")
    with pytest.raises(PluginError, match=r"resolve_environment\('odd:x'\) returned"):
        plugins.get_environment("odd:x")
    # A name nobody resolves is the usual unknown-environment line, listing the choices.
    with pytest.raises(PluginError, match="unknown environment 'odd:y' .*circle-packing"):
        plugins.get_environment("odd:y")


def errors(stderr: str) -> list[str]:
    """The error lines of a command's stderr (progress lines aside); never a traceback."""
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _file(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
