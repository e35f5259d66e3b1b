"""The red-team suite: every hostile candidate in tests/redteam/programs goes through the real
pipeline (a run: edits, guards, the local evaluator's sandbox, the environment's assess) and
must end with the verdict its header announces. A new file is picked up automatically.

A file is the code a model would put into an EVOLVE block, with a header::

    # threat: what the program tries (one line)
    # env: circle-packing          (or nanogpt; default circle-packing)
    # block: model                 (which EVOLVE block receives the code; default the first)
    # guards: syntax, edit-scope   (only these guards: proves the sandbox contains it alone)
    # static: forbidden-module     (with guards: the rule the static guard stops it with first,
    #                               or "passes" where no static check can, e.g. a loop)
    # expect: rejected static:forbidden-module | failed timeout ~ text | invalid ~ text
    #         | valid reached_target=0 | ...   (alternatives separated by "|")

The code is appended at the end of the block, so its definitions replace the reference's.
``__DB__`` and ``__HOME__`` in the code become the run's database file and the platform
user's home directory (the paths an attacker would guess). Files with the same env and guards
share one run, which is itself checked: it finishes, its database stays intact, and the secret
in the platform's environment appears nowhere in it.
"""

from __future__ import annotations

import json
import operator
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import register_plugins

from progressbench import plugins
from progressbench.run import edits
from progressbench.run.config import RunConfig
from progressbench.run.loop import RunLoop
from progressbench.sandbox.core import home_dirs
from progressbench.store.database import LLMCallRecord, Store
from progressbench_plugins.guards.static import StaticGuard

PROGRAMS = Path(__file__).resolve().parent / "redteam" / "programs"
FILES = sorted(PROGRAMS.glob("*.py"))
SECRET = "sk-redteam-canary-7f3a9c41"
ENV_MODULES = {"nanogpt": "progressbench_environments.nanogpt.plugin"}
# Small settings that keep each run short; hostile programs do not need more to show
# themselves, and the limits are what several of them test.
SETTINGS: dict[str, dict[str, Any]] = {
    "circle-packing": {"timeout_s": 5, "memory_mb": 1024, "disk_mb": 64},
    "nanogpt": {
        "timeout_s": 120,
        "disk_mb": 512,
        "env_options": {
            "time_budget_s": 60,
            "max_steps": 4,
            "ckpt_every_s": 60,
            "val_tokens": 2048,
            "profile": False,
        },
    },
}
STATUSES = {"rejected", "failed", "invalid", "valid"}
OPERATORS = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}

pytestmark = pytest.mark.timeout(600)


@dataclass(frozen=True)
class Expectation:
    status: str
    what: str = ""  # guard:rule (rejected, invalid) or the evaluation's status (failed)
    text: str = ""  # a substring of the stored error or reason
    checks: tuple[tuple[str, str, float], ...] = ()  # metric, operator, value (valid)

    def __str__(self) -> str:
        parts = [self.status, self.what, f"~ {self.text}" if self.text else ""]
        parts += [f"{m}{op}{v:g}" for m, op, v in self.checks]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True)
class Case:
    path: Path
    threat: str
    env: str
    block: str | None
    guards: tuple[str, ...] | None
    static: str | None
    expect: tuple[Expectation, ...]
    code: str

    @property
    def group(self) -> tuple[str, tuple[str, ...] | None]:
        return self.env, self.guards


def parse_expectation(text: str) -> Expectation:
    text, _, substring = text.partition("~")
    tokens = text.split()
    if not tokens or tokens[0] not in STATUSES:
        raise ValueError(f"an expectation starts with one of {sorted(STATUSES)}: {text!r}")
    status, what, checks = tokens[0], "", []
    for token in tokens[1:]:
        match = re.fullmatch(r"(\w+)(<=|>=|<|>|=)(-?[\d.e+-]+)", token)
        if match:
            checks.append((match[1], match[2], float(match[3])))
        elif not what:
            what = token
        else:
            raise ValueError(f"unexpected {token!r} in expectation {text!r}")
    return Expectation(status, what, substring.strip(), tuple(checks))


def parse(path: Path) -> Case:
    code = path.read_text()
    header = dict(re.findall(r"^# (threat|env|block|guards|static|expect): (.+)$", code, re.M))
    if "expect" not in header or "threat" not in header:
        raise ValueError(f"{path.name}: the header needs '# threat:' and '# expect:' lines")
    guards = header.get("guards")
    return Case(
        path=path,
        threat=header["threat"].strip(),
        env=header.get("env", "circle-packing").strip(),
        block=header.get("block", "").strip() or None,
        guards=tuple(g.strip() for g in guards.split(",")) if guards else None,
        static=header.get("static", "").strip() or None,
        expect=tuple(parse_expectation(alt) for alt in header["expect"].split("|")),
        code=code,
    )


CASES = [parse(p) for p in FILES]


def candidate(case: Case, reference: str, db: Path) -> str:
    """The reference program with the case's code at the end of its EVOLVE block."""
    regions = edits.evolve_regions(reference)
    index = 0
    if case.block:
        names = []
        for start, _ in regions:
            marker = reference[:start].rstrip("\n").rsplit("\n", 1)[-1]
            names.append(marker.split(edits.START_MARKER, 1)[1].strip())
        index = names.index(case.block)
    end = regions[index][1]
    home = (home_dirs() or ["/root"])[0]
    code = case.code.replace("__DB__", str(db)).replace("__HOME__", home)
    return reference[:end] + code.rstrip("\n") + "\n" + reference[end:]


@dataclass
class Result:
    status: str
    error: str
    verdicts: list[tuple[str, str, str]]  # guard, rule, reason of the failing ones
    metrics: dict[str, float] = field(default_factory=dict)
    stdout: str = ""


class Campaign:
    """Runs each group of cases once, on first need."""

    def __init__(self, root: Path):
        self.root = root
        self.results: dict[Path, Result] = {}
        self.groups: dict[tuple[str, tuple[str, ...] | None], dict[str, Any]] = {}

    def result(self, case: Case) -> Result:
        if case.group not in self.groups:
            try:
                found = self.run_group([c for c in CASES if c.group == case.group])
            except Exception as exc:  # every case of the group reports it, none reruns it
                found = {"error": exc}
            self.groups[case.group] = found
        if "error" in self.groups[case.group]:
            raise self.groups[case.group]["error"]
        return self.results[case.path]

    def run_group(self, cases: list[Case]) -> dict[str, Any]:
        env_name, guards = cases[0].group
        if env_name in ENV_MODULES:
            register_plugins(ENV_MODULES[env_name])
        env = plugins.get_environment(env_name)
        variant = env.pick_variant(None)
        folder = Path(tempfile.mkdtemp(prefix=f"{env_name}-", dir=self.root))
        db = folder / "redteam.db"
        store = Store(str(db))
        # The replay agent answers task N with the "recorded" reply N: the hostile program.
        source = store.create_run(
            env=env_name,
            variant=variant,
            strategy="best-of-n",
            agent="redteam",
            budget=len(cases),
            config_json="{}",
        )
        reference = env.baseline(variant)
        replies = [f"```python\n{candidate(c, reference, db)}```" for c in cases]
        store.add_all(
            [
                LLMCallRecord(
                    run_id=source.id,
                    request_key=f"{i}:edit:1",
                    agent="redteam",
                    model="redteam",
                    purpose="edit",
                    response=reply,
                )
                for i, reply in enumerate(replies, 1)
            ]
        )
        settings = dict(SETTINGS[env_name])
        if env_name in ENV_MODULES:
            settings["evaluator_options"] = {"plugin_modules": [ENV_MODULES[env_name]]}
        config = RunConfig(
            env=env_name,
            variant=variant,
            strategy="best-of-n",
            agents=[f"replay:{source.id}"],
            budget=len(cases),
            workers=2,
            n_fast=0,
            guards=list(guards) if guards else None,
            **settings,
        )
        saved = os.environ.get("OPENAI_API_KEY")
        os.environ["OPENAI_API_KEY"] = SECRET
        try:
            run = RunLoop(store, config, say=lambda _: None).execute()
        finally:
            if saved is None:
                del os.environ["OPENAI_API_KEY"]
            else:
                os.environ["OPENAI_API_KEY"] = saved
        for task in store.tasks(run.id):
            program = store.get_program(task.program_id)
            evaluation = store.evaluation(program.id)
            self.results[cases[task.seq - 1].path] = Result(
                status=program.status,
                error=program.error,
                verdicts=[
                    (v.guard, v.rule, v.reason) for v in store.verdicts(program.id) if not v.passed
                ],
                metrics=evaluation.metrics if evaluation else {},
                stdout=evaluation.stdout if evaluation else "",
            )
        store.close()
        with sqlite3.connect(db) as con:
            integrity = con.execute("pragma integrity_check").fetchone()[0]
            dump = "\n".join(con.iterdump())
        return {"run": run, "integrity": integrity, "leaked": SECRET in dump}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory, integrity_guards: None) -> Campaign:
    return Campaign(tmp_path_factory.mktemp("redteam"))


def matches(expect: Expectation, result: Result) -> bool:
    if result.status != expect.status:
        return False
    if expect.status in ("rejected", "invalid") and expect.what:
        guard, _, rule = expect.what.partition(":")
        if not any(g == guard and r == rule for g, r, _ in result.verdicts):
            return False
    if expect.status == "failed" and expect.what:
        # "smoke: timeout: ..." (the smoke check) or "timeout: ..." (the full evaluation).
        if not re.match(rf"(smoke: )?{re.escape(expect.what)}:", result.error):
            return False
    if expect.text and expect.text not in result.error:
        return False
    for metric, op, value in expect.checks:
        got = result.metrics.get(metric)
        if got is None or not OPERATORS[op](got, value):
            return False
    return True


def survivors(stdout: str) -> list[int]:
    """Processes a program reported (``pid=N`` lines) that still run."""
    pids = [int(p) for p in re.findall(r"^pid=(\d+)$", stdout, re.M)]
    return [p for p in pids if Path(f"/proc/{p}").exists()]


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite's verdicts assume the root sandbox")
@pytest.mark.parametrize("case", CASES, ids=[c.path.stem for c in CASES])
def test_hostile_program(campaign: Campaign, case: Case) -> None:
    result = campaign.result(case)
    group = campaign.groups[case.group]
    assert group["run"].status == "finished" and group["run"].n_children == len(
        [c for c in CASES if c.group == case.group]
    )
    assert group["integrity"] == "ok"
    assert not group["leaked"], "the platform's secret reached the database"
    shown = {
        "status": result.status,
        "error": result.error[-700:],
        "verdicts": result.verdicts,
        "metrics": dict(list(result.metrics.items())[:8]),
    }
    described = json.dumps(shown, indent=1)
    wanted = " | ".join(map(str, case.expect))
    assert any(matches(e, result) for e in case.expect), (
        f"{case.path.name} ({case.threat}): expected {wanted}, got {described}"
    )
    assert survivors(result.stdout) == []


CONTAINED = [c for c in CASES if c.guards is not None]


@pytest.mark.parametrize("case", CONTAINED, ids=[c.path.stem for c in CONTAINED])
def test_static_guard_stops_it_first(case: Case, integrity_guards: None) -> None:
    """The programs the sandbox must contain on its own are, with every guard on, stopped
    before they run, with the rule their header names, except where no static check can."""
    assert case.static, f"{case.path.name}: a file with '# guards:' needs '# static:'"
    if case.env in ENV_MODULES:
        register_plugins(ENV_MODULES[case.env])
    env = plugins.get_environment(case.env)
    variant = env.pick_variant(None)
    reference = env.baseline(variant)
    verdict = StaticGuard().check_program(
        candidate(case, reference, Path("x.db")), reference, env, variant
    )
    if case.static == "passes":
        assert verdict.passed, verdict.reason
    else:
        assert not verdict.passed and verdict.rule == case.static, verdict.reason
        assert verdict.line and f"line {verdict.line}" in verdict.reason


def test_every_threat_of_the_issue_is_covered() -> None:
    """The issue's list, each by at least one file (matched on its threat line)."""
    threats = " ".join(c.threat.lower() for c in CASES)
    topics = (
        "reads validation data", "trains on validation", "loss", "clock", "harness",
        "forges the result", "stdout", "not the trained one", "skips training", "infinite loop",
        "memory bomb", "fork bomb", "disk flood", "segfault", "kills its parent", "socket",
        "api keys", "database", "subprocess", "ctypes",
    )  # fmt: skip
    for topic in topics:
        assert topic in threats, f"no red-team program covers {topic!r}"
    assert len(CASES) >= 25
