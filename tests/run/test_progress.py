"""The progress line: model-call retries and errors apart from the fast error catcher's fixes."""

from __future__ import annotations

import io
from types import SimpleNamespace

from progressbench.contracts.agent import (
    Agent,
    AgentReply,
    AgentRequest,
    AgentUnavailable,
    LLMCall,
)
from progressbench.run.agents import CallCounts, Counted
from progressbench.run.progress import Progress

STATS = SimpleNamespace(done=3, failed=1, retries=2, best_metric=1.5, cost=0.25)


def line(calls=None) -> str:
    out = io.StringIO()
    Progress("score", stream=out).update(STATS, 10, 5.0, calls)
    return out.getvalue().strip()


def call(error: str = "") -> LLMCall:
    return LLMCall(agent="t", model="m", purpose="edit", messages=[], error=error)


class Flaky(Agent):
    name = "flaky"

    def __init__(self, replies):
        super().__init__(None, None)  # type: ignore[arg-type]
        self.replies = list(replies)

    def reply(self, request: AgentRequest) -> AgentReply:
        got = self.replies.pop(0)
        if isinstance(got, Exception):
            raise got
        return got


def request(key: str) -> AgentRequest:
    return AgentRequest(purpose="edit", system="", prompt="", parent_code="", seed=0, key=key)


def test_model_call_retries_and_errors_are_counted_apart_from_fixes():
    counts = CallCounts()
    agent = Counted(
        Flaky(
            [
                AgentReply(text="ok", calls=[call("Timeout"), call("RateLimitError"), call()]),
                AgentReply(error="model call failed", calls=[call("Timeout"), call("Timeout")]),
                AgentUnavailable("model m: refused", calls=[call("AuthenticationError")]),
            ]
        ),
        {"1:edit:9": "stored"},
        counts,
    )
    agent.reply(request("1:edit:1"))
    agent.reply(request("1:edit:2"))
    try:
        agent.reply(request("1:edit:3"))
    except AgentUnavailable:
        pass
    # A stored reply (a resumed task's) is no call at all.
    assert agent.reply(request("1:edit:9")).text == "stored"
    assert (counts.retries, counts.errors) == (3, 2)
    shown = line(counts)
    assert "fixes 2" in shown and "llm retries 3 errors 2" in shown


def test_a_run_without_model_trouble_shows_only_the_fixes():
    shown = line(CallCounts())
    assert "fixes 2" in shown and "llm" not in shown


def test_the_fix_prompt_tells_a_stateless_model_what_it_intended():
    from progressbench.run import prompts

    context = prompts.FixContext(
        task="Pack circles.",
        objective="Metric: sum_radii (maximize).",
        idea="Grow the inner ring.",
        reply="<<<<<<< SEARCH\nX = 1\n=======\nX = 2\n>>>>>>> REPLACE",
        error="SEARCH block 1 not found",
        code="X = 0\n",
    )
    _, prompt = prompts.fix_messages(context)
    for part in ("Pack circles.", "sum_radii", "Grow the inner ring.", "X = 2", "not found"):
        assert part in prompt
    assert "```python\nX = 0\n" in prompt  # the parent's code, to edit


def test_failures_that_are_not_the_program_s_stay_out_of_later_prompts():
    from progressbench.run import prompts

    errors = ["edit: SEARCH not found", "agent: edit call: model call failed: Timeout", "infra: x"]
    assert prompts.model_errors(errors) == ["edit: SEARCH not found"]
