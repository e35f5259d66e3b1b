"""Shared helpers: run the real CLI in a subprocess, read the database directly."""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSBENCH_")}
    env.update(extra)
    return env


def pb(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``progressbench ARGS`` as a user would, capturing output."""
    return subprocess.run(
        [sys.executable, "-m", "progressbench.cli", *args],
        capture_output=True,
        text=True,
        env=env or cli_env(),
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def query(db: Path, sql: str, *params: object) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "pb.db"


# The integrity guards, and the environments a test needs, registered in this process when
# their entry points are not installed (yet): then ``register_plugins`` does it by module.
INTEGRITY_GUARDS = ("static", "verification", "equivalence", "judge")


def register_plugins(*modules: str) -> None:
    from progressbench import plugins

    plugins.load_plugins()
    for name in modules:
        module = importlib.import_module(name)
        if not plugins.pm.is_registered(module):
            plugins.pm.register(module, name=name)


@pytest.fixture(scope="session")
def integrity_guards() -> None:
    register_plugins(*(f"progressbench_plugins.guards.{g}" for g in INTEGRITY_GUARDS))
