"""What a strategy (and a prompt) sees of a stored program.

Its own module so that the strategy contract and the prompt module both import it at the top:
``prompts`` builds messages from views, and ``Strategy.propose`` calls ``prompts``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ProgramView(BaseModel):
    """What a strategy sees of a stored program."""

    id: int
    parent_ids: list[int] = Field(default_factory=list)
    # The programs shown to the agent as inspirations when this one was proposed.
    inspiration_ids: list[int] = Field(default_factory=list)
    island: int = 0
    generation: int = 0
    code: str
    status: str = "pending"
    valid: bool = False
    score: float | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    features: dict[str, float] = Field(default_factory=dict)
    telemetry_text: str = ""
    error: str = ""
    idea: str = ""
