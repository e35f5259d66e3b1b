"""The run loop in process, with a scripted agent on circle-packing: the budget, the fast error
catcher and its fix prompt, the cost cap, the session's call keys, and resuming a task the cap
interrupted."""

from __future__ import annotations

import threading
from typing import ClassVar

import pytest

from progressbench import hookimpl
from progressbench.contracts.agent import Agent, AgentOptions, AgentReply, AgentRequest, LLMCall
from progressbench.contracts.environment import Environment
from progressbench.contracts.strategy import Strategy, Task
from progressbench.errors import RunFailed, UserError
from progressbench.run import rows
from progressbench.run.agents import AgentPool
from progressbench.run.config import RunConfig
from progressbench.run.loop import RunLoop
from progressbench.run.session import (
    AgentSession,
    CostCapReached,
    CostMeter,
    Interrupted,
    ProgramViews,
    StopFlag,
)
from progressbench.run.stages import ENV_ERROR_LIMIT
from progressbench.store import Evaluation, Program, Store
from progressbench_plugins.agents.offline import OfflineAgent

# A name json lacks: an import the static guard allows (circle-packing declares its modules)
# that fails only when it runs.
MISSING = "from json import nonexistent_module_for_the_loop_test"
# What the agent answers to the n-th request of a task, by script (the agent's ARG); the last
# entry repeats.
SCRIPTS = {
    "ok": ["ok"],
    "smoke-then-edit-then-ok": ["smoke", "noedit", "ok"],
    "never": ["noedit"],
    "raise": ["raise"],
}


class Scripted(Agent):
    """Replies by script: a valid edit (the offline agent's), a reply with no edits (an edit
    failure), or a whole program importing a name that does not exist (a smoke failure).
    Every call costs ``COST``; every request is kept in ``requests``."""

    name = "loop-test"
    COST: ClassVar[float] = 0.01
    requests: ClassVar[list[AgentRequest]] = []
    _lock = threading.Lock()

    def reply(self, request: AgentRequest) -> AgentReply:
        with self._lock:
            self.requests.append(request)
        script = SCRIPTS[self.arg or "ok"]
        n = int(request.key.rsplit(":", 1)[1])
        kind = script[min(n, len(script)) - 1]
        if kind == "raise":
            raise RuntimeError("the scripted agent broke")
        if kind == "ok":
            edit = request.model_copy(update={"purpose": "edit"})
            text = OfflineAgent(None, AgentOptions()).reply(edit).text
        elif kind == "smoke":
            text = f"```python\n{_inject(request.parent_code, MISSING)}```"
        else:
            text = "I have nothing to change."
        call = LLMCall(
            agent=self.name, model="scripted", purpose=request.purpose,
            messages=request.messages(), response=text, cost_usd=self.COST,
        )  # fmt: skip
        return AgentReply(text=text, calls=[call])


def _inject(code: str, line: str) -> str:
    out = []
    for original in code.splitlines(keepends=True):
        out.append(original)
        if "EVOLVE-BLOCK-START" in original:
            out.append(line + "\n")
    return "".join(out)


class ScriptedPlugin:
    @hookimpl
    def register_agents(self, register):
        register(Scripted)


@pytest.fixture
def scripted(plugin):
    Scripted.requests = []
    plugin(ScriptedPlugin(), name="loop-test-agent")
    return Scripted


def config(script: str = "ok", **settings) -> RunConfig:
    values = {"strategy": "greedy", "budget": 3, "workers": 1, "seed": 1, **settings}
    return RunConfig(env="circle-packing", agents=[f"loop-test:{script}"], **values)


def execute(store: Store, cfg: RunConfig, run=None) -> tuple[RunLoop, object]:
    loop = RunLoop(store, cfg, run=run, say=lambda _: None)
    return loop, loop.execute()


def children(store: Store, run_id: str) -> list[Program]:
    return [p for p in store.programs(run_id) if not p.is_reference]


def test_the_budget_is_respected_and_every_task_ends_with_one_program(tmp_path, scripted):
    store = Store(str(tmp_path / "pb.db"))
    loop, run = execute(store, config(budget=5, workers=2))
    assert run.status == "finished" and run.n_children == 5 and loop.run.id == run.id
    tasks = store.tasks(run.id)
    assert [t.seq for t in tasks] == [1, 2, 3, 4, 5] and all(t.state == "done" for t in tasks)
    assert sorted(t.program_id for t in tasks) == sorted(p.id for p in children(store, run.id))
    # One request per child and per retry; the counters the loop keeps match the store's.
    retries = sum(p.retries for p in children(store, run.id))
    assert len(scripted.requests) == 5 + retries == len(store.llm_calls(run.id))
    assert loop.stats.done == 5 and loop.stats.retries == retries == run.n_retries
    assert loop.stats.cost == pytest.approx(0.01 * (5 + retries)) == run.cost_usd


def test_a_failing_child_is_stored_with_its_attempts_and_the_fix_prompt_carries_the_error(
    tmp_path, scripted
):
    store = Store(str(tmp_path / "pb.db"))
    _, run = execute(store, config("never", budget=1, n_fast=2))
    (child,) = children(store, run.id)
    reference = store.get_program(run.reference_id)
    assert child.status == "failed" and child.retries == 2 and child.error.startswith("edit: ")
    # A child that never got past the fast error catcher keeps its parent's code.
    assert child.code == reference.code and store.evaluation(child.id) is None
    attempts = store.attempts(run.id)
    assert [(a.attempt, a.stage) for a in attempts] == [(0, "edit"), (1, "edit"), (2, "edit")]
    assert {a.task_key for a in attempts} == {store.tasks(run.id)[0].key}
    assert run.n_failed == 1 and run.n_retries == 2 and run.status == "finished"
    # Each fix request carries the previous attempt's error, in its prompt and as a field.
    fixes = [r for r in scripted.requests if r.purpose == "fix"]
    assert len(fixes) == 2
    for request, attempt in zip(fixes, attempts, strict=False):
        assert request.error == attempt.error and attempt.error in request.prompt
        assert reference.code in request.prompt


def test_a_child_that_passes_on_a_retry_is_evaluated_and_keeps_its_failed_attempts(
    tmp_path, scripted
):
    store = Store(str(tmp_path / "pb.db"))
    _, run = execute(store, config("smoke-then-edit-then-ok", budget=1, n_fast=3))
    (child,) = children(store, run.id)
    assert child.status == "valid" and child.retries == 2 and store.evaluation(child.id)
    attempts = store.attempts(run.id)
    assert [a.stage for a in attempts] == ["smoke", "edit"]
    # The smoke failure kept the code that failed; the edit failure had none.
    assert MISSING in attempts[0].code and attempts[1].code == ""
    fix = [r for r in scripted.requests if r.purpose == "fix"][0]
    assert "nonexistent_module_for_the_loop_test" in fix.prompt


def test_the_session_s_call_keys_are_linked_to_the_program(tmp_path, scripted):
    store = Store(str(tmp_path / "pb.db"))
    _, run = execute(store, config("smoke-then-edit-then-ok", budget=2, n_fast=3))
    calls = store.llm_calls(run.id)
    assert {c.request_key for c in calls} == {r.key for r in scripted.requests}
    for task in store.tasks(run.id):
        linked = sorted(c.request_key for c in calls if c.program_id == task.program_id)
        s = task.seq
        assert linked == [f"{s}:edit:1", f"{s}:fix:2", f"{s}:fix:3"]
    assert all(c.program_id is not None for c in calls)


def test_the_cost_cap_stops_the_run_with_status_stopped(tmp_path, scripted):
    store = Store(str(tmp_path / "pb.db"))
    loop, run = execute(store, config(budget=20, max_cost=0.025))
    # The third call (one per child, or per retry) reaches the cap; nothing is asked after.
    assert run.status == "stopped" and "cost cap $0.025 reached" in run.message
    assert len(store.llm_calls(run.id)) == len(scripted.requests) == 3
    assert run.cost_usd == pytest.approx(0.03) and loop.stats.cost == pytest.approx(0.03)
    done = [t for t in store.tasks(run.id) if t.state == "done"]
    assert 1 <= run.n_children == len(done) == len(children(store, run.id)) <= 3


def test_a_task_the_cap_interrupts_stays_issued_and_a_resume_links_its_earlier_calls(
    tmp_path, scripted
):
    store = Store(str(tmp_path / "pb.db"))
    # Two failed calls (0.02) pass the cap (0.015): the second fix is never asked.
    _, run = execute(store, config("never", budget=1, n_fast=3, max_cost=0.015))
    assert run.status == "stopped" and run.n_children == 0 and children(store, run.id) == []
    (task,) = store.tasks(run.id)
    assert task.state == "issued" and task.program_id is None
    earlier = store.llm_calls(run.id)
    assert [c.request_key for c in earlier] == ["1:edit:1", "1:fix:2"]
    assert all(c.program_id is None for c in earlier)
    # Resumed without a cap, the task is redone: the stored replies are reused, not asked
    # again, and its program owns the calls of both sessions.
    _, run = execute(store, config("ok", budget=1, n_fast=3), run=store.get_run(run.id))
    (child,) = children(store, run.id)
    assert run.status == "finished" and child.status == "valid" and child.retries == 2
    calls = store.llm_calls(run.id)
    assert [c.request_key for c in calls] == ["1:edit:1", "1:fix:2", "1:fix:3"]
    assert {c.program_id for c in calls} == {child.id}
    assert [a.attempt for a in store.attempts(run.id)] == [0, 1]


def test_an_agent_that_raises_becomes_a_recorded_failure(tmp_path, scripted):
    store = Store(str(tmp_path / "pb.db"))
    _, run = execute(store, config("raise", budget=1, n_fast=1))
    (child,) = children(store, run.id)
    assert child.status == "failed" and run.status == "finished"
    # A failed call is not the program's fault: no fix prompt is sent for it.
    assert [a.stage for a in store.attempts(run.id)] == ["agent"]
    assert "agent loop-test:raise failed: the scripted agent broke" in child.error


def test_a_bad_strategy_option_fails_before_a_run_is_created(tmp_path, scripted):
    store = Store(str(tmp_path / "pb.db"))
    with pytest.raises(UserError, match=r"invalid option for strategy 'islands': islands"):
        RunLoop(store, config(strategy="islands", strategy_options={"islands": 0}))
    with pytest.raises(UserError, match=r"'greedy': nope: unknown setting"):
        RunLoop(store, config(strategy_options={"nope": 1}))
    assert store.runs() == []


def test_the_strategy_option_check_is_one_classmethod_the_constructor_uses():
    class Knobbed(Strategy):
        name = "knobbed"

        class Options(Strategy.Options):
            pass

    with pytest.raises(UserError, match=r"invalid option for strategy 'knobbed': x: unknown"):
        Knobbed.check_options({"x": 1})
    assert Strategy.check_options({}).model_dump() == {}


# --- the session on its own ------------------------------------------------------------
class Recorder:
    """A store stand-in for the session: what it writes, and one program to read."""

    def __init__(self):
        self.rows: list = []

    def add_all(self, objs):
        self.rows.extend(objs)

    def get_program(self, program_id):
        return Program(id=program_id, run_id="r", code="# parent\n", code_hash="h")

    def evaluation(self, program_id):
        return None


def session(store, *, stop=None, meter=None, agents=None, earlier=None) -> AgentSession:
    if agents is None:
        agents = AgentPool(RunConfig(agents=["loop-test:ok"]), lambda _: None)
    return AgentSession(
        Task(parent_id=1), 7, "the task",
        views=ProgramViews(store, Environment()), agents=agents, stop=stop or StopFlag(),
        meter=meter or CostMeter(), store=store, run_id="r", seed=3, earlier_keys=earlier,
    )  # fmt: skip


def test_the_session_keys_each_request_and_stores_its_calls(scripted):
    store, meter = Recorder(), CostMeter(cap=1.0)
    s = session(store, meter=meter, earlier=["7:edit:1", "7:fix:2"])
    s.ask("edit", "system", "prompt")
    s.ask("fix", "system", "prompt", error="boom")
    assert [r.key for r in scripted.requests] == ["7:edit:1", "7:fix:2"]
    assert scripted.requests[1].error == "boom" and scripted.requests[0].parent_code == "# parent\n"
    assert [row.request_key for row in store.rows] == ["7:edit:1", "7:fix:2"]
    assert meter.spent == pytest.approx(0.02)
    # The earlier session's keys come first, once each.
    assert s.call_keys == ["7:edit:1", "7:fix:2"]


def test_the_session_stops_on_the_flag_and_at_the_cap(scripted):
    stop = StopFlag()
    s = session(Recorder(), stop=stop)
    stop.set()
    with pytest.raises(Interrupted):
        s.ask("edit", "s", "p")
    capped = session(Recorder(), meter=CostMeter(cap=0.01, spent=0.01))
    with pytest.raises(CostCapReached):
        capped.ask("edit", "s", "p")
    assert scripted.requests == [] and capped.call_keys == []


def test_the_call_key_format_lives_in_rows():
    assert rows.call_key(12, "fix", 3) == "12:fix:3"
    assert rows.task_key("run-1", 12) == "run-1:12"
    keys = {"1:edit:1", "1:fix:2", "10:edit:1", "11:idea:1", "2:edit:1"}
    assert rows.keys_of_task(keys, 1) == ["1:edit:1", "1:fix:2"]
    assert rows.keys_of_task(keys, 10) == ["10:edit:1"]


def test_a_program_view_carries_the_inspirations_its_row_stored(tmp_path):
    store = Store(str(tmp_path / "pb.db"))
    run = store.create_run(
        env="e", variant="v", strategy="s", agent="a", budget=1, config_json="{}"
    )
    task = Task(parent_id=1, inspiration_ids=[3, 2], island=1, generation=4)
    row = rows.program_row(run.id, task, "a", "x = 1\n", "", "", 0, "pending", "")
    view = ProgramViews(store, Environment()).get(store.add(row).id)
    assert view.inspiration_ids == [3, 2] and view.parent_ids == [1]
    assert (view.island, view.generation, view.valid) == (1, 4, False)


def test_a_broken_reference_is_one_line_naming_the_environment_plugin(tmp_path, plugin):
    """Field trial: a reference with a syntax error gave a 17-line traceback from the worker
    that named no plugin."""
    plugin("broken_env")
    cfg = RunConfig(
        env="broken-reference-test",
        budget=1,
        evaluator_options={"plugin_modules": ["broken_env"]},
    )
    store = Store(str(tmp_path / "pb.db"))
    with pytest.raises(UserError) as err:
        RunLoop(store, cfg, say=lambda _: None).execute()
    message = str(err.value)
    assert "\n" not in message
    assert "environment 'broken-reference-test' (plugin 'broken_env')" in message
    assert "SyntaxError" in message
    # The run never began: it is not kept (a failed row would sit on the leaderboard).
    assert store.runs() == [] and store.leases.held == {}


def test_an_environment_that_raises_in_assess_stops_the_run_naming_its_plugin(tmp_path, plugin):
    """Field trial: ``assess`` raising mid-run was stored as an invalid child and the run
    ended ``finished``, exit 0: a harness bug looked like a bad candidate."""
    plugin("broken_env")
    cfg = RunConfig(
        env="assess-raises-test",
        strategy="greedy",
        budget=10,
        workers=1,
        evaluator_options={"plugin_modules": ["broken_env"]},
    )
    store = Store(str(tmp_path / "pb.db"))
    said: list[str] = []
    with pytest.raises(RunFailed) as err:
        RunLoop(store, cfg, say=said.append).execute()
    message = str(err.value)
    assert "\n" not in message
    assert "environment 'assess-raises-test' (plugin 'broken_env') raised in assess" in message
    assert "KeyError" in message
    # The command that resumes it reaches this database, not the default one.
    assert f"(progressbench run --resume {store.runs()[0].id} --db {tmp_path / 'pb.db'} " in message
    (run,) = store.runs()
    assert run.status == "failed"
    children = [p for p in store.programs(run.id) if p.id != run.reference_id]
    judged = [p for p in children if p.status != "pending"]
    assert [p.status for p in judged] == ["env-error"] * ENV_ERROR_LIMIT
    # Not the candidate's fault: kept out of fix prompts and "recent failures".
    assert all(p.error.startswith("infra: environment 'assess-raises-test'") for p in judged)
    assert sum("environment error" in line for line in said) == ENV_ERROR_LIMIT


class TimedEnv(Environment):
    def format_telemetry(self, telemetry):
        return f"step {telemetry['step_ms']} ms"

    def format_telemetry_diff(self, telemetry, parent):
        return f"step {parent['step_ms']} -> {telemetry['step_ms']} ms"


def test_a_program_view_shows_its_telemetry_against_its_parents(tmp_path):
    store = Store(str(tmp_path / "pb.db"))
    run = store.create_run(
        env="e", variant="v", strategy="s", agent="a", budget=2, config_json="{}"
    )
    ids = []
    for i, step_ms in enumerate((200, 150)):
        parents = f"[{ids[-1]}]" if ids else "[]"
        row = store.add(Program(run_id=run.id, parent_ids_json=parents, code=f"x = {i}\n",
                                code_hash=str(i), status="valid"))  # fmt: skip
        store.add(Evaluation(run_id=run.id, program_id=row.id, status="ok", valid=True,
                             telemetry_json=f'{{"step_ms": {step_ms}}}'))  # fmt: skip
        ids.append(row.id)
    views = ProgramViews(store, TimedEnv())
    assert views.get(ids[0]).telemetry_text == "step 200 ms"  # no parent: no diff
    assert views.get(ids[1]).telemetry_text == "step 150 ms\nagainst its parent: step 200 -> 150 ms"
    assert ProgramViews(store, Environment()).get(ids[1]).telemetry_text == ""
