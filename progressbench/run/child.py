"""One child's pipeline, in a worker thread, top to bottom:

1. resume shortcuts: a task whose program is already stored only needs its evaluation (or,
   if it failed before one, only its commit);
2. propose: the strategy drives the agent through an ``AgentSession``;
3. the fast error catcher: apply the reply's edits, run the static guards and the smoke
   check; a failed attempt is stored and the agent asked to fix it (``prompts.fix_messages``),
   up to ``n_fast`` times;
4. store the program (with its static verdicts and the LLM calls that produced it);
5. the full evaluation, then the result guards and the environment's assessment.

The result goes back to the main thread as an ``Outcome``, which commits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from progressbench.contracts.agent import AgentReply
from progressbench.contracts.environment import Assessment, Environment, Resources
from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Evaluator
from progressbench.contracts.guard import Guard
from progressbench.contracts.program import ProgramView
from progressbench.contracts.strategy import Proposal, Strategy, Task
from progressbench.errors import EditError, EnvironmentFault
from progressbench.run import edits, prompts, rows
from progressbench.run.agents import AgentPool, stored_replies
from progressbench.run.config import RunConfig
from progressbench.run.session import AgentSession, CostMeter, ProgramViews, StopFlag
from progressbench.run.stages import (
    assess_outcome,
    describe_outcome,
    describe_verdicts,
    limits_for,
    static_verdicts,
)
from progressbench.store.database import Store
from progressbench.store.tables import Evaluation, Program, TaskRecord, VerdictRecord, stored_id


@dataclass
class Outcome:
    """What a worker thread hands back to the main thread for one task."""

    task_key: str
    program_id: int
    status: str
    assessment: Assessment | None = None
    evaluation: Evaluation | None = None
    verdicts: list[VerdictRecord] = field(default_factory=list)
    error: str = ""


@dataclass
class ChildContext:
    """What every child of a run works with; fixed once the run's evaluator has started."""

    store: Store
    run_id: str
    reference_id: int
    config: RunConfig
    env: Environment
    variant: str
    resources: Resources
    guards: list[Guard]
    evaluator: Evaluator
    agents: AgentPool
    views: ProgramViews
    stop: StopFlag
    meter: CostMeter

    def job(self, code: str, phase: Literal["smoke", "full"], n: int) -> EvalJob:
        """An evaluation of ``code``, seeded by ``n`` (the task's number; the reference's
        program id for the reference)."""
        return EvalJob(
            program=code,
            phase=phase,
            seed=(self.config.seed * 1_000_003 + n) % (2**31),
            limits=limits_for(self.resources, self.config, phase),
            options=self.config.env_options,
        )


@dataclass
class Candidate:
    """One attempt of the fast error catcher: the edited code, or why it failed and where."""

    code: str = ""
    edit: str = ""
    verdicts: list[VerdictRecord] = field(default_factory=list)
    failure: str = ""
    stage: str = ""  # agent | edit | guard | smoke


def run_child(
    ctx: ChildContext, strategy: Strategy, rec: TaskRecord, resumed: bool = False
) -> Outcome:
    """Task ``rec`` end to end; ``resumed`` when an earlier session of the run issued it."""
    if rec.program_id is not None:
        return _resume_stored(ctx, rec, rec.program_id)
    task = Task.model_validate_json(rec.task_json)
    session = _session(ctx, rec, task, resumed)
    parent = ctx.views.get(task.parent_id)
    proposal = strategy.propose(session)
    done = ctx.store.attempts(ctx.run_id) if resumed else []
    stored = {a.attempt for a in done if a.task_key == rec.key}
    attempt, idea, retries = _fast_catcher(ctx, rec, session, proposal, parent, stored)
    status, error, code = "pending", "", attempt.code
    if attempt.failure:
        status = "rejected" if attempt.stage == "guard" else "failed"
        error = f"{attempt.stage}: {attempt.failure}"
        # Without an edit that applied, the child's code is its parent's.
        code = attempt.code or parent.code
    row = rows.program_row(
        ctx.run_id, task, ctx.agents.label, code, attempt.edit, idea, retries, status, error
    )
    program = ctx.store.add_program(row, rec.key, attempt.verdicts, session.call_keys)
    if attempt.failure:
        return Outcome(rec.key, stored_id(program), status, error=error)
    return evaluate(ctx, program, rec.key, rec.seq)


def _resume_stored(ctx: ChildContext, rec: TaskRecord, program_id: int) -> Outcome:
    program = ctx.store.get_program(program_id)
    if program.status == "pending":
        return evaluate(ctx, program, rec.key, rec.seq)
    # Failed before evaluation, just before the crash: only its commit is missing.
    return Outcome(rec.key, program_id, program.status, error=program.error)


def _session(ctx: ChildContext, rec: TaskRecord, task: Task, resumed: bool) -> AgentSession:
    # A task redone after a kill asks the same keys again: a key whose reply the killed
    # session stored gets that reply, unasked, and its calls belong to the same child.
    agents, earlier = ctx.agents, []
    if resumed:
        earlier = rows.keys_of_task(ctx.store.call_keys(ctx.run_id), rec.seq)
        mine = set(earlier)
        calls = [c for c in ctx.store.llm_calls(ctx.run_id) if c.request_key in mine]
        agents = ctx.agents.reusing(stored_replies(calls))
    return AgentSession(
        task,
        rec.seq,
        ctx.env.task_description(ctx.variant),
        views=ctx.views,
        agents=agents,
        stop=ctx.stop,
        meter=ctx.meter,
        store=ctx.store,
        run_id=ctx.run_id,
        seed=ctx.config.seed,
        earlier_keys=earlier,
    )


def _fast_catcher(
    ctx: ChildContext,
    rec: TaskRecord,
    session: AgentSession,
    proposal: Proposal,
    parent: ProgramView,
    stored: set[int],
) -> tuple[Candidate, str, int]:
    """Attempts until one passes the edit, the static guards and the smoke check, or the
    retries run out; each failed attempt is stored (unless ``stored`` has its number: a
    resumed task's) and its error sent back in a fix prompt. A failure that is not the
    program's (the model call's, the machinery's) ends the child: no model is asked to fix
    it. Returns the last attempt, the idea the child implements, and the number of retries."""
    reply = proposal.reply
    # What the child implements: the strategy's idea, unless a fix replaced it.
    idea = proposal.idea
    n = 0
    while True:
        ctx.stop.check()
        attempt = _attempt(ctx, rec.seq, parent.code, reply)
        if not attempt.failure:
            return attempt, idea, n
        if n not in stored:
            ctx.store.add(
                rows.attempt_row(
                    ctx.run_id, rec.key, n, attempt.code, attempt.stage, attempt.failure
                )
            )
        if n >= ctx.config.n_fast or attempt.stage in ("agent", "infra"):
            return attempt, idea, n
        n += 1
        fix = prompts.FixContext(
            task=session.task_description,
            objective=prompts.format_objective(ctx.env.objective(ctx.variant)),
            idea=idea,
            reply=reply.text,
            error=attempt.failure,
            code=parent.code,
        )
        system, prompt = prompts.fix_messages(fix, ctx.config.prompt_dir, ctx.config.env)
        # A meta child's retries keep implementing the same idea.
        reply = session.ask(
            "fix", system, prompt, idea=proposal.idea or None, error=attempt.failure
        )
        if proposal.idea:
            idea = edits.restated_idea(reply.text) or idea


def _attempt(ctx: ChildContext, seq: int, parent_code: str, reply: AgentReply) -> Candidate:
    """Apply ``reply`` to the parent, then the static guards, then the smoke check."""
    if reply.error or not reply.text.strip():
        failure = " ".join((reply.error or "the agent returned an empty reply").split())
        # Which call failed: an idea stage's failure is no implementation's.
        purpose = reply.calls[-1].purpose if reply.calls else ""
        return Candidate(
            failure=f"{purpose} call: {failure}" if purpose else failure, stage="agent"
        )
    try:
        applied = edits.apply_reply(parent_code, reply.text)
    except EditError as exc:
        return Candidate(failure=str(exc), stage="edit")
    reference = ctx.views.get(ctx.reference_id).code
    found = static_verdicts(
        ctx.guards, applied.code, reference, ctx.env, ctx.variant, ctx.evaluator.evaluate
    )
    verdicts = [rows.verdict_row(ctx.run_id, 0, v, "static") for v in found]
    edited = Candidate(applied.code, applied.edit, verdicts)
    bad = [v for v in verdicts if not v.passed]
    if bad:
        return replace(edited, failure=describe_verdicts(bad), stage="guard")
    smoke = ctx.evaluator.evaluate(ctx.job(applied.code, "smoke", seq))
    ctx.stop.check()
    if infrastructure(smoke):
        return replace(edited, failure=" ".join(describe_outcome(smoke).split()), stage="infra")
    if not smoke.ok:
        return replace(edited, failure=describe_outcome(smoke), stage="smoke")
    return edited


# How the evaluators report a failure of their own machinery rather than the program's.
INFRA_ERRORS = (
    "sandbox failure",
    "the worker's outcome is malformed",
    "the job is not JSON-serialisable",
    "the actor's outcome is malformed",
)


def infrastructure(outcome: EvalOutcome) -> bool:
    """Whether ``outcome`` failed through no fault of the program (a lost worker, a broken
    sandbox), so it is never shown to a model as its program's error."""
    return outcome.status == "worker-lost" or outcome.error.startswith(INFRA_ERRORS)


def evaluate(
    ctx: ChildContext, program: Program, task_key: str | None, seq: int | None = None
) -> Outcome:
    """The full evaluation of a stored program, judged by the result guards and the
    environment; ``task_key`` and ``seq`` are None for the reference program."""
    program_id = stored_id(program)
    # Seeded by the task's number, not the program's id: ids follow the order in which
    # children finish proposing, which the number of workers changes.
    n = seq if seq is not None else program_id
    outcome = ctx.evaluator.evaluate(ctx.job(program.code, "full", n))
    ctx.stop.check()
    assessment, verdicts, status = _judge(ctx, program, outcome)
    error = "" if assessment.valid else assessment.reason
    evaluation = rows.evaluation_row(ctx.run_id, program_id, outcome, assessment)
    return Outcome(task_key or "", program_id, status, assessment, evaluation, verdicts, error)


def _judge(
    ctx: ChildContext, program: Program, outcome: EvalOutcome
) -> tuple[Assessment, list[VerdictRecord], str]:
    if infrastructure(outcome):
        reason = "infra: " + " ".join(describe_outcome(outcome).split())
        return Assessment(valid=False, reason=reason), [], "failed"
    if not outcome.ok:
        return Assessment(valid=False, reason=describe_outcome(outcome)), [], "failed"
    try:
        assessment, found = assess_outcome(ctx.env, ctx.variant, ctx.guards, program.code, outcome)
    except EnvironmentFault as exc:  # the plugin's bug: kept apart from candidate failures
        return Assessment(valid=False, reason=f"infra: {exc}"), [], "env-error"
    verdicts = [rows.verdict_row(ctx.run_id, stored_id(program), v, "result") for v in found]
    return assessment, verdicts, "valid" if assessment.valid else "invalid"
