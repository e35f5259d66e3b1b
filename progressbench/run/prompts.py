"""Prompt templates: plain text files with ``$name`` placeholders (string.Template).

Built-in templates live in ``progressbench/run/templates``. A user overrides any of them per
environment by pointing ``prompt_dir`` (config or ``--prompts``) at a folder holding
``<env>/<name>.txt`` or ``<name>.txt``; strategies may ship their own and look them up the same
way with ``template(name, prompt_dir, env, default_dir)``.
"""

from __future__ import annotations

import difflib
import sys
from importlib import resources
from pathlib import Path
from string import Template

from pydantic import BaseModel

from progressbench.contracts.environment import Objective, format_score
from progressbench.contracts.program import ProgramView, is_multi_file
from progressbench.errors import UserError

_BUILTIN = resources.files("progressbench.run") / "templates"


def template(
    name: str,
    prompt_dir: str | None = None,
    env: str | None = None,
    default_dir: Path | None = None,
) -> Template:
    """Find template ``name`` (a user's override first), as a string.Template."""
    if prompt_dir:
        base = Path(prompt_dir)
        for candidate in ([base / env / f"{name}.txt"] if env else []) + [base / f"{name}.txt"]:
            if candidate.is_file():
                return Template(candidate.read_text())
    if default_dir is not None and (default_dir / f"{name}.txt").is_file():
        return Template((default_dir / f"{name}.txt").read_text())
    return Template((_BUILTIN / f"{name}.txt").read_text())


# The placeholders each core template is given (a user's copy may use any of them).
CORE_FIELDS: dict[str, frozenset[str]] = {
    "system": frozenset(),
    "edit": frozenset(
        {"task", "objective", "score", "metrics", "telemetry", "code", "inspirations", "errors"}
    ),
    "inspiration": frozenset({"n", "score", "metrics", "code", "diff"}),
    "fix": frozenset({"task", "objective", "idea", "reply", "error", "code"}),
}


def check_prompt_dir(prompt_dir: str | None, env: str, owner: type | None = None) -> None:
    """Refuse (one line, before any run exists) a prompt folder that is missing, or a
    template in it with a placeholder its prompt does not fill or a stray ``$``. Templates
    of a strategy (``owner``, whose package may ship a ``templates`` folder) are checked
    against that folder's defaults; files named after no template are left alone."""
    if not prompt_dir:
        return
    base = Path(prompt_dir)
    if not base.is_dir():
        raise UserError(f"prompt folder {prompt_dir!r} does not exist")
    module = sys.modules.get(owner.__module__) if owner else None
    own = Path(module.__file__).parent / "templates" if module and module.__file__ else None
    for path in sorted([*(base / env).glob("*.txt"), *base.glob("*.txt")]):
        allowed = CORE_FIELDS.get(path.stem)
        if allowed is None and own is not None and (own / path.name).is_file():
            allowed = frozenset(Template((own / path.name).read_text()).get_identifiers())
        if allowed is None:
            continue
        found = Template(path.read_text())
        if not found.is_valid():
            raise UserError(f"prompt template {path}: a $ that is no placeholder (write $$ for $)")
        unknown = sorted(set(found.get_identifiers()) - allowed)
        if unknown:
            known = ", ".join(f"${k}" for k in sorted(allowed)) or "none"
            raise UserError(
                f"prompt template {path}: unknown placeholder ${unknown[0]} (known: {known})"
            )


def format_metrics(metrics: dict[str, float]) -> str:
    if not metrics:
        return "(no metrics)"
    return ", ".join(f"{k}={format_score(v)}" for k, v in sorted(metrics.items()))


def format_objective(objective: Objective) -> str:
    parts = [
        f"Metric: {objective.metric} ({objective.direction}{', ' + objective.unit if objective.unit else ''})."
    ]
    if objective.target is not None:
        parts.append(f"Target: {objective.target:g}.")
    record = objective.best_record()
    if record:
        parts.append(f"Best known result: {record[1]:g} ({record[0]}).")
    return " ".join(parts)


def edit_prompt(
    task_description: str,
    parent: ProgramView,
    inspirations: list[ProgramView],
    objective: Objective,
    prompt_dir: str | None = None,
    env: str | None = None,
    errors: list[str] | None = None,
) -> tuple[str, str]:
    """(system, user) messages asking for SEARCH/REPLACE edits of ``parent``."""
    system = system_message(parent.code, prompt_dir, env)
    insp = inspirations_text(parent, inspirations, prompt_dir, env)
    err = ""
    if model_errors(errors or []):
        err = (
            "\n# Recent failures on this line of programs (avoid them)\n"
            + "\n".join(f"- {e}" for e in model_errors(errors or []))
            + "\n"
        )
    user = template("edit", prompt_dir, env).substitute(
        task=task_description,
        objective=format_objective(objective),
        score=score_text(parent),
        metrics="Metrics: " + format_metrics(parent.metrics),
        telemetry=("Telemetry:\n" + parent.telemetry_text + "\n") if parent.telemetry_text else "",
        code=parent.code,
        inspirations=("\n# Other programs for inspiration\n" + insp) if insp else "",
        errors=err,
    )
    return system, user


# What the system message adds for a program of several files.
MULTI_FILE_RULES = """
This program has several files. In the program shown, each file begins with a line
`# ===== file: PATH =====` naming its path; that line is not part of the file, and files
without EVOLVE blocks are protected whole. Put the path of the file an edit changes on its
own line right before each SEARCH/REPLACE block, e.g.:

kernels.py
<<<<<<< SEARCH
lines copied exactly from kernels.py
=======
the lines that replace them
>>>>>>> REPLACE
"""


def system_message(code: str, prompt_dir: str | None = None, env: str | None = None) -> str:
    """The ``system`` template, with the rules for naming files when ``code`` (the program
    being edited) has several."""
    system = template("system", prompt_dir, env).substitute()
    return system + MULTI_FILE_RULES if is_multi_file(code) else system


def inspirations_text(
    parent: ProgramView,
    programs: list[ProgramView],
    prompt_dir: str | None = None,
    env: str | None = None,
    default_dir: Path | None = None,
) -> str:
    """The ``inspiration`` template for each of ``programs``: its score and metrics and, as
    ``$diff``, how its code differs from ``parent``'s (a whole copy, ``$code``, would repeat
    the parent's code once per inspiration)."""
    block = template("inspiration", prompt_dir, env, default_dir)
    return "".join(
        block.substitute(
            n=i + 1,
            score=score_text(p),
            metrics=format_metrics(p.metrics),
            code=p.code,
            diff=code_diff(parent.code, p.code),
        )
        for i, p in enumerate(programs)
    )


def code_diff(old: str, new: str) -> str:
    """A unified diff from ``old`` to ``new`` (the current program to another one)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), "current", "inspiration"
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return text.rstrip("\n") or "(the same code as the current program)"


# Failures that were not the program's fault: the model's call or reply (stage ``agent``),
# or the machinery that ran the program (``infra``). No model is told to avoid them.
NOT_THE_PROGRAM = ("agent:", "infra:")


def model_errors(errors: list[str]) -> list[str]:
    """Those of ``errors`` (programs' stored errors) that were the program's own."""
    return [e for e in errors if not e.strip().startswith(NOT_THE_PROGRAM)]


class FixContext(BaseModel):
    """What a stateless model needs to fix its failed attempt: what it was working toward."""

    task: str
    objective: str
    idea: str = ""
    reply: str = ""
    error: str
    code: str


def fix_messages(
    context: FixContext, prompt_dir: str | None = None, env: str | None = None
) -> tuple[str, str]:
    """(system, user) messages of the fast error catcher's retry: the edit rules; then the
    objective, the idea being implemented, the failed reply, its error and the parent's code."""
    system = system_message(context.code, prompt_dir, env)
    idea = f"\n# The idea you are implementing\n{context.idea}\n" if context.idea else ""
    fields = context.model_dump() | {"idea": idea, "reply": context.reply.strip() or "(empty)"}
    return system, template("fix", prompt_dir, env).substitute(fields)


def score_text(p: ProgramView) -> str:
    """A program's score as prompts show it ("invalid" or "n/a" without one)."""
    return format_score(p.score, missing="n/a" if p.valid else "invalid")
