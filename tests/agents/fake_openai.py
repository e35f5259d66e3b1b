"""A small OpenAI-compatible chat server on 127.0.0.1 for the tests of the llm agent.

litellm's real HTTP path (its OpenAI client, its error mapping) talks to it; nothing leaves
the machine. It answers ``POST .../chat/completions`` from a script of responses (the last one
repeats), counts every request it got, and stops by itself: after ``max_requests`` requests it
answers 503 and after ``lifetime_s`` seconds it shuts down.

    with FakeOpenAI([fault(429, headers={"Retry-After": "0"}), ok(EDIT)]) as server:
        server.api_base   # "http://127.0.0.1:PORT/v1"
        server.requests   # the JSON bodies received, in order
        server.keys       # the API key (Authorization: Bearer ...) of each, in order
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds to wait before answering (a server that hangs: a process killed mid-call).
    delay_s: float = 0.0


def ok(text: str, prompt_tokens: int = 11, completion_tokens: int = 7) -> Answer:
    return Answer(body=json.dumps(_completion([_choice(text)], prompt_tokens, completion_tokens)))


def hang(seconds: float = 60) -> Answer:
    return Answer(status=503, body=json.dumps({"error": {"message": "hung"}}), delay_s=seconds)


def empty_choices() -> Answer:
    return Answer(body=json.dumps(_completion([], 11, 0)))


def malformed() -> Answer:
    return Answer(body=b'{"id": "x", "choices": [')


def fault(status: int, message: str = "fault", headers: dict[str, str] | None = None) -> Answer:
    kind = {400: "invalid_request_error", 401: "invalid_api_key", 404: "model_not_found"}
    body = {"error": {"message": message, "type": kind.get(status, "server_error"), "code": None}}
    return Answer(status, json.dumps(body), dict(headers or {}))


def _choice(text: str) -> dict[str, Any]:
    return {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
    }


def _completion(choices: list[dict[str, Any]], prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "test-model",
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


class FakeOpenAI:
    def __init__(self, script: list[Answer], max_requests: int = 200, lifetime_s: float = 120):
        if not script:
            raise ValueError("the fake server needs at least one answer")
        self.script = list(script)
        self.max_requests = max_requests
        self.lifetime_s = lifetime_s
        self.requests: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any], key: str) -> Answer:
        with self._lock:
            self.requests.append(body)
            self.keys.append(key)
            n = len(self.requests)
            if n > self.max_requests:
                return fault(503, f"the fake server's limit of {self.max_requests} requests")
            return self.script[min(n, len(self.script)) - 1]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"unparsable": raw.decode(errors="replace")}
                if not self.path.endswith("/chat/completions"):
                    answer = fault(404, f"no route {self.path}")
                else:
                    auth = self.headers.get("Authorization") or ""
                    answer = server._next(body, auth.removeprefix("Bearer "))
                if answer.delay_s:
                    time.sleep(answer.delay_s)
                data = answer.body if isinstance(answer.body, bytes) else answer.body.encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        return Handler
