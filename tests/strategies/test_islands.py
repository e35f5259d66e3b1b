"""The islands strategy, driven with synthetic programs and a fake proposal session."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from progressbench.contracts.agent import AgentReply
from progressbench.contracts.environment import Feature, Objective
from progressbench.contracts.strategy import ProgramView, StrategyContext, Task
from progressbench.errors import UserError
from progressbench_strategies.islands import Islands, plugin

REF = 1
REF_CODE = "".join(f"value_{i} = {i}\n" for i in range(20))
OBJECTIVE = Objective(metric="sum_radii", direction="maximize")
X_AXIS = [Feature(name="x", low=0.0, high=1.0, bins=10)]


def make(options: dict[str, Any] | None = None, features=None, prompt_dir=None) -> Islands:
    ctx = StrategyContext(
        objective=OBJECTIVE,
        features=features or [],
        seed=7,
        budget=100,
        options=options or {},
        reference_id=REF,
        env="toy",
        prompt_dir=prompt_dir,
    )
    return Islands(ctx)


def reference(valid: bool = True, x: float | None = None) -> ProgramView:
    return ProgramView(
        id=REF,
        code=REF_CODE,
        status="valid" if valid else "invalid",
        valid=valid,
        score=1.0 if valid else None,
        features={"x": x} if x is not None else {},
        telemetry_text="time: 1.0s",
    )


def child(
    pid: int,
    score: float | None,
    island: int = 0,
    parent: int = REF,
    code: str | None = None,
    x: float | None = None,
    idea: str = "",
    error: str = "",
) -> ProgramView:
    valid = score is not None
    return ProgramView(
        id=pid,
        parent_ids=[parent],
        island=island,
        code=code if code is not None else REF_CODE + f"extra = {pid}\n",
        status="valid" if valid else "failed",
        valid=valid,
        score=score,
        features={"x": x} if x is not None else {},
        idea=idea,
        error=error,
    )


def seeded(features=None, **options: Any) -> Islands:
    strategy = make(options, features)
    strategy.observe(reference(x=0.0 if features else None))
    return strategy


class FakeSession:
    """Stands in for the run loop: serves programs and records the agent calls."""

    task_description = "Pack 26 circles in the unit square."

    def __init__(self, task: Task, programs: list[ProgramView], replies: dict[str, AgentReply]):
        self.task = task
        self.programs = {p.id: p for p in programs}
        self.replies = replies
        self.calls: list[dict[str, Any]] = []

    def program(self, program_id: int) -> ProgramView:
        return self.programs[program_id]

    def ask(self, purpose, system, prompt, idea=None) -> AgentReply:
        self.calls.append({"purpose": purpose, "system": system, "prompt": prompt, "idea": idea})
        return self.replies[purpose]


EDITS = "<<<<<<< SEARCH\nvalue_0 = 0\n=======\nvalue_0 = 1\n>>>>>>> REPLACE\n"


# --- options and registration ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"island": 3}, "island"),  # typo of "islands"
        ({"islands": 0}, "islands"),
        ({"exploit_ratio": -0.1}, "exploit_ratio"),
        ({"exploit_ratio": 0, "explore_ratio": 0, "fitness_ratio": 0}, "cannot all be 0"),
        ({"migration_rate": 0}, "migration_rate"),
    ],
)
def test_bad_options_fail_loudly(options, named):
    with pytest.raises(UserError, match=named):
        make(options)


def test_plugin_registers_the_strategy_by_name():
    registered: list[type] = []
    plugin.register_strategies(register=registered.append)
    assert registered == [Islands]
    assert Islands.name == "islands"


# --- archives, grid, duplicates --------------------------------------------------------------
def test_reference_seeds_every_island():
    strategy = seeded(islands=4)
    assert [strategy.members(i) for i in range(4)] == [[REF]] * 4


def test_elite_archive_keeps_the_best_up_to_capacity():
    strategy = seeded(islands=1, archive_size=3)
    for pid, score in [(10, 2.0), (11, 3.0), (12, 4.0)]:
        strategy.observe(child(pid, score))
    assert strategy.elites(0) == [12, 11, 10]  # the reference (1.0) was pushed out
    strategy.observe(child(13, 1.5))
    assert strategy.elites(0) == [12, 11, 10]
    strategy.observe(child(14, 3.5))
    assert strategy.elites(0) == [12, 14, 11]
    strategy.observe(child(15, 3.0))  # ties the worst elite: the incumbent stays
    assert strategy.elites(0) == [12, 14, 11]


def test_grid_keeps_the_best_program_per_cell():
    strategy = seeded(features=X_AXIS, islands=1, archive_size=1)
    strategy.observe(child(10, 2.0, x=0.12))
    strategy.observe(child(11, 1.5, x=0.18))  # same cell, worse: not stored at all
    assert strategy.cells(0)[(1,)] == 10
    assert 11 not in strategy.members(0)
    strategy.observe(child(12, 3.0, x=0.11))  # same cell, better: replaces
    assert strategy.cells(0)[(1,)] == 12
    # Worse than the only elite, but alone in its niche: the grid keeps it.
    strategy.observe(child(13, 0.5, x=0.73))
    assert strategy.cells(0)[(7,)] == 13
    assert strategy.elites(0) == [12]
    # Out-of-range descriptors land in the edge cells.
    strategy.observe(child(14, 0.4, x=5.0))
    strategy.observe(child(15, 9.0, x=-3.0))
    assert strategy.cells(0)[(9,)] == 14
    assert strategy.cells(0)[(0,)] == 15


def test_default_grid_separates_small_edits_from_large_rewrites():
    small = REF_CODE.replace("value_3 = 3", "value_3 = 4")
    large = REF_CODE + "".join(f"more_{i} = {i}\n" for i in range(15))

    def cells_after() -> dict:
        strategy = seeded(islands=1)
        strategy.observe(child(10, 2.0, code=small))
        strategy.observe(child(11, 2.0, code=large))
        return strategy.cells(0)

    cells = cells_after()
    small_cell = next(c for c, p in cells.items() if p == 10)
    large_cell = next(c for c, p in cells.items() if p == 11)
    assert small_cell != large_cell
    assert all(a <= b for a, b in zip(small_cell, large_cell, strict=True))
    assert cells_after() == cells  # deterministic


def test_same_code_is_stored_once_per_island():
    strategy = seeded(islands=2)
    code = REF_CODE + "tweak = 1\n"
    strategy.observe(child(10, 2.0, island=0, code=code))
    strategy.observe(child(11, 5.0, island=0, code=code + "\n"))  # same code, higher score
    strategy.observe(child(12, 5.0, island=1, code=code.replace("\n", "  \r\n")))
    assert 10 in strategy.members(0)
    assert 11 not in strategy.members(0)
    assert 12 in strategy.members(1)  # another island may hold its own copy


def test_failed_children_stay_out_and_their_errors_reach_the_next_prompts():
    strategy = seeded(islands=1, template_children=100)
    trace = 'Traceback (most recent call last):\n  File "x.py"\nZeroDivisionError: division by zero'
    strategy.observe(child(10, None, error=trace))
    assert strategy.members(0) == [REF]
    (task,) = strategy.next_tasks(1)
    session = FakeSession(task, [reference()], {"edit": AgentReply(text=EDITS)})
    strategy.propose(session)
    assert "ZeroDivisionError: division by zero" in session.calls[0]["prompt"]


# --- migration ---------------------------------------------------------------------------------
def test_ring_migration_runs_every_interval_and_moves_a_program_once():
    strategy = seeded(islands=3, children_per_generation=2, migration_interval=2)
    strategy.observe(child(10, 5.0, island=0))
    strategy.observe(child(11, 3.0, island=1))
    strategy.observe(child(12, 4.0, island=2))
    assert [strategy.members(i) for i in range(3)] == [[10, REF], [11, REF], [12, REF]]
    strategy.observe(child(13, 0.5, island=0))  # 4 children = 2 generations: migrate
    assert strategy.members(0) == [10, 12, REF, 13]
    assert strategy.members(1) == [10, 11, REF]
    assert strategy.members(2) == [12, 11, REF]
    for pid, island in [(20, 0), (21, 1), (22, 2)]:
        strategy.observe(child(pid, 0.1 * pid, island=island))
    assert len(strategy.state()["migrations"]) == 3  # nothing more until the next interval
    strategy.observe(child(23, 0.2, island=0))  # second round
    # The island bests already moved once, and arrivals never move on: the next-best
    # programs that have not migrated yet go instead.
    assert 10 not in strategy.members(2)
    assert 12 not in strategy.members(1)
    assert 20 in strategy.members(1)
    assert 21 in strategy.members(2)
    events = strategy.state()["migrations"]
    assert [(e["source"], e["target"]) for e in events] == [(0, 1), (1, 2), (2, 0)] * 2
    assert {e["generation"] for e in events} == {2, 4}


def test_migration_rate_sets_how_many_programs_move():
    strategy = seeded(
        islands=2,
        archive_size=10,
        children_per_generation=8,
        migration_interval=1,
        migration_rate=0.5,
    )
    for pid in range(10, 18):
        strategy.observe(child(pid, float(pid), island=(pid % 2)))
    # Island 0 held 5 programs (4 children + reference): half, rounded up, is 3 slots, and
    # the reference (already everywhere) never takes one.
    moved = [e["program"] for e in strategy.state()["migrations"] if e["source"] == 0]
    assert moved == [16, 14, 12]


def test_migration_interval_zero_disables_migration():
    strategy = seeded(islands=2, children_per_generation=1, migration_interval=0)
    for pid in range(10, 20):
        strategy.observe(child(pid, float(pid), island=pid % 2))
    assert strategy.state()["migrations"] == []
    assert all(pid % 2 == 1 for pid in strategy.members(1) if pid != REF)


# --- tasks: generations, islands, sampling, inspirations -------------------------------------
def failed_result(task: Task, number: int) -> ProgramView:
    """What the loop reports for the ``number``-th task (from 1) when its child failed."""
    return ProgramView(
        id=1000 + number, task=number, parent_ids=[task.parent_id], island=task.island,
        generation=task.generation, code="", status="failed", error="boom",
    )  # fmt: skip


def draw(strategy: Islands, n: int) -> list[Task]:
    """``n`` tasks, each reported back as a failed child as soon as it is issued, so that
    generations complete and the strategy keeps handing tasks out (the archives unchanged)."""
    tasks: list[Task] = []
    while len(tasks) < n:
        new = strategy.next_tasks(n - len(tasks))
        assert new, "the strategy waits although every task it issued came back"
        for task in new:
            tasks.append(task)
            strategy.observe(failed_result(task, len(tasks)))
    return tasks


def test_generations_are_handed_out_across_calls_and_spread_over_islands():
    strategy = seeded(islands=4, children_per_generation=3)
    tasks = strategy.next_tasks(2) + strategy.next_tasks(0) + strategy.next_tasks(5)
    # Generation 3 is chosen from what generation 1 found: it waits for its results.
    assert [t.generation for t in tasks] == [1, 1, 1, 2, 2, 2]
    assert {t.island for t in tasks[:4]} == {0, 1, 2, 3}
    assert all(t.parent_id == REF for t in tasks)
    for number in (3, 1):  # out of order, and not yet all of them
        strategy.observe(failed_result(tasks[number - 1], number))
    assert strategy.next_tasks(5) == []
    strategy.observe(failed_result(tasks[1], 2))
    assert [t.generation for t in strategy.next_tasks(5)] == [3, 3, 3]  # 4 waits for 2


def test_results_are_taken_in_by_generation_in_task_order_whatever_their_arrival():
    """Two children of equal score in one niche and an archive of one: the earlier task's
    child wins, in whichever order the workers finished them (taken in on arrival, the first
    to arrive won)."""
    for arrival in ((0, 1), (1, 0)):
        strategy = seeded(islands=1, archive_size=1, children_per_generation=2)
        tasks = strategy.next_tasks(2)
        for i in arrival:
            view = child(10 + i, 5.0, code=REF_CODE + f"x = {i}\n")
            strategy.observe(view.model_copy(update={"task": i + 1, "generation": 1}))
        assert strategy.elites(0) == [REF]  # held: generation 3 is not chosen yet
        assert [t.generation for t in strategy.next_tasks(3)] == [2, 2, 3]
        assert strategy.elites(0) == [10], arrival
        assert tasks[0].generation == 1


def _populated(features=None, **options: Any) -> Islands:
    strategy = seeded(features, islands=1, **options)
    for pid in range(10, 40):
        strategy.observe(child(pid, float(pid % 17), x=(pid % 10) / 10 + 0.05))
    return strategy


def test_sampling_ratios_are_roughly_honoured():
    strategy = _populated(exploit_ratio=0.6, explore_ratio=0.3, fitness_ratio=0.1)
    counts = Counter(t.meta["sampling"] for t in draw(strategy, 3000))
    assert counts["exploit"] / 3000 == pytest.approx(0.6, abs=0.04)
    assert counts["explore"] / 3000 == pytest.approx(0.3, abs=0.04)
    assert counts["fitness"] / 3000 == pytest.approx(0.1, abs=0.03)


def test_exploitation_draws_only_elites():
    strategy = _populated(archive_size=5, exploit_ratio=1, explore_ratio=0, fitness_ratio=0)
    parents = {t.parent_id for t in draw(strategy, 300)}
    assert parents == set(strategy.elites(0))


def test_exploration_draws_across_niches_not_just_elites():
    strategy = _populated(
        features=X_AXIS, archive_size=3, exploit_ratio=0, explore_ratio=1, fitness_ratio=0
    )
    parents = {t.parent_id for t in draw(strategy, 500)}
    assert parents == set(strategy.cells(0).values())
    assert not parents <= set(strategy.elites(0))


def test_fitness_weighting_favours_better_programs():
    strategy = _populated(exploit_ratio=0, explore_ratio=0, fitness_ratio=1)
    ranked = strategy.members(0)
    counts = Counter(t.parent_id for t in draw(strategy, 3000))
    assert counts[ranked[0]] > counts[ranked[len(ranked) // 2]] > counts[ranked[-1]]


def test_invalid_reference_falls_back_to_the_reference_as_parent():
    strategy = make({"islands": 2})
    strategy.observe(reference(valid=False))
    tasks = strategy.next_tasks(4)
    assert {t.parent_id for t in tasks} == {REF}
    assert all(t.inspiration_ids == [] for t in tasks)


def test_inspirations_come_from_the_top_and_the_nearest_cells():
    strategy = seeded(
        X_AXIS,
        islands=1,
        archive_size=2,
        exploit_ratio=1,
        explore_ratio=0,
        fitness_ratio=0,
        top_inspirations=1,
        neighbour_inspirations=1,
    )
    strategy.observe(child(10, 9.0, x=0.05))  # cell 0, best
    strategy.observe(child(11, 8.0, x=0.95))  # cell 9, second
    strategy.observe(child(12, 1.0, x=0.15))  # cell 1, next to 10
    strategy.observe(child(13, 0.5, x=0.55))  # cell 5, nearest to 11
    expected = {10: [11, 12], 11: [10, 13]}
    tasks = strategy.next_tasks(50)
    assert {t.parent_id for t in tasks} == {10, 11}
    for task in tasks:
        assert task.inspiration_ids == expected[task.parent_id]


# --- prompting -----------------------------------------------------------------------------------
def test_template_prompting_then_meta_prompting_after_the_threshold():
    strategy = seeded(template_children=3)
    modes = [t.mode for t in strategy.next_tasks(2) + strategy.next_tasks(3)]
    assert modes == ["template", "template", "template", "meta", "meta"]
    assert "meta" in strategy.describe()


def test_template_task_asks_for_one_edit():
    strategy = seeded(template_children=5)
    (task,) = strategy.next_tasks(1)
    session = FakeSession(task, [reference()], {"edit": AgentReply(text=EDITS)})
    proposal = strategy.propose(session)
    assert [c["purpose"] for c in session.calls] == ["edit"]
    assert REF_CODE in session.calls[0]["prompt"]
    assert proposal.reply.text == EDITS
    assert proposal.idea == ""


def test_meta_task_asks_for_an_idea_then_its_implementation():
    strategy = seeded(template_children=0)
    (task,) = strategy.next_tasks(1)
    before = json.dumps(strategy.state())
    idea = "Place the circles on a hexagonal lattice and shrink the border ring."
    replies = {"idea": AgentReply(text=idea + "\n"), "implement": AgentReply(text=EDITS)}
    session = FakeSession(task, [reference()], replies)
    proposal = strategy.propose(session)
    first, second = session.calls
    assert (first["purpose"], second["purpose"]) == ("idea", "implement")
    assert "time: 1.0s" in first["prompt"]  # the parent's telemetry
    assert "No ideas have been tested on this island yet." in first["prompt"]
    assert second["idea"] == idea
    assert idea in second["prompt"] and REF_CODE in second["prompt"]
    assert "SEARCH" in second["system"]
    assert proposal.idea == idea
    assert proposal.reply.text == EDITS
    # Proposing runs on worker threads: it must leave the strategy untouched.
    assert json.dumps(strategy.state()) == before


def test_meta_task_without_an_idea_is_a_failure_not_an_implementation():
    strategy = seeded(template_children=0)
    (task,) = strategy.next_tasks(1)
    replies = {"idea": AgentReply(text="  "), "implement": AgentReply(text=EDITS)}
    session = FakeSession(task, [reference()], replies)
    proposal = strategy.propose(session)
    assert [c["purpose"] for c in session.calls] == ["idea"]
    assert proposal.reply.error


def test_ideas_and_their_outcomes_inform_later_idea_prompts():
    strategy = seeded(islands=1, template_children=0, idea_history=2)
    strategy.observe(child(10, 4.0, idea="Use a hexagonal lattice."))
    strategy.observe(
        child(11, None, idea="Divide by the gap.", error="Traceback\nZeroDivisionError: boom")
    )
    tried = strategy.next_tasks(1)[0].meta["tried"]
    assert "[failed: ZeroDivisionError: boom] Divide by the gap." in tried
    for pid, score in [(12, 0.5), (13, 3.75), (14, 0.25), (15, 0.5)]:
        strategy.observe(child(pid, score, parent=10, idea=f"Minor tweak {pid}."))
    tried = strategy.next_tasks(1)[0].meta["tried"]
    # The two most effective ideas and the two latest are shown, with their effects.
    assert "[+3, new island best] Use a hexagonal lattice." in tried
    assert "[-0.25] Minor tweak 13." in tried
    assert "[-3.75] Minor tweak 14." in tried
    assert "[-3.5] Minor tweak 15." in tried
    assert "Minor tweak 12." not in tried and "Divide by the gap." not in tried
    assert "Best score on this island so far: 4" in tried


def test_ideas_override_their_template_per_environment(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "idea.txt").write_text("CUSTOM for $task | $tried")
    strategy = make({"template_children": 0}, prompt_dir=str(tmp_path))
    strategy.observe(reference())
    (task,) = strategy.next_tasks(1)
    replies = {"idea": AgentReply(text="An idea."), "implement": AgentReply(text=EDITS)}
    session = FakeSession(task, [reference()], replies)
    strategy.propose(session)
    assert session.calls[0]["prompt"].startswith("CUSTOM for Pack 26 circles")


# --- resume --------------------------------------------------------------------------------------
def _finish(tasks: list[Task], first_id: int) -> list[ProgramView]:
    """Deterministic synthetic outcomes for ``tasks``, some of them failures."""
    results = []
    for offset, task in enumerate(tasks):
        pid = first_id + offset
        score = None if pid % 7 == 0 else (pid * 37 % 23) / 4 + task.parent_id % 3
        idea = f"idea {pid}" if task.mode == "meta" else ""
        code = REF_CODE + "".join(f"line_{k} = {k}\n" for k in range(pid % 9)) + f"p = {pid}\n"
        results.append(
            child(
                pid,
                score,
                island=task.island,
                parent=task.parent_id,
                code=code,
                idea=idea,
                error="" if score is not None else "RuntimeError: nope",
            )
        )
    # Out of order, as concurrent evaluations finish.
    return results[::-1]


def _drive(strategy: Islands, rounds: int, first_id: int) -> tuple[list[Task], int]:
    issued: list[Task] = []
    for _ in range(rounds):
        tasks = strategy.next_tasks(3)
        issued.extend(tasks)
        for program in _finish(tasks, first_id):
            strategy.observe(program)
        first_id += len(tasks)
    return issued, first_id


def test_state_round_trips_through_json_and_restore_repeats_the_same_choices():
    options = {
        "islands": 3,
        "children_per_generation": 4,
        "migration_interval": 1,
        "template_children": 6,
        "archive_size": 5,
    }
    unbroken = make(options)
    unbroken.observe(reference())
    _, next_id = _drive(unbroken, 8, 100)
    in_flight = unbroken.next_tasks(2)  # handed out before the "crash"
    saved = json.loads(json.dumps(unbroken.state()))

    resumed = make(options)
    resumed.restore(saved)
    assert resumed.state() == saved
    assert resumed.describe() == unbroken.describe()

    for strategy in (unbroken, resumed):
        for program in _finish(in_flight, next_id):
            strategy.observe(program)
    after_unbroken, _ = _drive(unbroken, 8, next_id + 2)
    after_resumed, _ = _drive(resumed, 8, next_id + 2)
    assert after_resumed == after_unbroken
    assert resumed.state() == unbroken.state()
    assert unbroken.state()["migrations"]  # the scenario did exercise migration


def test_restore_refuses_a_state_from_a_different_island_count():
    strategy = seeded(islands=3)
    with pytest.raises(UserError):
        make({"islands": 2}).restore(strategy.state())


def test_describe_summarises_islands_grid_and_migration():
    strategy = seeded(islands=2, children_per_generation=2, migration_interval=1)
    strategy.next_tasks(2)
    strategy.observe(child(10, 3.0, island=0))
    strategy.observe(child(11, 2.0, island=1))
    text = strategy.describe()
    assert "2 islands" in text
    assert "island 0" in text and "island 1" in text and "best 3" in text
    assert "cells filled" in text
    assert "2 programs sent" in text
