"""The viewer over a PostgreSQL store (a real cluster, as tests/store/test_postgres.py starts)."""

from __future__ import annotations

import json
import re

from conftest import pb
from store.test_postgres import cluster, pg_url  # noqa: F401 (the fixtures and what they need)
from viewer_support import request, serving


def test_serve_shows_a_run_stored_in_postgresql(pg_url):  # noqa: F811
    res = pb("run", "--budget", "12", "--db", pg_url)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(pb("leaderboard", "--format", "json", "--db", pg_url).stdout)
    with serving(pg_url) as url:
        page = request(url, f"/run/{row['run']}").body.decode()
    points = re.search(r'<polyline class="best" points="([^"]*)"', page).group(1).split()
    assert len(points) == row["evaluations"] == 12
    assert page.count('class="cell filled"') >= 1
