"""The store: sqlmodel tables (``tables``) and the Store that writes them as things happen
(``database``). The names below load on first use, so ``progressbench.store.hashing`` stays
free of the database libraries."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    **dict.fromkeys(["DEFAULT_DB", "resolve_url"], "progressbench.store.connect"),
    **dict.fromkeys(["Store", "StoreError", "new_run_id"], "progressbench.store.database"),
    **dict.fromkeys(
        [
            "Attempt",
            "Evaluation",
            "LLMCallRecord",
            "Program",
            "Run",
            "TaskRecord",
            "VerdictRecord",
            "Verification",
            "stored_id",
        ],
        "progressbench.store.tables",
    ),
    "code_hash": "progressbench.store.hashing",
}

__all__ = [
    "DEFAULT_DB",
    "Attempt",
    "Evaluation",
    "LLMCallRecord",
    "Program",
    "Run",
    "Store",
    "StoreError",
    "TaskRecord",
    "VerdictRecord",
    "Verification",
    "code_hash",
    "new_run_id",
    "resolve_url",
    "stored_id",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'progressbench.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:
    from progressbench.store.connect import DEFAULT_DB, resolve_url
    from progressbench.store.database import Store, StoreError, new_run_id
    from progressbench.store.hashing import code_hash
    from progressbench.store.tables import (
        Attempt,
        Evaluation,
        LLMCallRecord,
        Program,
        Run,
        TaskRecord,
        VerdictRecord,
        Verification,
        stored_id,
    )
