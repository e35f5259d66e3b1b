"""Hostile candidates inside a real run (the CLI): the static guard stops them before they run,
with the rule that names what they tried; and with that guard switched off (``guards =
["syntax", "edit-scope"]``) the sandbox still contains each one as a failed evaluation with a
clear reason. Either way the run goes on, the database stays intact, and no secret reaches
the candidate. tests/test_redteam.py holds the full catalogue."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import INTEGRITY_GUARDS, REPO, cli_env, pb, query

SECRET = "sk-test-secret-do-not-leak-4242"
WITHOUT_STATIC = ["syntax", "edit-scope"]
# The CLI with the integrity guards registered even before their entry points are installed.
CLI_WITH_GUARDS = (
    "import sys; sys.path.insert(0, 'tests'); from conftest import register_plugins; "
    f"register_plugins(*('progressbench_plugins.guards.' + g for g in {INTEGRITY_GUARDS!r})); "
    "from progressbench.cli import main; sys.argv[0] = 'progressbench'; main()"
)


def edit(body: str) -> str:
    """A reply that inserts ``body`` at the top of the EVOLVE block of circle-packing."""
    return (
        "Try this.\n<<<<<<< SEARCH\nRING1_COUNT = 8  # knob: [5, 11] int\n=======\n"
        f"{body}\nRING1_COUNT = 8  # knob: [5, 11] int\n>>>>>>> REPLACE\n"
    )


def run_with_reply(db, tmp_path, reply: str, *extra: str, guards: list[str] | None = None):
    cfg = tmp_path / "hostile.toml"
    cfg.write_text(
        'agents = ["openai/gpt-4o-mini"]\nn_fast = 0\nbudget = 2\nworkers = 2\n'
        + (f"guards = {json.dumps(guards)}\n" if guards is not None else "")
        + "[agent_options]\nretries = 0\n[agent_options.extra]\n"
        f"mock_response = {json.dumps(reply)}\n"
    )
    env = cli_env(OPENAI_API_KEY=SECRET, GITHUB_TOKEN=SECRET, MY_SERVICE_SECRET=SECRET)
    args = ("run", "--config", str(cfg), "--db", str(db), *extra)
    if guards is None:
        res = _cli_with_guards(args, env)
    else:
        res = pb(*args, env=env)
    assert res.returncode == 0, res.stderr
    assert query(db, "select status, n_children, n_failed from run")[0] == ("finished", 2, 2)
    assert query(db, "pragma integrity_check")[0][0] == "ok"
    return query(db, "select status, error from program where is_reference=0")


def _cli_with_guards(args: tuple[str, ...], env: dict[str, str]):
    return subprocess.run(
        [sys.executable, "-c", CLI_WITH_GUARDS, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


HOSTILE = [
    # (body, what the sandbox says without the static guard, the static guard's rule)
    ("while True:\n    pass", "timeout", None),
    ("_hog = bytearray(64 * 1024**3)", "memory", None),
    ("import ctypes\nctypes.string_at(0)", "crashed", "forbidden-module"),
    # Either the kill is refused (unprivileged uid) or the worker dies and is replaced.
    ("import os\nos.kill(os.getppid(), 9)", ("worker-lost", "Operation not permitted"),
     "forbidden-attribute"),
    ("raise SystemExit(3)", ("SystemExit", "exit"), None),
]  # fmt: skip


@pytest.mark.parametrize(("body", "reason", "rule"), HOSTILE)
def test_sandbox_contains_them_without_the_static_guard(db, tmp_path, body, reason, rule):
    rows = run_with_reply(db, tmp_path, edit(body), "--timeout", "3", guards=WITHOUT_STATIC)
    reasons = (reason,) if isinstance(reason, str) else reason
    for status, error in rows:
        assert status == "failed"
        assert error.startswith("smoke: ") and any(r in error for r in reasons), error


@pytest.mark.parametrize(("body", "rule"), [(b, r) for b, _, r in HOSTILE if r])
def test_static_guard_stops_them_first(db, tmp_path, body, rule):
    rows = run_with_reply(db, tmp_path, edit(body), "--timeout", "3")
    for status, error in rows:
        assert status == "rejected" and error.startswith("guard: guard static"), error
        assert f"[{rule}]" in error and "(line " in error
    stored_rule, line = query(db, "select rule, line from verdict where not passed")[0]
    assert stored_rule == rule and line > 0
    # Stopped before running: no child has an evaluation.
    children = "select id from program where is_reference = 0"
    assert query(db, f"select count(*) from evaluation where program_id in ({children})")[0][0] == 0


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
    run_with_reply(db, tmp_path, edit(leak), guards=WITHOUT_STATIC)
    stored = json.dumps(query(db, "select * from attempt")) + json.dumps(
        query(db, "select * from program")
    )
    stored += json.dumps(query(db, "select * from evaluation"))
    assert "RuntimeError" in stored  # the program did run and report what it saw
    assert SECRET not in stored
