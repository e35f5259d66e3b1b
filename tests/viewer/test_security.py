"""Who may read the viewer: on loopback, only requests addressed to localhost (no DNS
rebinding); beyond it, only requests with the printed token; and nothing may write."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import pb
from viewer_support import css, request, serving

from progressbench.viewer.server import is_loopback

# The fixtures: recorded (a real run), server (serve over it), browser (headless Chromium).
pytest_plugins = ["viewer_support"]


@pytest.fixture(scope="module")
def exposed(recorded):
    """The viewer bound to every address: its URL with the token it printed."""
    with serving(recorded.db, "--host", "0.0.0.0") as url:
        yield url


def test_beyond_loopback_a_request_without_the_token_is_refused(recorded, exposed):
    token = parse_qs(urlsplit(exposed).query)["token"][0]
    assert len(token) >= 32
    for path in (
        "/",
        f"/run/{recorded.run_id}",
        f"/api/run/{recorded.run_id}",
        "/static/viewer.js",
    ):
        assert request(exposed, path).status == 403, path
        assert request(exposed, f"{path}?token={token[:-1]}x").status == 403, path
        wrong = {"Authorization": "Bearer " + token[:-1]}
        assert request(exposed, path, headers=wrong).status == 403, path
    bearer = {"Authorization": f"Bearer {token}"}
    page = request(exposed, f"/run/{recorded.run_id}", headers=bearer)
    assert page.status == 200 and b'id="curve"' in page.body
    traded = request(exposed, f"/run/{recorded.run_id}?token={token}")
    assert traded.status == 303 and traded.getheader("Location") == f"/run/{recorded.run_id}"
    cookie = traded.getheader("Set-Cookie").split(";")[0]
    assert "HttpOnly" in traded.getheader("Set-Cookie")
    assert request(exposed, "/", headers={"Cookie": cookie}).status == 200


def test_beyond_loopback_the_browser_gets_in_with_the_printed_url(recorded, exposed, browser):
    port = urlsplit(exposed).port
    browser.get(f"http://127.0.0.1:{port}/run/{recorded.run_id}")
    assert "403" in css(browser)("h1")[0].text
    browser.get(exposed.replace("0.0.0.0", "127.0.0.1"))
    assert css(browser)("h1")[0].text == "Leaderboard"
    assert "token" not in browser.current_url  # traded for a cookie
    browser.get(f"http://127.0.0.1:{port}/run/{recorded.run_id}")
    assert len(css(browser)("#curve")) == 1
    browser.delete_all_cookies()


def test_on_loopback_a_request_for_another_host_is_refused(recorded):
    with serving(recorded.db) as url:
        assert "token" not in url
        assert request(url, "/").status == 200
        assert request(url, "/", headers={"Host": "attacker.example:8765"}).status == 403
        assert request(url, "/", headers={"Host": f"localhost:{urlsplit(url).port}"}).status == 200


def test_the_viewer_is_read_only_and_sends_a_strict_policy(recorded):
    with serving(recorded.db) as url:
        for method in ("POST", "PUT", "DELETE"):
            assert request(url, "/", method=method).status == 405
        page = request(url, f"/run/{recorded.run_id}")
        policy = page.getheader("Content-Security-Policy")
        assert "script-src 'self'" in policy and "default-src 'none'" in policy
        assert page.getheader("X-Content-Type-Options") == "nosniff"
        assert request(url, "/run/no-such-run").status == 404
        assert request(url, "/static/../../etc/passwd").status == 404


def test_serving_a_missing_database_is_one_line(tmp_path):
    res = pb("serve", "--db", str(tmp_path / "none.db"), "--port", "0")
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "no database" in res.stderr


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("localhost", True), ("::1", True),
     ("0.0.0.0", False), ("::", False), ("192.168.1.4", False), ("example.org", False)],
)  # fmt: skip
def test_which_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
