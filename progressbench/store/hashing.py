"""The identity of a program's text, stored with every program (``Program.code_hash``).

Its own module, free of the database libraries, so plugins loaded in sandbox workers (the
islands strategy's duplicate filter) use it without importing SQLAlchemy there.
"""

from __future__ import annotations

import hashlib


def code_hash(code: str) -> str:
    """A short hash of ``code``'s exact text."""
    return hashlib.sha256(code.encode()).hexdigest()[:16]
