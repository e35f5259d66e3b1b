"""The ``islands`` strategy: island-based quality-diversity search with meta-prompting.

Several islands evolve apart, each keeping an elite archive (its best programs) and a
MAP-Elites grid (the best program per behavioural niche). Every so many generations each
island's best programs move one step around the ring. The first children come from template
prompts; after that each child is a two-stage meta-prompt: an idea in prose informed by the
parent's telemetry and by what the island has already tried, then its implementation.
"""

from __future__ import annotations

import math
import random
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from progressbench import (
    ProgramView,
    Proposal,
    ProposalSession,
    Strategy,
    StrategyContext,
    Task,
    UserError,
    prompts,
)

from . import prompting
from .features import Descriptor, distance
from .island import IdeaRecord, Island, Member, member_hash
from .results import Result, issued_in

# 2: results wait for their generation (``held``, ``taken``); 1 took them in on arrival.
STATE_VERSION = 2
# How much of an idea the island summary keeps: the gist, not the essay.
IDEA_TEXT_LIMIT = 300


class IslandsOptions(BaseModel):
    """Knobs of the islands strategy (``strategy_options`` in the config)."""

    model_config = ConfigDict(extra="forbid")

    islands: int = Field(4, ge=1, description="number of islands")
    archive_size: int = Field(20, ge=1, description="elite archive capacity per island")
    children_per_generation: int = Field(
        10, ge=1, description="branching factor: children proposed per generation"
    )
    template_children: int = Field(
        20, ge=0, description="children proposed with template prompts before meta-prompting"
    )
    exploit_ratio: float = Field(
        0.5, ge=0, description="relative weight of parents drawn uniformly from the elites"
    )
    explore_ratio: float = Field(
        0.2, ge=0, description="relative weight of parents drawn uniformly over grid cells"
    )
    fitness_ratio: float = Field(
        0.3, ge=0, description="relative weight of rank-weighted parents over the island"
    )
    migration_interval: int = Field(
        5, ge=0, description="generations between ring migrations; 0 disables migration"
    )
    migration_rate: float = Field(
        0.1,
        gt=0,
        le=1,
        description="share of an island's archive sent per migration (at least one program)",
    )
    top_inspirations: int = Field(2, ge=0, description="inspirations from the island's top")
    neighbour_inspirations: int = Field(
        1, ge=0, description="inspirations from the nearest occupied grid cells"
    )
    grid_bins: int = Field(
        10, ge=1, description="bins per axis of the default grid (environments without features)"
    )
    idea_history: int = Field(
        8, ge=0, description="most recent and most effective ideas kept per island for prompts"
    )

    @model_validator(mode="after")
    def _some_sampling(self) -> IslandsOptions:
        if self.exploit_ratio + self.explore_ratio + self.fitness_ratio <= 0:
            raise ValueError("exploit_ratio, explore_ratio and fitness_ratio cannot all be 0")
        return self


class Islands(Strategy):
    name = "islands"
    description = (
        "Island-based quality-diversity: elite archives and MAP-Elites grids per island, ring "
        "migration, template prompts first, then two-stage meta-prompting (idea, implement)."
    )
    Options: ClassVar[type[BaseModel]] = IslandsOptions
    options: IslandsOptions

    def __init__(self, ctx: StrategyContext):
        super().__init__(ctx)
        opts = self.options
        self._descriptor = Descriptor(ctx.features, opts.grid_bins)
        self._rng = random.Random(ctx.seed)
        self._islands = [Island(opts.archive_size) for _ in range(opts.islands)]
        # Every program ever stored on an island, by id: children in flight may outlive their
        # parent's place in the archive, and their outcome is measured against its score.
        self._members: dict[int, Member] = {}
        self._migrated: set[int] = set()
        self._migrations: list[dict[str, Any]] = []
        self._issued = 0
        self._observed = 0
        # Results waiting for their generation to complete, and the last generation taken in.
        self._held: list[Result] = []
        self._taken = 0
        self._reference_seen = False
        # Only kept for the default grid axes, which are measured against the reference.
        self._reference_code = ""
        self._modes = {"template": 0, "meta": 0}
        self._sampling = {"exploit": 0, "explore": 0, "fitness": 0, "reference": 0}
        self._ideas_tested = 0
        self._ideas_improved = 0

    # --- choosing tasks (main thread) ---------------------------------------------------
    def next_tasks(self, n: int) -> list[Task]:
        # Children are handed out as slots free up, and a generation is issued while the one
        # before it is still being evaluated: workers idle only when generation g-2 has not
        # finished by the time generation g starts (see results.py for why not later).
        tasks: list[Task] = []
        while len(tasks) < n:
            generation = self._issued // self.options.children_per_generation + 1
            if not self._take_through(generation - 2):
                break
            tasks.append(self._next_task())
        return tasks

    def _next_task(self) -> Task:
        opts = self.options
        index = self._issued
        island_index = index % opts.islands
        island = self._islands[island_index]
        mode = "template" if index < opts.template_children else "meta"
        parent, how = self._sample_parent(island)
        meta: dict[str, Any] = {"sampling": how, "errors": list(island.errors)}
        if mode == "meta":
            # propose() runs on a worker thread and must not read live strategy state, so the
            # island summary travels with the task.
            meta["tried"] = prompting.tried_summary(island)
        task = Task(
            parent_id=parent.id if parent else self.ctx.reference_id,
            inspiration_ids=self._inspirations(island, parent),
            island=island_index,
            generation=index // opts.children_per_generation + 1,
            mode=mode,
            meta=meta,
        )
        self._issued += 1
        self._modes[mode] += 1
        self._sampling[how] += 1
        return task

    def _sample_parent(self, island: Island) -> tuple[Member | None, str]:
        population = island.population()
        if not population:
            # Only when the reference itself was not valid: all that can be done is retry it.
            return None, "reference"
        opts = self.options
        draw = self._rng.random() * (opts.exploit_ratio + opts.explore_ratio + opts.fitness_ratio)
        if draw < opts.exploit_ratio:
            return self._rng.choice(island.archive), "exploit"
        if draw < opts.exploit_ratio + opts.explore_ratio:
            # Uniform over niches rather than programs: every behaviour gets the same chance.
            cell = self._rng.choice(sorted(island.grid))
            return island.grid[cell], "explore"
        # Rank-based weights, not raw scores: scores may be negative or on any scale.
        weights = [1.0 / (rank + 1) for rank in range(len(population))]
        return self._rng.choices(population, weights=weights)[0], "fitness"

    def _inspirations(self, island: Island, parent: Member | None) -> list[int]:
        opts = self.options
        chosen: list[int] = []
        taken = {parent.id if parent else self.ctx.reference_id}
        for member in island.archive:
            if len(chosen) >= opts.top_inspirations:
                break
            if member.id not in taken:
                chosen.append(member.id)
                taken.add(member.id)
        if parent is None or opts.neighbour_inspirations == 0:
            return chosen
        # Nearest occupied cells first (ring by ring), a random pick within a ring.
        rings: dict[int, list[Member]] = {}
        for cell, member in sorted(island.grid.items()):
            if member.id not in taken:
                rings.setdefault(distance(cell, parent.cell), []).append(member)
        wanted = opts.neighbour_inspirations
        for ring in sorted(rings):
            picks = self._rng.sample(rings[ring], min(wanted, len(rings[ring])))
            chosen.extend(m.id for m in picks)
            wanted -= len(picks)
            if wanted == 0:
                break
        return chosen

    # --- proposing (worker threads: reads only the task and the context) ----------------
    def propose(self, session: ProposalSession) -> Proposal:
        task = session.task
        parent = session.program(task.parent_id)
        inspirations = [session.program(i) for i in task.inspiration_ids]
        errors = list(task.meta.get("errors", []))
        if task.mode != "meta":
            system, prompt = prompts.edit_prompt(
                session.task_description,
                parent,
                inspirations,
                self.ctx.objective,
                self.ctx.prompt_dir,
                self.ctx.env or None,
                errors,
            )
            return Proposal(reply=session.ask("edit", system, prompt))
        system, prompt = prompting.idea_prompt(
            self.ctx, session.task_description, parent, inspirations, task.meta.get("tried", "")
        )
        idea_reply = session.ask("idea", system, prompt)
        idea = idea_reply.text.strip()
        if idea_reply.error or not idea:
            # Nothing to implement: hand the failed call back so it is recorded as a failure.
            error = idea_reply.error or "the idea stage returned an empty reply"
            return Proposal(reply=idea_reply.model_copy(update={"error": error}))
        system, prompt = prompting.implement_prompt(
            self.ctx, session.task_description, parent, idea, errors
        )
        return Proposal(reply=session.ask("implement", system, prompt, idea=idea), idea=idea)

    # --- results (main thread) -----------------------------------------------------------
    def observe(self, program: ProgramView) -> None:
        if program.id == self.ctx.reference_id:
            self._observe_reference(program)
            return
        if not 0 <= program.island < len(self._islands):
            raise ValueError(
                f"program {program.id} names island {program.island}, which does not exist"
            )
        text = " ".join(program.idea.split())
        if len(text) > IDEA_TEXT_LIMIT:
            text = text[: IDEA_TEXT_LIMIT - 3] + "..."
        result = Result(
            task=program.task,
            id=program.id,
            island=program.island,
            generation=program.generation,
            valid=program.valid,
            status=program.status,
            error=_brief(program.error),
            idea=text,
            parent=program.parent_ids[0] if program.parent_ids else None,
            member=self._member(program),
        )
        if result.generation <= self._taken:  # late: its generation was taken in before a resume
            self._take(result)
        else:
            self._held.append(result)
        if self._issued >= self.ctx.budget:  # no task will be chosen again: nothing to wait for
            last = (self._issued - 1) // self.options.children_per_generation + 1
            self._take_through(last)

    def _take_through(self, last: int) -> bool:
        """Take in every generation up to ``last`` that has all its results, in order; whether
        all of them up to ``last`` are in now."""
        per = self.options.children_per_generation
        while self._taken < last:
            generation = self._taken + 1
            batch = [r for r in self._held if r.generation == generation]
            if len(batch) < issued_in(generation, self._issued, per):
                return False
            for result in sorted(batch, key=Result.order):
                self._take(result)
            self._held = [r for r in self._held if r.generation != generation]
            self._taken = generation
        return True

    def _take(self, result: Result) -> None:
        island = self._islands[result.island]
        member = result.member
        placement = island.add(member) if member else None
        if placement == "stored" and member is not None:
            self._members[member.id] = member
        if not result.valid:
            island.note_error(result.error or result.status)
        if result.idea:
            self._note_idea(island, result, placement)
        self._observed += 1
        cadence = self.options.migration_interval * self.options.children_per_generation
        if cadence and len(self._islands) > 1 and self._observed % cadence == 0:
            self._migrate()

    def _observe_reference(self, program: ProgramView) -> None:
        if self._reference_seen:  # reported again after a resume: already seeded
            return
        self._reference_seen = True
        if self._descriptor.relative:
            self._reference_code = program.code
        member = self._member(program)
        if member is None:
            return
        self._members[member.id] = member
        for island in self._islands:
            island.add(member)
        # It is on every island already; migrating it would only waste a migrant's place.
        self._migrated.add(member.id)

    def _member(self, program: ProgramView) -> Member | None:
        if not program.valid or program.score is None or not math.isfinite(program.score):
            return None
        cell = self._descriptor.cell(program, self._reference_code)
        code = member_hash(program.code)
        return Member(program.id, float(program.score), code, cell, program.task)

    def _note_idea(self, island: Island, result: Result, placement: str | None) -> None:
        member = result.member
        parent = self._members.get(result.parent) if result.parent is not None else None
        delta = member.score - parent.score if member and parent else None
        if not result.valid:
            note = f"{result.status}: {result.error}"
        elif member is None:
            note = "valid but no score"
        elif placement == "duplicate":
            note = "same code as a program already here"
        elif island.best() is member:
            note = "new island best"
        else:
            note = ""
        record = IdeaRecord(result.id, result.idea, delta, note)
        island.note_idea(record, self.options.idea_history)
        self._ideas_tested += 1
        if delta is not None and delta > 0:
            self._ideas_improved += 1

    def _migrate(self) -> None:
        generation = self._observed // self.options.children_per_generation
        # Choose every island's emigrants before anyone moves, so that a program arriving in
        # this round is not passed further along the ring in the same round.
        outgoing = [self._emigrants(island) for island in self._islands]
        for source, members in enumerate(outgoing):
            target = (source + 1) % len(self._islands)
            for member in members:
                self._migrated.add(member.id)
                placement = self._islands[target].add(member)
                self._migrations.append(
                    {
                        "generation": generation,
                        "program": member.id,
                        "source": source,
                        "target": target,
                        "accepted": placement == "stored",
                    }
                )

    def _emigrants(self, island: Island) -> list[Member]:
        count = max(1, math.ceil(self.options.migration_rate * len(island.archive)))
        return [m for m in island.archive if m.id not in self._migrated][:count]

    # --- resume --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "version": STATE_VERSION,
            "rng": [version, list(internal), gauss],
            "issued": self._issued,
            "observed": self._observed,
            "held": [result.to_state() for result in self._held],
            "taken": self._taken,
            "reference_seen": self._reference_seen,
            "reference_code": self._reference_code,
            "modes": dict(self._modes),
            "sampling": dict(self._sampling),
            "ideas": {"tested": self._ideas_tested, "improved": self._ideas_improved},
            "members": [m.to_state() for _, m in sorted(self._members.items())],
            "migrated": sorted(self._migrated),
            "migrations": [dict(event) for event in self._migrations],
            "islands": [island.to_state() for island in self._islands],
        }

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("version") not in (1, STATE_VERSION):
            raise UserError(
                f"islands: cannot resume from state version {state.get('version')!r} "
                f"(this version reads {STATE_VERSION})"
            )
        if len(state["islands"]) != self.options.islands:
            raise UserError(
                f"islands: the run was started with {len(state['islands'])} islands; resume it "
                f"with the same number (options say {self.options.islands})"
            )
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._issued = state["issued"]
        self._observed = state["observed"]
        self._held = [Result.from_state(data) for data in state.get("held", [])]
        # Version 1 took every result in on arrival: all it issued counts as taken in, and the
        # results of its unfinished tasks are taken in as they come.
        per = self.options.children_per_generation
        self._taken = state.get("taken", (self._issued - 1) // per + 1 if self._issued else 0)
        self._reference_seen = state["reference_seen"]
        self._reference_code = state["reference_code"]
        self._modes = dict(state["modes"])
        self._sampling = dict(state["sampling"])
        self._ideas_tested = state["ideas"]["tested"]
        self._ideas_improved = state["ideas"]["improved"]
        members = [Member.from_state(m) for m in state["members"]]
        self._members = {m.id: m for m in members}
        self._migrated = set(state["migrated"])
        self._migrations = [dict(event) for event in state["migrations"]]
        self._islands = [
            Island.from_state(data, self.options.archive_size, self._members)
            for data in state["islands"]
        ]

    # --- reporting -----------------------------------------------------------------------
    def describe(self) -> str:
        opts = self.options
        # The generation of the latest child handed out.
        generation = (
            self._issued + opts.children_per_generation - 1
        ) // opts.children_per_generation
        lines = [
            f"{len(self._islands)} islands, generation {generation}: {self._issued} children "
            f"proposed ({self._modes['template']} template, {self._modes['meta']} meta), "
            f"{self._observed + len(self._held)} finished"
            + (f" ({len(self._held)} waiting for their generation)" if self._held else "")
        ]
        for index, island in enumerate(self._islands):
            best = island.best()
            best_text = f"best {best.score:.6g} (#{best.id})" if best else "empty"
            lines.append(
                f"  island {index}: {len(island.population())} programs "
                f"(archive {len(island.archive)}/{opts.archive_size}, "
                f"{len(island.grid)} cells), {best_text}"
            )
        filled = len({cell for island in self._islands for cell in island.grid})
        lines.append(
            f"grid {self._descriptor.label()}: {filled} of {self._descriptor.size()} cells filled"
        )
        accepted = sum(event["accepted"] for event in self._migrations)
        rounds = len({event["generation"] for event in self._migrations})
        cadence = (
            f"every {opts.migration_interval} generations"
            if opts.migration_interval and opts.islands > 1
            else "off"
        )
        lines.append(
            f"migration ({cadence}): {_count(rounds, 'round')}, "
            f"{_count(len(self._migrations), 'program')} sent, {accepted} accepted"
        )
        s = self._sampling
        lines.append(
            f"parents: {s['exploit']} exploit, {s['explore']} explore, {s['fitness']} fitness"
            + (f", {s['reference']} reference fallback" if s["reference"] else "")
        )
        lines.append(
            f"ideas: {self._ideas_tested} tested, {self._ideas_improved} improved on their parent"
        )
        return "\n".join(lines)

    def members(self, island: int) -> list[int]:
        """Ids of the programs island ``island`` holds, best first."""
        return [m.id for m in self._islands[island].population()]

    def elites(self, island: int) -> list[int]:
        """Ids in island ``island``'s elite archive, best first."""
        return [m.id for m in self._islands[island].archive]

    def cells(self, island: int) -> dict[tuple[int, ...], int]:
        """Island ``island``'s MAP-Elites grid: cell -> id of the program holding it."""
        return {cell: m.id for cell, m in self._islands[island].grid.items()}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _brief(error: str) -> str:
    """The last line of an error (the exception of a traceback), short enough for a prompt."""
    lines = [line.strip() for line in error.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
