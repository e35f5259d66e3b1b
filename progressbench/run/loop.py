"""The run loop: issue tasks, wait for children, commit their results.

The main thread owns the strategy (``next_tasks``/``observe``) and every commit of its state;
worker threads run one child each through ``progressbench.run.child``. Every issued task is
stored with the strategy state that issued it, every child's code as soon as it exists, and
every result in one transaction with the state after observing it, so ``--resume`` after a
``kill -9`` redoes exactly the unfinished tasks: nothing lost, nothing evaluated twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from progressbench import __version__, plugins
from progressbench.contracts.agent import AgentUnavailable
from progressbench.contracts.environment import Environment
from progressbench.contracts.strategy import Strategy, StrategyContext, Task
from progressbench.errors import ReferenceInvalid, RunFailed
from progressbench.run import child, packages, prompts, rows, source, stages
from progressbench.run.agents import AgentPool
from progressbench.run.child import ChildContext, Outcome
from progressbench.run.config import RunConfig
from progressbench.run.counters import Stats
from progressbench.run.session import CostCapReached, CostMeter, ProgramViews, StopFlag
from progressbench.run.stages import check_variant, default_workers, last_line, pick_guards
from progressbench.store.database import Store
from progressbench.store.tables import Run, TaskRecord, stored_id

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
        self.variant = check_variant(self.env, config)
        self.env.check_options(config.env_options)
        self.objective = self.env.objective(self.variant)
        self.resources = self.env.resources(self.variant)
        self.strategy_cls: type[Strategy] = plugins.get("strategies", config.strategy)
        self.strategy_cls.check_options(config.strategy_options)
        self.guards = pick_guards(self.env, self.variant, config.guards)
        self.reference_code = (
            "" if run else source.reference_code(config, self.env, self.variant, store)
        )
        prompts.check_prompt_dir(config.prompt_dir, config.env, self.strategy_cls)
        self.workers = config.workers or default_workers(self.resources.cpus)
        # Built here, started in execute: a bad evaluator option fails before any run row.
        self.evaluator = stages.make_evaluator(self.env, self.variant, self.workers, config)
        # Last: it tells the user which agent runs, which is noise if the config is bad.
        self.agents = AgentPool(config, say)
        for agent in self.agents.agents:
            agent.bind(store)
        self.run = run
        self.views = ProgramViews(store, self.env)
        # (monotonic start, wall seconds of earlier sessions of this run), set by execute.
        self._wall: tuple[float, float] = (time.monotonic(), 0.0)
        self.meter = CostMeter(config.max_cost)
        self.stats = Stats(meter=self.meter)
        self._stop = StopFlag()
        self._issued = 0

    @property
    def _active(self) -> Run:
        """The run being executed: ``execute`` sets it before anything else reads it."""
        if self.run is None:
            raise RuntimeError("the run loop has no run yet: execute() creates or resumes one")
        return self.run

    def _create_run(self) -> Run:
        reference = self.reference_code
        run = self.store.create_run(
            env=self.env.name,  # a resolved name (task:PATH) as stable as a registered one
            variant=self.variant,
            strategy=self.config.strategy,
            agent=self.agents.label,
            seed=self.config.seed,
            budget=self.config.budget,
            config_json=self.config.model_copy(update={"env": self.env.name}).model_dump_json(),
            objective_json=self.objective.model_dump_json(),
            version=__version__,
        )
        ref = self.store.add_program(rows.reference_row(run.id, reference), None, [])
        return self.store.update_run(run.id, reference_id=ref.id)

    # --- the loop ------------------------------------------------------------------------
    def execute(self) -> Run:
        packages.start_checked(self.evaluator, self.env)  # before any row is written
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
        evaluator = self.evaluator
        self.store.update_run(run.id, status="running", message="")
        try:
            evaluator.start()
            strategy = self._prepare(resumed)
            final = self._loop(strategy, started, prior_wall)
        except BaseException as exc:
            self._stop.set()
            evaluator.close()
            if isinstance(exc, ReferenceInvalid) and not resumed:
                self.store.discard_run(run.id)  # it never began: nothing to keep or resume
                raise
            wall = prior_wall + time.monotonic() - started
            if isinstance(exc, KeyboardInterrupt):
                self.store.update_run(run.id, status="interrupted", wall_time_s=wall)
            else:
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.store.update_run(run.id, status="failed", message=message, wall_time_s=wall)
            raise
        evaluator.close()
        return final

    def _prepare(self, resumed: bool) -> Strategy:
        """The reference evaluated (once), the strategy built and restored, the counters
        loaded; returns the strategy."""
        run = self.run
        assert run is not None and run.reference_id is not None
        self.context = self._child_context(run.reference_id)
        ref = self.store.get_program(run.reference_id)
        if ref.status == "pending":
            name = source.reference_name(self.config)
            self.say(f"evaluating {name}")
            out = child.evaluate(self.context, ref, None)
            if out.status != "valid":
                # One line that names who can fix it: the user, or the environment's author.
                owner = f" of environment {run.env!r}{stages.plugin_of(run.env)}"
                raise ReferenceInvalid(
                    f"{name}{'' if self.config.program else owner} is not valid here: "
                    f"{last_line(out.error)}"
                )
            self._commit(out, None, run_stats=False)
        ref_view = self.views.put(self.views.build(self.store.get_program(run.reference_id)))
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
                reference_id=run.reference_id,
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
        self._issued = len(self.store.tasks(run.id))
        return strategy

    def _child_context(self, reference_id: int) -> ChildContext:
        """What every child of this run works with, once the evaluator has started."""
        return ChildContext(
            store=self.store,
            run_id=self._active.id,
            reference_id=reference_id,
            config=self.config,
            env=self.env,
            variant=self.variant,
            resources=self.resources,
            guards=self.guards,
            evaluator=self.evaluator,
            agents=self.agents,
            views=self.views,
            stop=self._stop,
            meter=self.meter,
        )

    def _load_stats(self) -> None:
        run = self.store.get_run(self._active.id)
        self.meter.set(self.store.run_cost(run.id))
        self.stats = Stats(
            done=run.n_children,
            valid=run.n_valid,
            failed=run.n_failed,
            retries=run.n_retries,
            best_id=run.best_program_id,
            best_score=run.best_score,
            best_metric=run.best_metric,
            meter=self.meter,
        )
        if self.stats.best_id is None:
            ref = self.views.get(self.context.reference_id)
            self.stats.best_id, self.stats.best_score = ref.id, ref.score
            self.stats.best_metric = ref.metrics.get(self.objective.metric)

    def _loop(self, strategy: Strategy, started: float, prior_wall: float) -> Run:
        run = self._active
        slots = self.workers * (2 if self.agents.online else 1)
        pending = self.store.tasks(run.id, state="issued")
        running: dict[Future[Outcome], str] = {}
        status, message = "finished", ""
        capped = False
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="pb-task")

        def start(rec: TaskRecord, resumed: bool = False) -> None:
            running[pool.submit(child.run_child, self.context, strategy, rec, resumed)] = rec.key

        try:
            for rec in pending:
                start(rec, resumed=True)
            if pending:
                self.say(
                    f"resuming: {len(pending)} unfinished task(s) redone, {self.stats.done} done"
                )
            self._show_progress(started, prior_wall)
            while True:
                free = slots - len(running)
                can_issue = not self._stop.is_set() and not capped and self._issued < run.budget
                if free > 0 and can_issue:
                    new = strategy.next_tasks(min(free, run.budget - self._issued))
                    if new:
                        for rec in self._issue(strategy, new):
                            start(rec)
                if not running:
                    if self.stats.done >= run.budget or self._stop.is_set() or capped:
                        break
                    if can_issue:
                        raise RuntimeError(
                            f"strategy {run.strategy!r} issued no task while nothing was running"
                        )
                    break
                self._collect(running, strategy, started, prior_wall)
                if self.meter.capped and not capped:
                    # Stop issuing; children already being proposed or evaluated finish.
                    capped = True
                    status, message = "stopped", f"cost cap ${self.config.max_cost:g} reached"
        except BaseException:
            # Ctrl-C, SIGTERM or a failure: the children still running are abandoned, never
            # waited for (one may sit in a model call or a training run for minutes, or behind
            # a database lock the interrupted main thread left); closing the evaluator ends
            # their candidates and their tasks stay issued for --resume.
            self._stop.set()
            raise
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

    def _issue(self, strategy: Strategy, tasks: list[Task]) -> list[TaskRecord]:
        first = self._issued + 1
        run_id = self._active.id
        recs = [rows.task_row(run_id, first + i, task) for i, task in enumerate(tasks)]
        self._issued += len(recs)
        self.store.issue_tasks(recs, run_id, {"strategy_state_json": json.dumps(strategy.state())})
        return recs

    def _collect(
        self,
        running: dict[Future[Outcome], str],
        strategy: Strategy,
        started: float,
        prior_wall: float,
    ) -> None:
        """Wait for at least one child and commit what finished."""
        finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
        for fut in finished:
            running.pop(fut)
            try:
                out = fut.result()
            except CostCapReached:
                # The task stays issued; a resume with a higher cap redoes it.
                continue
            except AgentUnavailable as exc:
                # No request can succeed (bad key, unknown model, refused parameters): stop
                # now, as on Ctrl-C; the run is marked failed with the agent's one line, and
                # its unfinished tasks stay issued for a resume once the cause is fixed.
                self._stop.set()
                run_id = self._active.id
                raise RunFailed(
                    f"{exc}; run {run_id} stopped ({self.store.resume_command(run_id)} once fixed)"
                ) from None
            self._commit(out, strategy)
            self._show_progress(started, prior_wall)

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
        view = self.views.put(self.views.build(program, a, rows.task_seq(out.task_key)))
        # Kept current with every result: `show` on a running run, and the wall time of a run
        # killed outright, stay true.
        run_fields: dict[str, Any] = {
            "wall_time_s": self._wall[1] + time.monotonic() - self._wall[0]
        }
        if strategy is not None:
            strategy.observe(view)
            run_fields["strategy_state_json"] = json.dumps(strategy.state())
        if run_stats:
            self.meter.set(self.store.run_cost(self._active.id))
            run_fields.update(self.stats.count(program, out.status, valid, score, metric))
        rows.commit_result(  # a child whose result cannot be stored fails, not the run
            self.store,
            stored_id(program),
            {"status": out.status, "score": score, "metric": metric, "error": out.error},
            out.evaluation,
            out.verdicts,
            out.task_key or None,
            run_fields,
        )
        if out.status == "env-error":
            self._env_error(out.error)

    def _env_error(self, error: str) -> None:
        """Say each environment error; stop the run (resumable) at the limit."""
        error = error.removeprefix("infra: ")
        self.stats.env_errors += 1
        self.say(f"environment error {self.stats.env_errors}/{stages.ENV_ERROR_LIMIT}: {error}")
        if self.stats.env_errors >= stages.ENV_ERROR_LIMIT:
            self._stop.set()
            rid = self._active.id
            raise RunFailed(
                f"{error}; run {rid} stopped ({self.store.resume_command(rid)} once fixed)"
            )

    def _show_progress(self, started: float, prior_wall: float) -> None:
        if self.progress is not None:
            elapsed = prior_wall + time.monotonic() - started
            self.progress.update(self.stats, self._active.budget, elapsed, self.agents.calls)
