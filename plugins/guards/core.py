"""The always-on guards: the program must compile, and only EVOLVE blocks may change."""

from __future__ import annotations

import re
from typing import ClassVar

from progressbench import Environment, Guard, Verdict, compile_program, edits, hookimpl


class SyntaxGuard(Guard):
    name: ClassVar[str] = "syntax"
    stage: ClassVar[str] = "static"
    description: ClassVar[str] = "the program is valid Python"

    def check_program(self, code: str, reference: str, env: Environment, variant: str) -> Verdict:
        try:
            compile_program(code, "program.py")
        except SyntaxError as exc:
            return self.reject(f"syntax error: {exc.msg}", rule="syntax", line=exc.lineno)
        return self.ok()


class EditScopeGuard(Guard):
    name: ClassVar[str] = "edit-scope"
    stage: ClassVar[str] = "static"
    description: ClassVar[str] = "text outside EVOLVE blocks is identical to the reference"

    def check_program(self, code: str, reference: str, env: Environment, variant: str) -> Verdict:
        if not edits.has_marker(code):
            # Not an edit of the reference but a program of its own (`progressbench eval`):
            # no scope to keep. A run's children always keep the markers (run/edits.py).
            return self.ok()
        change = edits.protected_changes(reference, code)
        if change:
            # The sentence names the reference's line; so does the verdict.
            where = re.search(r"\bline (\d+)", change)
            return self.reject(
                f"protected code changed: {change}",
                rule="outside-evolve-block",
                line=int(where.group(1)) if where else None,
            )
        return self.ok()


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_guards(register):
    register(SyntaxGuard())
    register(EditScopeGuard())
