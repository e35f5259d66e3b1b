"""`progressbench eval`: one program through a child's pipeline, as a user runs it; `--save`
ranks it on the leaderboard as a human entry; bad input is one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, pb, query

from progressbench.contracts.program import split_files

SCIPY_PACKING = REPO / "tests" / "programs" / "scipy_packing.py"
TWO_FILES = REPO / "tests" / "programs" / "two_file_packing"
NANOGPT_OWN = REPO / "tests" / "environments" / "nanogpt" / "nanogpt_data" / "small_gpt.py"
# The tiny variant shrunk to seconds: bounded in steps, not time (see test_nanogpt_runs.py).
NANOGPT_OPTIONS = {
    "max_steps": 20,
    "ckpt_every_steps": 2,
    "profile_at_s": 0,
    "val_tokens": 4096,
    "probe_tokens": 2048,
    "threads": 1,
}


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_scipy_program_is_scored_and_saved_beside_agent_runs(db):
    res = pb("eval", "--env", "circle-packing", str(SCIPY_PACKING))
    assert res.returncode == 0, res.stderr
    assert "verdict: valid" in res.stdout
    assert "edit scope: the whole program" in res.stdout
    total = float(next(x for x in lines(res.stdout) if x.startswith("sum_radii:")).split()[1])
    assert 2.4 < total < 2.64
    assert not db.exists()  # nothing is stored without --save

    saved = pb("eval", "--env", "circle-packing", str(SCIPY_PACKING), "--save", "--db", str(db))
    assert saved.returncode == 0, saved.stderr
    assert pb("run", "--budget", "2", "--db", str(db)).returncode == 0
    rows = json.loads(pb("leaderboard", "--format", "json", "--db", str(db)).stdout)
    assert {r["agent"] for r in rows} == {"human", "offline"}
    human = next(r for r in rows if r["agent"] == "human")
    assert human["strategy"] == "eval" and human["evaluations"] == 1 and human["success"] == 1
    assert abs(human["best"] - total) < 1e-5  # printed to six digits
    # Its reference was evaluated beside it, so the delta means what an agent run's does.
    assert human["delta"] > 0 and abs(human["reference"] - 1.65861) < 1e-4
    show = pb("show", human["run"], "--db", str(db))
    assert show.returncode == 0 and "agent human" in show.stdout
    assert "strategy state unavailable" not in show.stdout


def test_json_output_names_the_verdict_the_metrics_and_every_guard(db):
    res = pb("eval", "--env", "circle-packing", str(SCIPY_PACKING), "--json", "--save",
             "--name", "alice", "--db", str(db))  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "valid" and out["valid"] and out["metric"] == "sum_radii"
    assert out["value"] == out["metrics"]["sum_radii"] == out["score"]
    assert {g["guard"] for g in out["guards"]} >= {"syntax", "edit-scope", "static"}
    assert all(g["passed"] for g in out["guards"])
    assert out["smoke"]["status"] == out["full"]["status"] == "ok"
    assert out["trust"] == "protected-harness"
    agent, strategy = query(db, "select agent, strategy from run where id=?", out["run_id"])[0]
    assert (agent, strategy) == ("alice", "eval")


def test_repeats_run_the_verification_protocol(tmp_path):
    res = pb("eval", "--env", "circle-packing", str(SCIPY_PACKING), "--repeats", "2", "--json")
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout)["verification"]
    # No target: the program's re-runs against the reference's (Welch's t-test).
    assert found["verdict"] == "verified" and "Welch" in found["summary"]
    assert abs(found["mean"] - json.loads(res.stdout)["value"]) < 1e-9


def test_a_rejected_and_an_invalid_program_exit_1_with_the_reason(tmp_path, db):
    reference = (REPO / "environments" / "circle_packing" / "baseline.py").read_text()
    # Inside the EVOLVE block: the static guard rejects a module circle-packing does not
    # declare (numpy and scipy are its packages).
    sympy = tmp_path / "sympy_packing.py"
    sympy.write_text(
        reference.replace("# EVOLVE-BLOCK-START\n", "# EVOLVE-BLOCK-START\nimport sympy\n")
    )
    res = pb("eval", "--env", "circle-packing", str(sympy), "--save", "--db", str(db))
    assert res.returncode == 1
    assert "REJECTED [module-not-allowed]" in res.stdout and "numpy, scipy" in res.stdout
    assert "verdict: rejected" in res.stdout
    status, error = query(db, "select status, error from program where is_reference=0")[0]
    assert status == "rejected" and "sympy" in error
    # Outside it: the edit-scope guard, as for an agent's edit.
    moved = tmp_path / "moved.py"
    moved.write_text(reference.replace("N = 26", "N = 25"))
    res = pb("eval", "--env", "circle-packing", str(moved))
    assert res.returncode == 1 and "REJECTED [outside-evolve-block]" in res.stdout
    overlap = tmp_path / "overlap.py"
    overlap.write_text("def run_packing():\n    return [[0.5, 0.5]] * 26, [0.4] * 26\n")
    res = pb("eval", "--env", "circle-packing", str(overlap))
    assert res.returncode == 1
    assert "verdict: invalid: circles 0 and 1 overlap" in res.stdout


def test_a_directory_program_is_read_as_run_program_reads_it_and_saved(tmp_path, db):
    """The two-file fixture of `run --program DIR`: its files are a program of its own (not
    an edit of circle-packing's one-file reference), its entry imports its second file."""
    res = pb("eval", "--env", "circle-packing", str(TWO_FILES), "--json", "--save",
             "--db", str(db))  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["status"] == "valid" and out["value"] > 2.0, out
    assert out["edit_scope"].startswith("the whole program")
    guards = {g["guard"]: g["passed"] for g in out["guards"]}
    assert guards["static"] and "edit-scope" not in guards
    (code,) = query(db, "select code from program where is_reference = 0")[0]
    assert list(split_files(code)) == ["main.py", "pack_kernels.py"]
    # `run --program`'s checks, as its one line: here a module named like an installed one.
    clash = tmp_path / "clash"
    clash.mkdir()
    _write(clash / "main.py", "import json\n")
    _write(clash / "json.py", "X = 1\n")
    res = pb("eval", "--env", "circle-packing", str(clash))
    assert res.returncode == 2 and lines(res.stderr) == [
        f"error: program {clash}: its module 'json' has the name of an installed or standard "
        "module, which imports would reach instead; rename it"
    ]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.py", "missing.py: no such file"),
        (lambda d: d, "a program directory needs a main.py"),
        (lambda d: _write(d / "broken.py", "def f(:\n"), "broken.py: line 1: syntax error"),
    ],
)
def test_bad_programs_are_one_line_and_exit_2(tmp_path, db, make, message):
    program = make(tmp_path)
    res = pb("eval", "--env", "circle-packing", str(program), "--save", "--db", str(db))
    assert res.returncode == 2
    assert lines(res.stderr) == [lines(res.stderr)[0]] and message in res.stderr
    assert res.stderr.startswith("error: ") and "Traceback" not in res.stderr
    assert not db.exists()


def test_bad_flags_are_one_line_and_exit_2(db):
    for args in (
        ["--env", "no-such-env"],
        ["--env", "circle-packing", "--variant", "n99"],
        ["--env", "circle-packing", "--env-option", "speed=3"],
        ["--env", "circle-packing", "--save", "--name", " "],
        ["--env", "circle-packing", "--save", "--db", "/no/such/folder/x.db"],
    ):
        res = pb("eval", *args, str(SCIPY_PACKING))
        assert res.returncode == 2, (args, res.stdout)
        assert len(lines(res.stderr)) == 1 and res.stderr.startswith("error: "), res.stderr


def test_a_nanogpt_program_of_ones_own_is_scored_and_saved(tmp_path, db):
    """The whole pipeline on the flagship environment, kept to seconds by its options: a
    training script without EVOLVE markers, and the reference beside it for --save."""
    own = tmp_path / "train.py"
    own.write_text(
        "".join(x for x in NANOGPT_OWN.read_text().splitlines(True) if "EVOLVE-BLOCK" not in x)
    )
    options = [a for k, v in NANOGPT_OPTIONS.items() for a in ("--env-option", f"{k}={v}")]
    res = pb("eval", "--env", "nanogpt", "--variant", "tiny", str(own), *options, "--json",
             "--save", "--db", str(db), timeout=600)  # fmt: skip
    out = json.loads(res.stdout)
    assert out["smoke"]["status"] == "ok", out["reason"]
    assert out["full"]["status"] == "ok", out["reason"]
    assert out["metrics"]["best_val_loss"] > 0 and out["telemetry"]
    assert res.returncode == (0 if out["valid"] else 1)
    rows = json.loads(pb("leaderboard", "--format", "json", "--db", str(db)).stdout)
    assert [(r["env"], r["variant"], r["agent"]) for r in rows] == [("nanogpt", "tiny", "human")]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
