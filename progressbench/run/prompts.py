"""Prompt templates: plain text files with ``$name`` placeholders (string.Template).

Built-in templates live in ``progressbench/run/templates``. A user overrides any of them per
environment by pointing ``prompt_dir`` (config or ``--prompts``) at a folder holding
``<env>/<name>.txt`` or ``<name>.txt``; strategies may ship their own and look them up the same
way with ``template(name, prompt_dir, env, default_dir)``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from string import Template

from progressbench.contracts.environment import Objective, format_score
from progressbench.contracts.program import ProgramView

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
    system = template("system", prompt_dir, env).substitute()
    insp = "".join(
        template("inspiration", prompt_dir, env).substitute(
            n=i + 1, score=score_text(p), metrics=format_metrics(p.metrics), code=p.code
        )
        for i, p in enumerate(inspirations)
    )
    err = ""
    if errors:
        err = (
            "\n# Recent failures on this line of programs (avoid them)\n"
            + "\n".join(f"- {e}" for e in errors)
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


def fix_prompt(
    error: str, parent_code: str, prompt_dir: str | None = None, env: str | None = None
) -> str:
    """The follow-up message of the fast error catcher."""
    return template("fix", prompt_dir, env).substitute(error=error, code=parent_code)


def fix_messages(
    error: str, parent_code: str, prompt_dir: str | None = None, env: str | None = None
) -> tuple[str, str]:
    """(system, user) messages of the fast error catcher's retry: the edit rules, then the
    failed attempt's error and the parent's code again."""
    system = template("system", prompt_dir, env).substitute()
    return system, fix_prompt(error, parent_code, prompt_dir, env)


def score_text(p: ProgramView) -> str:
    """A program's score as prompts show it ("invalid" or "n/a" without one)."""
    return format_score(p.score, missing="n/a" if p.valid else "invalid")
