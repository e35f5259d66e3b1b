"""Prompts of the two meta-prompting stages, and the island summary stage 1 shows.

Templates are looked up like the core's (``progressbench.run.prompts.template``): a user's
``prompt_dir`` overrides them, per environment or globally, and this package's ``templates``
folder is the default.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from progressbench import ProgramView, StrategyContext, prompts

from .island import IdeaRecord, Island

TEMPLATE_DIR = Path(__file__).parent / "templates"


def _template(name: str, ctx: StrategyContext) -> Template:
    return prompts.template(name, ctx.prompt_dir, ctx.env or None, default_dir=TEMPLATE_DIR)


def _parent_fields(ctx: StrategyContext, task_description: str, parent: ProgramView) -> dict:
    telemetry = f"Telemetry:\n{parent.telemetry_text}\n" if parent.telemetry_text else ""
    return {
        "task": task_description,
        "objective": prompts.format_objective(ctx.objective),
        "score": prompts.score_text(parent),
        "metrics": "Metrics: " + prompts.format_metrics(parent.metrics),
        "telemetry": telemetry,
        "code": parent.code,
    }


def _inspirations(ctx: StrategyContext, parent: ProgramView, programs: list[ProgramView]) -> str:
    # The core's inspiration template, so one override restyles both prompting modes.
    body = prompts.inspirations_text(parent, programs, ctx.prompt_dir, ctx.env or None)
    return f"\n# Other programs on this island, for inspiration\n{body}" if body else ""


def _errors(errors: list[str]) -> str:
    errors = prompts.model_errors(errors)
    if not errors:
        return ""
    listed = "\n".join(f"- {e}" for e in errors)
    return f"\n# Recent failures on this island (avoid them)\n{listed}\n"


def idea_prompt(
    ctx: StrategyContext,
    task_description: str,
    parent: ProgramView,
    inspirations: list[ProgramView],
    tried: str,
) -> tuple[str, str]:
    """Stage 1: (system, user) asking for one novel idea in prose."""
    system = _template("idea_system", ctx).substitute()
    user = _template("idea", ctx).substitute(
        _parent_fields(ctx, task_description, parent),
        inspirations=_inspirations(ctx, parent, inspirations),
        tried=tried,
    )
    return system, user


def implement_prompt(
    ctx: StrategyContext,
    task_description: str,
    parent: ProgramView,
    idea: str,
    errors: list[str],
) -> tuple[str, str]:
    """Stage 2: (system, user) asking for ``idea`` as SEARCH/REPLACE edits."""
    # The core's system message carries the edit format rules every editing call must follow
    # (and, for a program of several files, how to name the file each edit changes).
    system = prompts.system_message(parent.code, ctx.prompt_dir, ctx.env or None)
    user = _template("implement", ctx).substitute(
        _parent_fields(ctx, task_description, parent), idea=idea, errors=_errors(errors)
    )
    return system, user


def tried_summary(island: Island) -> str:
    """What stage 1 is told about the island: its best score and the ideas tested so far."""
    lines = []
    best = island.best()
    if best is not None:
        lines.append(f"Best score on this island so far: {best.score:.6g} (program #{best.id}).")
    if island.ideas:
        lines.append(
            "Ideas already tested here (oldest first), with the change in score each caused "
            "relative to the program it modified (higher is better):"
        )
        lines.extend(f"- [{_outcome(r)}] {r.text}" for r in island.ideas)
    else:
        lines.append("No ideas have been tested on this island yet.")
    return "\n".join(lines)


def _outcome(record: IdeaRecord) -> str:
    if record.delta is None:
        return record.note or "no score"
    effect = f"{record.delta:+.6g}"
    return f"{effect}, {record.note}" if record.note else effect
