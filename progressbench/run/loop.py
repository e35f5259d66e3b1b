"""The run loop: strategy -> agent -> edits -> guards -> smoke -> evaluation -> store.

The main thread owns the strategy (``next_tasks``/``observe``) and every commit of its state;
worker threads propose, check and evaluate one child each. Every issued task is stored with the
strategy state that issued it, every child's code as soon as it exists, and every result in one
transaction with the state after observing it, so ``--resume`` after a ``kill -9`` redoes
exactly the unfinished tasks: nothing lost, nothing evaluated twice.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from progressbench import __version__, plugins
from progressbench.contracts.agent import Agent, AgentReply, AgentRequest, LLMCall, Purpose
from progressbench.contracts.environment import Assessment, Environment, Resources
from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Evaluator, Limits
from progressbench.contracts.guard import Guard, Sandbox
from progressbench.contracts.guard import Verdict as GuardVerdict
from progressbench.contracts.strategy import ProgramView, Proposal, Strategy, StrategyContext, Task
from progressbench.errors import EditError, UserError
from progressbench.run import edits, prompts
from progressbench.run.agents import AgentPool
from progressbench.run.config import RunConfig
from progressbench.store.database import (
    Attempt,
    Evaluation,
    LLMCallRecord,
    Program,
    Run,
    Store,
    TaskRecord,
    Verdict,
    code_hash,
)


class CostCapReached(Exception):
    """The run's LLM spend reached --max-cost; the task in hand is abandoned unstored."""


class Interrupted(Exception):
    """The run is stopping (Ctrl-C); a worker thread's result must not be recorded."""


@dataclass
class Outcome:
    """What a worker thread hands back to the main thread for one task."""

    task_key: str
    program_id: int
    status: str
    assessment: Assessment | None = None
    evaluation: Evaluation | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    error: str = ""


@dataclass
class Stats:
    done: int = 0
    valid: int = 0
    failed: int = 0
    retries: int = 0
    cost: float = 0.0
    best_id: int | None = None
    best_score: float | None = None
    best_metric: float | None = None


Reporter = Callable[[str], None]


class RunLoop:
    def __init__(
        self,
        store: Store,
        config: RunConfig,
        run: Run | None = None,
        say: Reporter = print,
        progress: Any = None,
    ):
        self.store = store
        self.config = config
        self.say = say
        self.progress = progress
        self.env: Environment = plugins.get_environment(config.env)
        variant = self.env.pick_variant(config.variant)
        if variant not in self.env.variants:
            raise UserError(
                f"environment {config.env!r} has no variant {variant!r} "
                f"(available: {', '.join(self.env.variants)})"
            )
        why = self.env.unavailable(variant)
        if why:
            raise UserError(f"variant {variant!r} of {config.env!r} cannot run here: {why}")
        self.variant = variant
        self.objective = self.env.objective(variant)
        self.resources = self.env.resources(variant)
        self.strategy_cls: type[Strategy] = plugins.get("strategies", config.strategy)
        _check_strategy_options(self.strategy_cls, config.strategy_options)
        self.guards = self._pick_guards()
        self.evaluator_cls: type[Evaluator] = plugins.get("evaluators", config.evaluator)
        # Last: it tells the user which agent runs, which is noise if the config is bad.
        self.agents = AgentPool(config, say)
        for agent in self.agents.agents:
            agent.bind(store)
        self.workers = config.workers or max(
            1, int((os.cpu_count() or 1) // max(self.resources.cpus, 1))
        )
        self.run = run
        self.views: dict[int, ProgramView] = {}
        # (monotonic start, wall seconds of earlier sessions of this run), set by execute.
        self._wall: tuple[float, float] = (time.monotonic(), 0.0)
        self.stats = Stats()
        self._stop = threading.Event()
        self._cost_lock = threading.Lock()

    # --- set-up --------------------------------------------------------------------------
    def _pick_guards(self) -> list[Guard]:
        return pick_guards(self.env, self.variant, self.config.guards)

    def _limits(self, mode: str) -> Limits:
        return limits_for(self.resources, self.config, mode)

    def _create_run(self) -> Run:
        reference = self.env.baseline(self.variant)
        run = self.store.create_run(
            env=self.config.env,
            variant=self.variant,
            strategy=self.config.strategy,
            agent=self.agents.label,
            seed=self.config.seed,
            budget=self.config.budget,
            config_json=self.config.model_dump_json(),
            objective_json=self.objective.model_dump_json(),
            version=__version__,
        )
        ref = self.store.add_program(
            Program(
                run_id=run.id,
                is_reference=True,
                code=reference,
                code_hash=code_hash(reference),
                mode="reference",
            ),
            None,
            [],
        )
        return self.store.update_run(run.id, reference_id=ref.id)

    # --- the loop ------------------------------------------------------------------------
    def execute(self) -> Run:
        resumed = self.run is not None
        if self.run is None:
            self.run = self._create_run()
        run = self.run
        self.say(
            f"run {run.id}: env {run.env} (variant {run.variant}), strategy {run.strategy}, "
            f"agent {run.agent}, budget {run.budget}, {self.workers} worker(s)"
        )
        started = time.monotonic()
        prior_wall = run.wall_time_s
        self._wall = (started, prior_wall)
        evaluator = self.evaluator_cls(
            self.env, self.variant, self.workers, self.config.evaluator_options
        )
        self.store.update_run(run.id, status="running", message="")
        try:
            evaluator.start()
            self.evaluator = evaluator
            strategy = self._prepare(resumed)
            final = self._loop(strategy, started, prior_wall)
        except KeyboardInterrupt:
            self._stop.set()
            evaluator.close()
            self.store.update_run(
                run.id, status="interrupted", wall_time_s=prior_wall + time.monotonic() - started
            )
            raise
        except BaseException as exc:
            self._stop.set()
            evaluator.close()
            self.store.update_run(
                run.id,
                status="failed",
                message=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                wall_time_s=prior_wall + time.monotonic() - started,
            )
            raise
        evaluator.close()
        return final

    def _prepare(self, resumed: bool) -> Strategy:
        run = self.run
        assert run is not None and run.reference_id is not None
        ref = self.store.get_program(run.reference_id)
        if ref.status == "pending":
            self.say("evaluating the reference program")
            out = self._evaluate(ref, None)
            if out.status != "valid":
                raise UserError(
                    f"the reference program of {run.env!r} is not valid here: {out.error}"
                )
            self._commit(out, None, run_stats=False)
        self.views[ref.id] = self._view(self.store.get_program(ref.id))
        ref_view = self.views[ref.id]
        self.store.update_run(
            run.id,
            reference_score=ref_view.score,
            reference_metric=ref_view.metrics.get(self.objective.metric),
        )
        strategy = self.strategy_cls(
            StrategyContext(
                objective=self.objective,
                features=self.env.features(self.variant),
                seed=self.config.seed,
                budget=self.config.budget,
                workers=self.workers,
                options=self.config.strategy_options,
                reference_id=ref.id,
                env=self.config.env,
                prompt_dir=self.config.prompt_dir,
            )
        )
        state = json.loads(self.store.get_run(run.id).strategy_state_json or "{}")
        if resumed and state:
            strategy.restore(state)
        else:
            strategy.observe(ref_view)
        self._load_stats()
        self._strategy = strategy
        self._issued_count = len(self.store.tasks(run.id))
        return strategy

    def _load_stats(self) -> None:
        run = self.store.get_run(self.run.id)
        self.stats = Stats(
            done=run.n_children,
            valid=run.n_valid,
            failed=run.n_failed,
            retries=run.n_retries,
            cost=self.store.run_cost(run.id),
            best_id=run.best_program_id,
            best_score=run.best_score,
            best_metric=run.best_metric,
        )
        if self.stats.best_id is None:
            ref = self.views[run.reference_id]
            self.stats.best_id, self.stats.best_score = ref.id, ref.score
            self.stats.best_metric = ref.metrics.get(self.objective.metric)

    def _loop(self, strategy: Strategy, started: float, prior_wall: float) -> Run:
        run = self.run
        slots = self.workers * (2 if self.agents.online else 1)
        pending = self.store.tasks(run.id, state="issued")
        running: dict[Future[Outcome], str] = {}
        status, message = "finished", ""
        capped = False
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="pb-task")
        try:
            for rec in pending:
                running[pool.submit(self._work, rec)] = rec.key
            if pending:
                self.say(
                    f"resuming: {len(pending)} unfinished task(s) redone, {self.stats.done} done"
                )
            self._show_progress(started, prior_wall)
            while True:
                n_issued = self._count_issued()
                free = slots - len(running)
                can_issue = not self._stop.is_set() and not capped and n_issued < run.budget
                if free > 0 and can_issue:
                    new = strategy.next_tasks(min(free, run.budget - n_issued))
                    if new:
                        recs = self._issue(strategy, new, n_issued)
                        for rec in recs:
                            running[pool.submit(self._work, rec)] = rec.key
                if not running:
                    if self.stats.done >= run.budget or self._stop.is_set() or capped:
                        break
                    if can_issue:
                        raise RuntimeError(
                            f"strategy {run.strategy!r} issued no task while nothing was running"
                        )
                    break
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    running.pop(fut)
                    try:
                        out = fut.result()
                    except CostCapReached:
                        # The task stays issued; a resume with a higher cap redoes it.
                        continue
                    self._commit(out, strategy)
                    self._show_progress(started, prior_wall)
                if self._cost_capped() and not capped:
                    # Stop issuing; children already being proposed or evaluated finish.
                    capped = True
                    status, message = "stopped", f"cost cap ${self.config.max_cost:g} reached"
        finally:
            pool.shutdown(wait=not self._stop.is_set(), cancel_futures=True)
        if status == "stopped":
            self.say(f"stopping: {message}")
        return self.store.update_run(
            run.id,
            status=status,
            message=message,
            wall_time_s=prior_wall + time.monotonic() - started,
            cost_usd=self.stats.cost,
        )

    def _count_issued(self) -> int:
        return self._issued_count

    def _issue(self, strategy: Strategy, tasks: list[Task], n_issued: int) -> list[TaskRecord]:
        recs = []
        for i, task in enumerate(tasks):
            seq = n_issued + i + 1
            recs.append(
                TaskRecord(
                    key=f"{self.run.id}:{seq}",
                    run_id=self.run.id,
                    seq=seq,
                    task_json=task.model_dump_json(),
                )
            )
        self._issued_count += len(recs)
        self.store.issue_tasks(
            recs, self.run.id, {"strategy_state_json": json.dumps(strategy.state())}
        )
        return recs

    # --- one task, in a worker thread --------------------------------------------------
    def _work(self, rec: TaskRecord) -> Outcome:
        task = Task.model_validate_json(rec.task_json)
        if rec.program_id is not None:
            program = self.store.get_program(rec.program_id)
            if program.status == "pending":
                return self._evaluate(program, rec.key)
            # Failed before evaluation, just before the crash: only its commit is missing.
            return Outcome(rec.key, program.id, program.status, error=program.error)
        session = _Session(self, rec, task)
        parent = self.program_view(task.parent_id)
        proposal: Proposal = self._strategy.propose(session)
        reply = proposal.reply
        # What the child implements: the strategy's idea, unless a fix replaced it.
        idea = proposal.idea
        code, edit_text, verdicts = "", "", []
        attempt = 0
        while True:
            self._check_stop()
            failure, stage = "", ""
            if reply.error or not reply.text.strip():
                failure, stage = reply.error or "the agent returned an empty reply", "agent"
            else:
                try:
                    applied = edits.apply_reply(parent.code, reply.text)
                except EditError as exc:
                    failure, stage = str(exc), "edit"
                else:
                    code, edit_text = applied.code, applied.edit
                    verdicts = self._static_guards(code)
                    bad = [v for v in verdicts if not v.passed]
                    if bad:
                        failure, stage = _describe_verdicts(bad), "guard"
                    else:
                        smoke = self.evaluator.evaluate(
                            EvalJob(
                                program=code,
                                mode="smoke",
                                seed=self._seed(rec.seq),
                                limits=self._limits("smoke"),
                                options=self.config.env_options,
                            )
                        )
                        self._check_stop()
                        if not smoke.ok:
                            failure, stage = _describe_outcome(smoke), "smoke"
            if not failure:
                break
            self.store.add(
                Attempt(
                    run_id=self.run.id,
                    task_key=rec.key,
                    attempt=attempt,
                    code=code,
                    stage=stage,
                    error=failure,
                )
            )
            if attempt >= self.config.n_fast:
                status = "rejected" if stage == "guard" else "failed"
                program = self.store.add_program(
                    self._new_program(
                        rec,
                        task,
                        code or parent.code,
                        edit_text,
                        idea,
                        attempt,
                        status,
                        f"{stage}: {failure}",
                    ),
                    rec.key,
                    verdicts,
                )
                return Outcome(rec.key, program.id, status, error=f"{stage}: {failure}")
            attempt += 1
            code, edit_text, verdicts = "", "", []
            reply = session.ask(
                "fix",
                prompts.template("system", self.config.prompt_dir, self.config.env).substitute(),
                prompts.fix_prompt(failure, parent.code, self.config.prompt_dir, self.config.env),
                # A meta child's retries keep implementing the same idea.
                idea=proposal.idea or None,
                error=failure,
            )
            if proposal.idea:
                idea = edits.restated_idea(reply.text) or idea
        program = self.store.add_program(
            self._new_program(rec, task, code, edit_text, idea, attempt, "pending", ""),
            rec.key,
            verdicts,
        )
        return self._evaluate(program, rec.key)

    def _new_program(
        self,
        rec: TaskRecord,
        task: Task,
        code: str,
        edit_text: str,
        idea: str,
        retries: int,
        status: str,
        error: str,
    ) -> Program:
        return Program(
            run_id=self.run.id,
            parent_ids_json=json.dumps([task.parent_id]),
            inspiration_ids_json=json.dumps(task.inspiration_ids),
            island=task.island,
            generation=task.generation,
            mode=task.mode,
            agent=self.agents.label,
            code=code,
            code_hash=code_hash(code),
            edit=edit_text,
            idea=idea,
            retries=retries,
            status=status,
            error=error,
        )

    def _static_guards(self, code: str) -> list[Verdict]:
        reference = self.views[self.run.reference_id].code
        found = static_verdicts(
            self.guards, code, reference, self.env, self.variant, self.evaluator.evaluate
        )
        return [_verdict_row(self.run.id, 0, v, "static") for v in found]

    def _evaluate(self, program: Program, task_key: str | None) -> Outcome:
        outcome = self.evaluator.evaluate(
            EvalJob(
                program=program.code,
                mode="full",
                seed=self._seed(program.id),
                limits=self._limits("full"),
                options=self.config.env_options,
            )
        )
        self._check_stop()
        verdicts: list[Verdict] = []
        if outcome.ok:
            assessment, found = assess_outcome(
                self.env, self.variant, self.guards, program.code, outcome
            )
            verdicts = [_verdict_row(self.run.id, program.id, v, "result") for v in found]
            status = "valid" if assessment.valid else "invalid"
            error = "" if assessment.valid else assessment.reason
        else:
            assessment = Assessment(valid=False, reason=_describe_outcome(outcome))
            status, error = "failed", assessment.reason
        evaluation = Evaluation(
            run_id=self.run.id,
            program_id=program.id,
            kind="full",
            status=outcome.status,
            valid=assessment.valid,
            score=assessment.score if assessment.valid else None,
            metrics_json=json.dumps(assessment.metrics),
            features_json=json.dumps(assessment.features),
            telemetry_json=json.dumps(assessment.telemetry),
            reason=assessment.reason,
            error=outcome.error,
            stdout=outcome.stdout,
            stderr=outcome.stderr,
            candidate_s=outcome.candidate_s,
            total_s=outcome.total_s,
        )
        return Outcome(task_key or "", program.id, status, assessment, evaluation, verdicts, error)

    # --- results, in the main thread ---------------------------------------------------
    def _commit(self, out: Outcome, strategy: Strategy | None, run_stats: bool = True) -> None:
        a = out.assessment
        valid = out.status == "valid" and a is not None and a.valid
        score = a.score if valid and a else None
        metric = a.metrics.get(self.objective.metric) if valid and a else None
        program = self.store.get_program(out.program_id)
        program.status, program.score, program.metric, program.error = (
            out.status,
            score,
            metric,
            out.error,
        )
        view = self._view(program, a)
        self.views[view.id] = view
        # Kept current with every result: `show` on a running run, and the wall time of a run
        # killed outright, stay true.
        run_fields: dict[str, Any] = {
            "wall_time_s": self._wall[1] + time.monotonic() - self._wall[0]
        }
        if strategy is not None:
            strategy.observe(view)
            run_fields["strategy_state_json"] = json.dumps(strategy.state())
        if run_stats:
            st = self.stats
            st.done += 1
            st.valid += int(valid)
            st.failed += int(out.status in ("failed", "rejected"))
            st.retries += program.retries
            st.cost = self.store.run_cost(self.run.id)
            if valid and score is not None and (st.best_score is None or score > st.best_score):
                st.best_id, st.best_score, st.best_metric = program.id, score, metric
            run_fields.update(
                n_children=st.done,
                n_valid=st.valid,
                n_failed=st.failed,
                n_retries=st.retries,
                cost_usd=st.cost,
                best_program_id=st.best_id,
                best_score=st.best_score,
                best_metric=st.best_metric,
            )
        self.store.commit_result(
            program.id,
            {"status": out.status, "score": score, "metric": metric, "error": out.error},
            out.evaluation,
            out.verdicts,
            out.task_key or None,
            run_fields,
        )

    # --- helpers -------------------------------------------------------------------------
    def program_view(self, program_id: int) -> ProgramView:
        if program_id not in self.views:
            self.views[program_id] = self._view(self.store.get_program(program_id))
        return self.views[program_id]

    def _view(self, program: Program, assessment: Assessment | None = None) -> ProgramView:
        if assessment is None:
            assessment = _assessment_from(self.store.evaluation(program.id), program)
        return ProgramView(
            id=program.id,
            parent_ids=program.parent_ids,
            island=program.island,
            generation=program.generation,
            code=program.code,
            status=program.status,
            valid=program.status == "valid",
            score=program.score,
            metrics=assessment.metrics if assessment else {},
            features=assessment.features if assessment else {},
            telemetry_text=self.env.format_telemetry(assessment.telemetry) if assessment else "",
            error=program.error,
            idea=program.idea,
        )

    def _seed(self, n: int) -> int:
        return (self.config.seed * 1_000_003 + n) % (2**31)

    def _check_stop(self) -> None:
        if self._stop.is_set():
            raise Interrupted()

    def _cost_capped(self) -> bool:
        return self.config.max_cost is not None and self.stats.cost >= self.config.max_cost

    def _show_progress(self, started: float, prior_wall: float) -> None:
        if self.progress is not None:
            self.progress.update(
                self.stats, self.run.budget, prior_wall + time.monotonic() - started
            )

    def record_calls(self, calls: list[LLMCall], key: str) -> None:
        if not calls:
            return
        self.store.add_all(
            [
                LLMCallRecord(
                    run_id=self.run.id,
                    request_key=key,
                    agent=c.agent,
                    model=c.model,
                    purpose=c.purpose,
                    messages_json=json.dumps(c.messages),
                    response=c.response,
                    prompt_tokens=c.prompt_tokens,
                    completion_tokens=c.completion_tokens,
                    cost_usd=c.cost_usd,
                    latency_s=c.latency_s,
                    error=c.error,
                )
                for c in calls
            ]
        )
        spent = sum(c.cost_usd for c in calls)
        if spent:
            with self._cost_lock:
                self.stats.cost += spent


class _Session:
    """The ProposalSession a strategy drives while proposing one child."""

    def __init__(self, loop: RunLoop, rec: TaskRecord, task: Task):
        self.loop = loop
        self.rec = rec
        self.task = task
        self.task_description = loop.env.task_description(loop.variant)
        self._asked = 0

    def program(self, program_id: int) -> ProgramView:
        return self.loop.program_view(program_id)

    def ask(
        self,
        purpose: Purpose,
        system: str,
        prompt: str,
        idea: str | None = None,
        error: str | None = None,
    ) -> AgentReply:
        loop = self.loop
        loop._check_stop()
        if loop._cost_capped():
            raise CostCapReached()
        self._asked += 1
        key = f"{self.rec.seq}:{purpose}:{self._asked}"
        request = AgentRequest(
            purpose=purpose,
            system=system,
            prompt=prompt,
            parent_code=loop.program_view(self.task.parent_id).code,
            seed=(loop.config.seed * 7_919 + self.rec.seq * 104_729 + self._asked) % (2**31),
            idea=idea,
            error=error,
            key=key,
        )
        agent: Agent = loop.agents.pick(request.seed)
        try:
            reply = agent.reply(request)
        except Exception as exc:  # an agent bug becomes a recorded failure, not a dead run
            reply = AgentReply(error=f"agent {agent.label} failed: {exc}")
        loop.record_calls(reply.calls, key)
        return reply


# --- the stages a candidate passes, shared with ``progressbench verify`` ------------------
def pick_guards(env: Environment, variant: str, names: list[str] | None) -> list[Guard]:
    """The guards a run applies: those ``names`` lists, or every guard enabled by default;
    either way only those that apply to the environment."""
    found = {name: reg.obj for name, reg in plugins.registry("guards").items()}
    if names is not None:
        unknown = [g for g in names if g not in found]
        if unknown:
            raise UserError(f"unknown guard {unknown[0]!r} (available: {', '.join(sorted(found))})")
        chosen = [found[g] for g in names]
    else:
        chosen = [g for g in found.values() if g.default_enabled]
    return [g for g in chosen if g.applies(env, variant)]


def limits_for(resources: Resources, config: RunConfig, mode: str) -> Limits:
    seconds = resources.smoke_seconds if mode == "smoke" else resources.seconds
    if config.timeout_s:
        # The user's limit replaces the full evaluation's and caps the smoke check's.
        seconds = config.timeout_s if mode == "full" else min(seconds, config.timeout_s)
    sizes = {"file_mb": resources.file_mb, "disk_mb": config.disk_mb or resources.disk_mb}
    return Limits(
        seconds=seconds,
        memory_mb=config.memory_mb or resources.memory_mb,
        **{k: v for k, v in sizes.items() if v is not None},
    )


def static_verdicts(
    guards: list[Guard],
    code: str,
    reference: str,
    env: Environment,
    variant: str,
    sandbox: Sandbox,
) -> list[GuardVerdict]:
    """The verdicts of the static guards; ``sandbox`` goes to those that run candidate code."""
    out = []
    for guard in guards:
        if guard.stage != "static":
            continue
        try:
            if guard.uses_sandbox:
                v = guard.check_program(code, reference, env, variant, sandbox=sandbox)
            else:
                v = guard.check_program(code, reference, env, variant)
        except Exception as exc:  # a broken guard must not pass a program silently
            v = guard.reject(f"guard crashed: {exc}", rule="guard-error")
        out.append(v)
    return out


def assess_outcome(
    env: Environment, variant: str, guards: list[Guard], code: str, outcome: EvalOutcome
) -> tuple[Assessment, list[GuardVerdict]]:
    """The trusted assessment of a successful evaluation, after the result guards: any
    failing verdict makes it invalid, with the guards' reasons."""
    try:
        assessment = env.assess(outcome.raw or {}, outcome.verified, variant)
    except Exception as exc:  # hostile output must not crash the platform
        assessment = Assessment(valid=False, reason=f"assessment failed: {exc}")
    verdicts = []
    for guard in guards:
        if guard.stage != "result":
            continue
        try:
            v = guard.check_result(code, outcome, assessment, env, variant)
        except Exception as exc:
            v = guard.reject(f"guard crashed: {exc}", rule="guard-error")
        verdicts.append(v)
    bad = [v for v in verdicts if not v.passed]
    if bad and assessment.valid:
        assessment = assessment.model_copy(
            update={"valid": False, "reason": _describe_verdicts(bad)}
        )
    return assessment, verdicts


def _check_strategy_options(cls: type[Strategy], options: dict[str, Any]) -> None:
    """Fail on a bad strategy option before a run is created, not after."""
    from pydantic import ValidationError

    from progressbench.run.config import describe_validation_error

    try:
        cls.Options.model_validate(options)
    except ValidationError as exc:
        msg = describe_validation_error(exc).replace("invalid config: ", "", 1)
        raise UserError(f"invalid option for strategy {cls.name!r}: {msg}") from None


def _assessment_from(ev: Evaluation | None, program: Program) -> Assessment | None:
    if ev is None:
        return None
    return Assessment(
        valid=ev.valid,
        score=ev.score,
        metrics=json.loads(ev.metrics_json),
        features=json.loads(ev.features_json),
        telemetry=json.loads(ev.telemetry_json),
        reason=ev.reason,
    )


def _verdict_row(run_id: str, program_id: int, v: Any, stage: str) -> Verdict:
    # Static verdicts get their program id when the program row is written.
    return Verdict(
        run_id=run_id,
        program_id=program_id,
        guard=v.guard,
        stage=stage,
        passed=v.passed,
        reason=v.reason,
        rule=v.rule,
        line=v.line,
        details_json=json.dumps(v.details),
    )


def _describe_verdicts(bad: list[Verdict]) -> str:
    parts = []
    for v in bad:
        where = f" (line {v.line})" if v.line else ""
        rule = f" [{v.rule}]" if v.rule else ""
        parts.append(f"guard {v.guard}{rule}{where}: {v.reason}")
    return "; ".join(parts)


def _describe_outcome(o: EvalOutcome) -> str:
    text = o.error.strip() or o.stderr.strip()[-2000:] or "(no output)"
    return f"{o.status}: {text}"
