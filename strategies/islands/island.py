"""One island: an elite archive and a MAP-Elites grid behind a per-island duplicate filter."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from progressbench import code_hash

from .features import Cell

Placement = Literal["stored", "duplicate", "rejected"]

# Failures remembered per island for the next prompts: enough to steer the agent away from a
# repeated mistake without crowding the prompt.
RECENT_ERRORS = 3


def member_hash(code: str) -> str:
    """Identity of a program's code for the duplicate filter: the store's ``code_hash`` of
    the text without trailing whitespace, line endings or blank lines at either end."""
    return code_hash("\n".join(line.rstrip() for line in code.splitlines()).strip("\n"))


@dataclass(frozen=True)
class Member:
    """A valid, scored program as the strategy remembers it (it may sit on several islands)."""

    id: int
    score: float
    code_hash: str
    cell: Cell
    # The number of the task that proposed it (0: the reference). Program ids follow the
    # order in which replies arrived, which depends on the workers; task numbers do not.
    task: int = 0

    def rank_key(self) -> tuple[float, int]:
        # Best first; on equal scores the older program keeps its place.
        return (-self.score, self.task)

    def to_state(self) -> list[Any]:
        return [self.id, self.score, self.code_hash, list(self.cell), self.task]

    @classmethod
    def from_state(cls, data: list[Any]) -> Member:
        # A state from before task numbers ordered ties by id: keep that order.
        task = int(data[4]) if len(data) > 4 else int(data[0])
        return cls(int(data[0]), float(data[1]), str(data[2]), tuple(int(c) for c in data[3]), task)


@dataclass
class IdeaRecord:
    """A stage-1 idea and what it did to the score of the program it changed."""

    program: int
    text: str
    delta: float | None
    note: str


def _effect(record: IdeaRecord) -> float:
    return record.delta if record.delta is not None else float("-inf")


@dataclass
class Island:
    capacity: int
    archive: list[Member] = field(default_factory=list)  # best first, at most ``capacity``
    grid: dict[Cell, Member] = field(default_factory=dict)
    # Every code hash ever stored here: a program evicted for being worse must not come back
    # through a re-proposed copy whose (noisy) re-evaluation happens to score higher.
    hashes: set[str] = field(default_factory=set)
    ideas: list[IdeaRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, member: Member) -> Placement:
        """Offer ``member`` to the archive and the grid; it is stored if either takes it."""
        if member.code_hash in self.hashes:
            return "duplicate"
        # Both offers must run: a program can be an elite and a niche's best at once.
        in_archive = self._offer_archive(member)
        in_grid = self._offer_grid(member)
        if not (in_archive or in_grid):
            return "rejected"
        self.hashes.add(member.code_hash)
        return "stored"

    def _offer_archive(self, member: Member) -> bool:
        if len(self.archive) >= self.capacity:
            if member.rank_key() >= self.archive[-1].rank_key():
                return False
            self.archive.pop()
        self.archive.append(member)
        self.archive.sort(key=Member.rank_key)
        return True

    def _offer_grid(self, member: Member) -> bool:
        current = self.grid.get(member.cell)
        if current is not None and member.score <= current.score:
            return False
        self.grid[member.cell] = member
        return True

    def best(self) -> Member | None:
        return self.archive[0] if self.archive else None

    def population(self) -> list[Member]:
        """Every program the island holds (archive and grid), best first."""
        unique = {m.id: m for m in self.archive}
        unique.update((m.id, m) for m in self.grid.values())
        return sorted(unique.values(), key=Member.rank_key)

    def note_error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-RECENT_ERRORS]

    def note_idea(self, record: IdeaRecord, keep: int) -> None:
        """Remember an idea; keep the ``keep`` most recent and the ``keep`` most effective.

        The summary shown to the agent needs both (what works, what was just tried), and the
        pruning keeps the state bounded however long the run.
        """
        self.ideas.append(record)
        if keep == 0:
            self.ideas.clear()
            return
        scored = [r for r in self.ideas if r.delta is not None]
        best = sorted(scored, key=_effect, reverse=True)[:keep]
        kept = {r.program for r in best} | {r.program for r in self.ideas[-keep:]}
        self.ideas = [r for r in self.ideas if r.program in kept]

    def to_state(self) -> dict[str, Any]:
        return {
            "archive": [m.id for m in self.archive],
            "grid": [[list(cell), m.id] for cell, m in sorted(self.grid.items())],
            "hashes": sorted(self.hashes),
            "ideas": [asdict(r) for r in self.ideas],
            "errors": list(self.errors),
        }

    @classmethod
    def from_state(cls, data: dict[str, Any], capacity: int, members: dict[int, Member]) -> Island:
        return cls(
            capacity=capacity,
            archive=[members[i] for i in data["archive"]][:capacity],
            grid={tuple(cell): members[i] for cell, i in data["grid"]},
            hashes=set(data["hashes"]),
            ideas=[IdeaRecord(**r) for r in data["ideas"]],
            errors=list(data["errors"]),
        )
