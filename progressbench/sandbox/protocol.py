"""What crosses the boundary between the platform and a worker: length-prefixed JSON
messages (4-byte big-endian length, then UTF-8 JSON), and the text they carry about a
candidate (its output, clipped to a tail; every string of its result made storable and
clipped; the name of the signal that ended it).

Nothing crosses a process boundary as pickle: whatever a candidate produces is hostile data.
Both sides import this module, so it stays standard-library only.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import time
from pathlib import Path
from typing import Any

MAX_MESSAGE_BYTES = 256 * 1024 * 1024
# The most characters of any one string a candidate's child sends back (an error, an output
# tail, a key or a value of its result): an 11 MB exception message would otherwise be
# stored whole and sent to the agent.
MAX_TEXT_CHARS = 64 * 1024
# What no UTF-8 database column can hold (a lone surrogate cannot be encoded; JSON's
# "\ud800" decodes to one) and NUL, which C-string readers of the database stop at.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


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
    """``text`` in at most ``limit`` characters: its tail, after a line saying how much was
    cut (so clipping a clipped text again changes nothing)."""
    if len(text) <= limit:
        return text
    # The marker for the largest possible cut is at least as long as the real one.
    keep = max(0, limit - len(_cut(len(text))))
    return _cut(len(text) - keep) + text[len(text) - keep :]


def _cut(chars: int) -> str:
    return f"[... {chars} characters truncated ...]\n"


def clean_text(text: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """``text`` with lone surrogates and NULs replaced by U+FFFD and, with a ``limit``, clipped
    to its last ``limit`` characters (a traceback ends with its cause)."""
    text = _UNSTORABLE.sub("\ufffd", text)
    return text if limit is None else clip(text, limit)


def clean_value(value: Any, limit: int = MAX_TEXT_CHARS) -> Any:
    """A JSON value from a child with every string in it, keys included, ``clean_text``-ed.
    Recursive: RecursionError on a value nested deeper than the interpreter's limit."""
    if isinstance(value, str):
        return clean_text(value, limit)
    if isinstance(value, list):
        return [clean_value(v, limit) for v in value]
    if isinstance(value, dict):
        return {clean_text(str(k), limit): clean_value(v, limit) for k, v in value.items()}
    return value


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
