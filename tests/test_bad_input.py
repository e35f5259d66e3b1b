"""User mistakes end in one clear line and a non-zero exit, never a traceback or lost data."""

from __future__ import annotations

import pytest
from conftest import pb, query


def one_line_error(res) -> str:
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in res.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--budget", "0"], "budget"),
        (["--workers", "0"], "workers"),
        (["--max-cost", "-1"], "max_cost"),
        (["--n-fast", "99"], "n_fast"),
        (["--env", "nosuch"], "unknown environment 'nosuch'"),
        (["--strategy", "nosuch"], "unknown strategy 'nosuch'"),
        (["--variant", "huge"], "no variant 'huge'"),
        (["--agent", "offline", "--weight", "1", "--weight", "2"], "agent_weights"),
        (["--strategy-option", "novalue"], "KEY=VALUE"),
        (["--strategy-option", "bogus=1"], "bogus"),
        (["--evaluator", "nosuch"], "unknown evaluator"),
    ],
)
def test_bad_run_arguments(db, args, needle):
    line = one_line_error(pb("run", "--db", str(db), *args))
    assert needle in line


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("bad.toml", "budget = [", "not valid TOML"),
        ("bad.yaml", "budget: [1,\n", "not valid YAML"),
        ("typo.toml", "bugdet = 3\n", "bugdet: unknown setting"),
        ("type.toml", 'budget = "lots"\n', "budget"),
        ("nested.toml", "[agent_options]\ntemperature = 'hot'\n", "agent_options.temperature"),
        ("list.yaml", "- 1\n- 2\n", "table of settings"),
    ],
)
def test_bad_config_files(db, tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    line = one_line_error(pb("run", "--config", str(path), "--db", str(db)))
    assert needle in line


def test_missing_config_file(db, tmp_path):
    assert "does not exist" in one_line_error(
        pb("run", "--config", str(tmp_path / "no.toml"), "--db", str(db))
    )


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("/nonexistent/dir/x.db", "does not exist"),
        ("postgresql+nosuchdriver://u@localhost/db", "cannot open database"),
        ("://nohost", "not a valid database URL"),
        ("postgresql://u@h:notaport/db", "not a valid database URL"),
    ],
)
def test_bad_database(url, needle, tmp_path):
    line = one_line_error(pb("leaderboard", "--db", url, cwd=tmp_path))
    assert needle in line


def test_database_directory_rejected(tmp_path):
    assert "is a directory" in one_line_error(pb("leaderboard", "--db", str(tmp_path)))


def test_unknown_run_ids(db):
    assert pb("run", "--budget", "2", "--db", str(db)).returncode == 0
    for cmd in (["show", "nope"], ["best", "nope"], ["ideas", "nope"], ["run", "--resume", "nope"]):
        assert "no run 'nope'" in one_line_error(pb(*cmd, "--db", str(db)))


def test_resume_cannot_change_the_experiment(db):
    assert pb("run", "--budget", "2", "--db", str(db)).returncode == 0
    rid = query(db, "select id from run")[0][0]
    line = one_line_error(pb("run", "--resume", rid, "--env", "circle-packing", "--db", str(db)))
    assert "cannot change env" in line
    line = one_line_error(pb("run", "--resume", rid, "--db", str(db)))
    assert "already finished" in line
    # A larger budget extends the finished run, keeping everything it had.
    before = query(db, "select id, status, score from program order by id")
    res = pb("run", "--resume", rid, "--budget", "4", "--db", str(db))
    assert res.returncode == 0, res.stderr
    after = query(db, "select id, status, score from program order by id")
    assert after[: len(before)] == before and len(after) == len(before) + 2


def test_corrupt_database_file(tmp_path):
    bad = tmp_path / "junk.db"
    bad.write_bytes(b"this is not a database" * 100)
    line = one_line_error(pb("leaderboard", "--db", str(bad)))
    assert "cannot open database" in line
    assert bad.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--agent", ""], "--agent needs a value"),
        (["--agent", "  "], "--agent needs a value"),
        (["--agent", "nosuch"], "agent 'nosuch': litellm knows no provider for model 'nosuch'"),
        (["--seed", "99999999999999999999999"], "seed"),
        (
            ["--prompts", "/nonexistent/prompts"],
            "prompt folder '/nonexistent/prompts' does not exist",
        ),
        (["--env-option", "foo=bar"], "invalid --env-option for environment 'circle-packing': foo"),
        (
            ["--env", "nanogpt", "--env-option", "max_step=3"],
            "invalid --env-option for environment 'nanogpt': max_step: unknown setting",
        ),
        (
            ["--env", "nanogpt", "--env-option", "max_steps=lots"],
            "invalid --env-option for environment 'nanogpt': max_steps",
        ),
    ],
)
def test_bad_run_arguments_create_no_run(db, args, needle):
    """Field trial: these gave tracebacks or were silently ignored, and left run rows."""
    line = one_line_error(pb("run", "--db", str(db), "--budget", "1", *args))
    assert needle in line
    assert not db.exists() or query(db, "select count(*) from run") == [(0,)]


def test_bad_evaluator_option_leaves_no_phantom_run(db, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text("budget = 1\n[evaluator_options]\nnosuch = 1\n")
    line = one_line_error(pb("run", "--config", str(cfg), "--db", str(db)))
    assert "unknown option(s) for the local evaluator: nosuch" in line
    assert not db.exists() or query(db, "select count(*) from run") == [(0,)]


def test_empty_resume_is_an_error_not_a_new_run(db):
    assert "--resume needs a run id" in one_line_error(pb("run", "--resume", "", "--db", str(db)))
    assert not db.exists()


@pytest.mark.parametrize(
    "args",
    [["show", "RUN"], ["best", "RUN"], ["ideas", "RUN"], ["leaderboard"], ["verify", "RUN"]],
)
def test_read_commands_never_create_a_database(tmp_path, args):
    missing = tmp_path / "typo.db"
    line = one_line_error(pb(*args, "--db", str(missing), cwd=tmp_path))
    assert f"no database at {missing}" in line
    assert list(tmp_path.iterdir()) == []  # neither the file asked for nor ./progressbench.db


def test_show_top_must_be_positive(db):
    assert pb("run", "--budget", "1", "--strategy", "greedy", "--db", str(db)).returncode == 0
    ((rid,),) = query(db, "select id from run")
    res = pb("show", rid, "--top", "-1", "--db", str(db))
    assert res.returncode == 2 and "Invalid value for '--top'" in res.stderr
    assert "Traceback" not in res.stderr
