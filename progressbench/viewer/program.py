"""A program's page: where it came from, how it did (metrics, telemetry, guard verdicts,
output), its code and its diff against its parent."""

from __future__ import annotations

import json
from typing import Any

from progressbench.analysis.report import run_environment
from progressbench.contracts.environment import format_score
from progressbench.errors import UserError
from progressbench.run.edits import unified_diff
from progressbench.store import Evaluation, Program, Run, Store, stored_id
from progressbench.viewer.data import telemetry_text
from progressbench.viewer.html import diff, document, e, link, pre, program_href, run_href, table

# Captured output beyond this is cut (the store keeps all of it).
OUTPUT_CHARS = 20_000


def program_page(store: Store, run_id: str, program_id: int) -> str:
    run = store.get_run(run_id)
    program = store.get_program(program_id)
    if program.run_id != run.id:
        raise UserError(f"program {program_id} belongs to run {program.run_id}, not {run.id}")
    parent = store.get_program(program.parent_ids[0]) if program.parent_ids else None
    evaluation = store.evaluation(program_id)
    parts = [
        f"<h1>program {e(program.id)} <span class='status {e(program.status)}'>"
        f"{e(program.status)}</span></h1>",
        _origin(run, program),
        _outcome(store, run, program, evaluation),
        _verdicts(store, program_id),
        "<section><h2>Diff against its parent</h2>",
        _diff(program, parent),
        "</section>",
        f"<section><h2>Code</h2>{pre(program.code, 'code')}</section>",
        _output(evaluation),
    ]
    return document(f"program {program.id}", "<main>" + "".join(parts) + "</main>")


def _origin(run: Run, program: Program) -> str:
    def ids(values: list[int]) -> str:
        return ", ".join(link(program_href(run.id, i), i) for i in values) or "none"

    idea = f"<h3>Idea</h3>{pre(program.idea, 'idea')}" if program.idea else ""
    kind = "the reference program" if program.is_reference else f"mode {e(program.mode)}"
    return (
        f"<p>{link(run_href(run.id), 'run ' + run.id)}: {kind}, island {e(program.island)}, "
        f"generation {e(program.generation)}, agent {e(program.agent or '-')}, "
        f"{e(program.retries)} fast-catcher retries</p><p>parents {ids(program.parent_ids)}; "
        f"inspirations {ids(program.inspiration_ids)}</p>{idea}"
    )


def _outcome(store: Store, run: Run, program: Program, evaluation: Evaluation | None) -> str:
    out = [
        f"<section><h2>Outcome</h2><p>score {e(format_score(program.score))}, metric "
        f"{e(format_score(program.metric))}</p>"
    ]
    if program.error:
        out.append(f"<h3>Error</h3>{pre(program.error, 'error')}")
    if evaluation is not None:
        out.append(
            f"<p>evaluation {e(evaluation.status)} in {evaluation.total_s:.2f}s "
            f"({evaluation.candidate_s:.2f}s of candidate work)"
            + (f": {e(evaluation.reason)}" if evaluation.reason else "")
            + "</p>"
        )
        for title, values in (("Metrics", evaluation.metrics), ("Features", _features(evaluation))):
            if values:
                rows = [[e(k), e(format_score(v))] for k, v in sorted(values.items())]
                out.append(f"<h3>{title}</h3>" + table(["name", "value"], rows, "metrics"))
        env = run_environment(run)
        text = telemetry_text(store, env, stored_id(program)) if env else ""
        if not text and evaluation.telemetry:
            text = json.dumps(evaluation.telemetry, indent=2, default=str)
        if text:
            out.append(f"<h3>Telemetry</h3>{pre(text, 'telemetry')}")
    return "".join(out) + "</section>"


def _features(evaluation: Evaluation) -> dict[str, Any]:
    try:
        features = json.loads(evaluation.features_json or "{}")
    except ValueError:
        return {}
    return features if isinstance(features, dict) else {}


def _verdicts(store: Store, program_id: int) -> str:
    verdicts = store.verdicts(program_id)
    if not verdicts:
        return ""
    rows = [
        [
            e(v.guard),
            e(v.stage),
            "passed" if v.passed else "<strong>refused</strong>",
            e(v.rule),
            e(v.line if v.line is not None else ""),
            e(v.reason),
        ]
        for v in verdicts
    ]
    headers = ["guard", "stage", "verdict", "rule", "line", "reason"]
    return f"<section><h2>Guard verdicts</h2>{table(headers, rows, 'verdicts')}</section>"


def _diff(program: Program, parent: Program | None) -> str:
    if parent is None:
        return "<p>no parent: this is where the run started.</p>"
    text = unified_diff(parent.code, program.code)
    head = (
        f"<p>against program {link(program_href(parent.run_id, stored_id(parent)), parent.id)}</p>"
    )
    return head + (diff(text) if text else "<p>(identical to its parent)</p>")


def _output(evaluation: Evaluation | None) -> str:
    if evaluation is None or not (evaluation.stdout or evaluation.stderr):
        return ""
    out = ["<section><h2>Output of the evaluation</h2>"]
    for name, text in (("stdout", evaluation.stdout), ("stderr", evaluation.stderr)):
        if text:
            cut = text[-OUTPUT_CHARS:]
            note = f" (last {OUTPUT_CHARS} characters)" if len(text) > len(cut) else ""
            out.append(f"<h3>{name}{note}</h3>{pre(cut, 'output')}")
    return "".join(out) + "</section>"
