"""Shared by the viewer tests (import the fixtures): a real run recorded once per module, the
real ``progressbench serve`` over it, and headless Chromium (Debian's chromium and
chromium-driver) driven by selenium."""

from __future__ import annotations

import http.client
import json
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import cli_env, pb, query

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@dataclass
class Recorded:
    db: Path
    run_id: str

    def finished_children(self) -> list[tuple[int, str]]:
        return query(
            self.db,
            "SELECT id, status FROM program WHERE run_id = ? AND is_reference = 0 "
            "AND status != 'pending' ORDER BY id",
            self.run_id,
        )

    def state(self) -> dict:
        (row,) = query(self.db, "SELECT strategy_state_json FROM run WHERE id = ?", self.run_id)
        return json.loads(row[0])


def record_run(db: Path, *args: str) -> Recorded:
    res = pb("run", "--budget", "30", "--db", str(db), *args)
    assert res.returncode == 0, res.stderr
    ((run_id,),) = query(db, "SELECT id FROM run ORDER BY created_at DESC LIMIT 1")
    return Recorded(db, run_id)


def copy_store(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite store (its WAL included: copying the file alone is not)."""
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """A default run (circle-packing, islands, offline agent) of 30 children."""
    return record_run(tmp_path_factory.mktemp("viewer") / "pb.db")


@contextmanager
def serving(db: Path | str, *args: str) -> Iterator[str]:
    """``progressbench serve --db DB --port 0 ARGS`` running; yields the URL it printed."""
    cmd = [sys.executable, "-m", "progressbench.cli", "serve", "--db", str(db), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=cli_env(),
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert " at http://" in first, first + (proc.stderr.read() if proc.stderr else "")
        yield first.rsplit(" at ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(recorded: Recorded) -> Iterator[str]:
    """The viewer over ``recorded``'s store, on loopback: its base URL."""
    with serving(recorded.db) as url:
        yield url.rstrip("/")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("headless Chromium needs Debian's chromium and chromium-driver packages")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1100,1400")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def css(driver: object) -> Callable[[str], list]:
    """``find(selector)``: the elements ``driver`` renders that match a CSS selector."""
    from selenium.webdriver.common.by import By

    return lambda selector: driver.find_elements(By.CSS_SELECTOR, selector)


def request(
    url: str, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    """One request to the server at ``url``, always through 127.0.0.1 (whatever it is bound
    to); the response is read before it is returned."""
    port = urlsplit(url).port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response
