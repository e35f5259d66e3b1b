"""Hostile candidates inside a real run: each ends as a failed evaluation with a clear reason,
the run goes on, the database stays intact, and no secret reaches the candidate."""

from __future__ import annotations

import json

import pytest
from conftest import cli_env, pb, query

SECRET = "sk-test-secret-do-not-leak-4242"


def edit(body: str) -> str:
    """A reply that inserts ``body`` at the top of the EVOLVE block of circle-packing."""
    return (
        "Try this.\n<<<<<<< SEARCH\nRING1_COUNT = 8  # knob: [5, 11] int\n=======\n"
        f"{body}\nRING1_COUNT = 8  # knob: [5, 11] int\n>>>>>>> REPLACE\n"
    )


def run_with_reply(db, tmp_path, reply: str, *extra: str):
    cfg = tmp_path / "hostile.toml"
    cfg.write_text(
        'agents = ["openai/gpt-4o-mini"]\nn_fast = 0\nbudget = 2\nworkers = 2\n'
        "[agent_options]\nretries = 0\n[agent_options.extra]\n"
        f"mock_response = {json.dumps(reply)}\n"
    )
    env = cli_env(OPENAI_API_KEY=SECRET, GITHUB_TOKEN=SECRET, MY_SERVICE_SECRET=SECRET)
    res = pb("run", "--config", str(cfg), "--db", str(db), *extra, env=env)
    assert res.returncode == 0, res.stderr
    assert query(db, "select status, n_children, n_failed from run")[0] == ("finished", 2, 2)
    assert query(db, "pragma integrity_check")[0][0] == "ok"
    return query(db, "select error from program where is_reference=0")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("while True:\n    pass", "timeout"),
        ("_hog = bytearray(64 * 1024**3)", "memory"),
        ("import ctypes\nctypes.string_at(0)", "crashed"),
        # Either the kill is refused (unprivileged uid) or the worker dies and is replaced.
        ("import os\nos.kill(os.getppid(), 9)", ("worker-lost", "Operation not permitted")),
        ("raise SystemExit(3)", ("SystemExit", "exit")),
    ],
)
def test_hostile_candidates_fail_cleanly(db, tmp_path, body, reason):
    errors = run_with_reply(db, tmp_path, edit(body), "--timeout", "3")
    reasons = (reason,) if isinstance(reason, str) else reason
    for (error,) in errors:
        assert error.startswith("smoke: ") and any(r in error for r in reasons), error


def test_secrets_never_reach_the_candidate(db, tmp_path):
    leak = (
        "import os, glob\n"
        "_seen = repr(dict(os.environ))\n"
        "for _p in glob.glob('/proc/*/environ'):\n"
        "    try:\n"
        "        _seen += open(_p, 'rb').read().decode(errors='replace')\n"
        "    except OSError:\n"
        "        pass\n"
        "print(_seen)\n"
        "raise RuntimeError(_seen[-3000:])"
    )
    run_with_reply(db, tmp_path, edit(leak))
    stored = json.dumps(query(db, "select * from attempt")) + json.dumps(query(db, "select * from program"))
    stored += json.dumps(query(db, "select * from evaluation"))
    assert "RuntimeError" in stored  # the program did run and report what it saw
    assert SECRET not in stored
