"""The viewer's HTTP server: read-only GET routes over the store, on the standard library's
ThreadingHTTPServer.

Security model (docs/viewer.md): bound to loopback by default, where it refuses requests
whose Host header names another host (a web page elsewhere cannot reach it through DNS
rebinding); bound to any other address it requires the token ``serve`` prints, as
``?token=`` once (then a cookie), or an ``Authorization: Bearer`` header, compared in constant
time; every request without it gets 403. Pages allow no inline script or style, and no
resource from another origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
import secrets
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from progressbench.errors import UserError
from progressbench.store import Store
from progressbench.viewer import data, pages
from progressbench.viewer.html import document, e
from progressbench.viewer.program import program_page

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {"viewer.css": "text/css; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8"}
LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
RUN = re.compile(r"/run/([^/]+)")
PROGRAM = re.compile(r"/run/([^/]+)/program/(\d{1,18})")
API_RUN = re.compile(r"/api/run/([^/]+)")


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _html(status: int, text: str) -> Response:
    return Response(status, text.encode())


def _error(status: HTTPStatus, message: str) -> Response:
    body = f"<main><h1>{status.value} {e(status.phrase)}</h1><p>{e(message)}</p></main>"
    return _html(status.value, document(status.phrase, body))


class Viewer:
    """Answers one request; knows nothing of sockets (the handler below does)."""

    def __init__(self, store: Store, token: str | None, port: int):
        self.store = store
        self.token = token
        self.cookie = f"progressbench_token_{port}"

    def authorized(self, query: dict[str, list[str]], headers: Any) -> bool:
        if self.token is None:
            return True
        offered = [*query.get("token", [])]
        bearer = headers.get("Authorization", "")
        if bearer.startswith("Bearer "):
            offered.append(bearer[len("Bearer ") :])
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("Cookie", ""))
        except Exception:  # a malformed cookie header is a request without a token
            cookie = SimpleCookie()
        if self.cookie in cookie:
            offered.append(cookie[self.cookie].value)
        return any(hmac.compare_digest(o.encode(), self.token.encode()) for o in offered)

    def handle(self, target: str, headers: Any) -> Response:
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        if not self.authorized(query, headers):
            return _error(HTTPStatus.FORBIDDEN, "this viewer needs the token `serve` printed")
        if self.token is not None and "token" in query:
            # Trade the token in the address for a cookie, so it leaves the address bar.
            rest = {k: v for k, v in query.items() if k != "token"}
            location = parts.path + (f"?{urlencode(rest, doseq=True)}" if rest else "")
            cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            return Response(303, b"", headers={"Location": location, "Set-Cookie": cookie})
        try:
            return self.route(parts.path, query)
        except UserError as exc:
            return _error(HTTPStatus.NOT_FOUND, str(exc))

    def route(self, path: str, query: dict[str, list[str]]) -> Response:
        if path == "/":
            return _html(200, pages.leaderboard(self.store))
        if path.startswith("/static/"):
            return self.static(path[len("/static/") :])
        if m := API_RUN.fullmatch(path):
            body = json.dumps(data.version(self.store, unquote(m[1])))
            return Response(200, body.encode(), "application/json")
        if m := PROGRAM.fullmatch(path):
            return _html(200, program_page(self.store, unquote(m[1]), int(m[2])))
        if m := RUN.fullmatch(path):
            view = data.load(self.store, unquote(m[1]))
            if query.get("part") == ["content"]:
                return _html(200, pages.run_content(view))
            return _html(200, pages.run_page(view))
        return _error(HTTPStatus.NOT_FOUND, f"no page at {path}")

    def static(self, name: str) -> Response:
        if name not in STATIC:
            return _error(HTTPStatus.NOT_FOUND, f"no file {name}")
        body = resources.files("progressbench.viewer").joinpath("static", name).read_bytes()
        return Response(200, body, STATIC[name])


class Handler(BaseHTTPRequestHandler):
    server: Server
    server_version = "progressbench-viewer"
    sys_version = ""

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _refuse_write(self) -> None:
        self._send(_error(HTTPStatus.METHOD_NOT_ALLOWED, "the viewer is read-only"), True)

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_write

    def _answer(self, send_body: bool) -> None:
        server = self.server
        if server.viewer.token is None and not is_loopback(_host(self.headers.get("Host", ""))):
            response = _error(HTTPStatus.FORBIDDEN, "this viewer answers only to localhost")
        else:
            try:
                response = server.viewer.handle(self.path, self.headers)
            except Exception as exc:  # one broken page must not stop the viewer
                print(f"viewer: {self.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
                response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "the page failed")
        self._send(response, send_body)

    def _send(self, response: Response, send_body: bool) -> None:
        self.send_response(response.status)
        for key, value in {**HEADERS, **response.headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if send_body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.quiet:
            return
        super().log_message(format, *args)


def _host(header: str) -> str:
    """The host of a Host header, without its port."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, store: Store, host: str, port: int, quiet: bool = False):
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)
        token = None if is_loopback(host) else secrets.token_urlsafe(24)
        self.viewer = Viewer(store, token, self.server_address[1])
        self.quiet = quiet

    @property
    def url(self) -> str:
        host, port = str(self.server_address[0]), self.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        base = f"http://{shown}:{port}/"
        return base + (f"?token={self.viewer.token}" if self.viewer.token else "")


def run_server(
    db: str | None, host: str, port: int, quiet: bool, say: Callable[[str], None] = print
) -> None:
    """Serve the store ``db`` until Ctrl-C."""
    store = Store(db, create=False)
    try:
        server = Server(store, host, port, quiet)
    except OSError as exc:
        raise UserError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    say(f"serving {store.location} (read-only) at {server.url}")
    if server.viewer.token is not None:
        say(
            "bound beyond loopback: a request without this token is refused (give it once as "
            "?token=, or as the header Authorization: Bearer TOKEN)"
        )
    say("Ctrl-C stops")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        store.close()
