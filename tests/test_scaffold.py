"""``progressbench new-env``: the package it writes installs, passes its own test through the
real sandbox, and runs as ``--env NAME``."""

from __future__ import annotations

import subprocess
import sys

from conftest import cli_env, pb, query


def test_the_new_environment_installs_passes_its_test_and_runs(tmp_path, db):
    res = pb("new-env", "demo-env", "--dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    root = tmp_path / "progressbench-demo-env"
    assert f"wrote {root}" in res.stdout
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "--target", str(site), str(root)], check=True, capture_output=True)
    env = cli_env(PYTHONPATH=str(site))
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    run = pb("run", "--env", "demo-env", "--budget", "4", "--db", str(db), env=env)
    assert run.returncode == 0, run.stderr
    assert query(db, "select env, status, n_children from run") == [("demo-env", "finished", 4)]


def test_bad_names_and_existing_folders_are_one_line_errors(tmp_path):
    bad = pb("new-env", "My_Env", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "lower-case letters" in bad.stderr
    assert pb("new-env", "twice", "--dir", str(tmp_path)).returncode == 0
    again = pb("new-env", "twice", "--dir", str(tmp_path))
    assert again.returncode == 2 and "exists already" in again.stderr
    assert "Traceback" not in bad.stderr + again.stderr
