"""Shared helpers: run the real CLI in a subprocess, read the database directly, register an
inline plugin for a test (the ``plugin`` fixture)."""

from __future__ import annotations

import importlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


class PluginRegistrar:
    """Registers plugins with ``progressbench.plugins.pm`` for a test and unregisters each at
    teardown: ``register(obj_or_module, name=None)``; a string is a module name, imported."""

    def __init__(self) -> None:
        self.registered: list[object] = []

    def __call__(self, obj: object, name: str | None = None) -> Any:
        from progressbench import plugins

        plugins.load_plugins()  # the entry points first, as in a real process
        if isinstance(obj, str):
            name, obj = name or obj, importlib.import_module(obj)
        if name is None:
            name = getattr(obj, "__name__", None) or type(obj).__name__
        if plugins.pm.is_registered(obj):
            raise ValueError(f"{name!r} is registered already (by an entry point or a fixture)")
        plugins.pm.register(obj, name=name)
        self.registered.append(obj)
        return obj

    def unregister(self, obj: object) -> None:
        """Unregister ``obj`` before teardown (a test that checks what unregistering does)."""
        from progressbench import plugins

        self.registered.remove(obj)
        plugins.pm.unregister(obj)

    def close(self) -> None:
        from progressbench import plugins

        # plugins.registry() is rebuilt from the hooks on every call: no cache to reset.
        while self.registered:
            plugins.pm.unregister(self.registered.pop())


@pytest.fixture
def plugin() -> Iterator[PluginRegistrar]:
    """``plugin(obj_or_module, name=None)`` registers an inline plugin (an object or module
    with ``@hookimpl`` functions, or a module's name) for this test; it is unregistered at the
    end. Code in other processes (sandbox workers, a CLI) registers by module name through
    the local evaluator's ``plugin_modules`` option instead."""
    registrar = PluginRegistrar()
    try:
        yield registrar
    finally:
        registrar.close()


@pytest.fixture(scope="module")
def module_plugin() -> Iterator[PluginRegistrar]:
    """``plugin`` for every test of a module: unregistered after the module's last test."""
    registrar = PluginRegistrar()
    try:
        yield registrar
    finally:
        registrar.close()
