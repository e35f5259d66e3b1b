"""Results held back until their generation is complete.

Which parent a task gets depends on what the islands hold when it is issued. Taken in as they
arrive, results would make that depend on the number of workers and on which child finished
first. Instead the children of generation g are chosen from the islands as they stood after
generation g-2, every result of it taken in, in task order: one generation is evaluated while
the next is issued, and the same seed gives the same children at any worker count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .island import Member


@dataclass(frozen=True)
class Result:
    """What the strategy keeps of one child until its generation is taken in: compact,
    because it waits in the strategy state stored with every result."""

    task: int
    id: int
    island: int
    generation: int
    valid: bool
    status: str
    error: str  # the error's last line, as the prompts show it
    idea: str  # the idea in one line, clipped
    parent: int | None
    member: Member | None

    def order(self) -> tuple[int, int]:
        return (self.task, self.id)

    def to_state(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "id": self.id,
            "island": self.island,
            "generation": self.generation,
            "valid": self.valid,
            "status": self.status,
            "error": self.error,
            "idea": self.idea,
            "parent": self.parent,
            "member": self.member.to_state() if self.member else None,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> Result:
        member = Member.from_state(data["member"]) if data["member"] is not None else None
        fields = {k: v for k, v in data.items() if k != "member"}
        return cls(member=member, **fields)


def issued_in(generation: int, issued: int, per_generation: int) -> int:
    """How many of ``issued`` tasks (handed out in order) belong to ``generation`` (from 1)."""
    return min(per_generation, max(0, issued - (generation - 1) * per_generation))
