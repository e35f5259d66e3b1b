"""Shared helpers: run the real CLI in a subprocess, read the database directly."""

from __future__ import annotations

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


def pb(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
       timeout: float = 300) -> subprocess.CompletedProcess[str]:
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
