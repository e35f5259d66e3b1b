"""What crosses the boundary between the platform and a worker: length-prefixed JSON
messages (4-byte big-endian length, then UTF-8 JSON), and the text they carry about a
candidate (its output, clipped to a tail; the name of the signal that ended it).

Nothing crosses a process boundary as pickle: whatever a candidate produces is hostile data.
Both sides import this module, so it stays standard-library only.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any

MAX_MESSAGE_BYTES = 256 * 1024 * 1024


def send_message(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def _recv_exact(sock: socket.socket, size: int, deadline: float | None) -> bytes | None:
    buf = bytearray()
    while len(buf) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer in time")
            sock.settimeout(left)
        chunk = sock.recv(min(size - len(buf), 1 << 20))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def recv_message(sock: socket.socket, deadline: float | None = None) -> dict[str, Any] | None:
    """The next message, or None at end of stream; TimeoutError after ``deadline``
    (time.monotonic()); ValueError if the stream is not this protocol."""
    header = _recv_exact(sock, 4, deadline)
    if header is None:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {size} bytes exceeds the protocol limit")
    body = _recv_exact(sock, size, deadline)
    if body is None:
        return None
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("message is not a JSON object")
    return message


# --- captured output ----------------------------------------------------------------------
def clip(text: str, limit: int) -> str:
    """The last ``limit`` characters of ``text``, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"[... {len(text) - limit} characters truncated ...]\n" + text[len(text) - limit :]


def read_tail(path: Path, limit: int) -> str:
    """The last ``limit`` characters of a (possibly huge) output file, saying how much was
    cut; never reads more than the tail."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            start = max(0, size - 4 * limit)  # UTF-8: at most 4 bytes a character
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if start == 0:
        return clip(text, limit)
    return f"[... output truncated: showing the last {limit} characters ...]\n" + text[-limit:]


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"
