"""replay: answer every request with the response a stored run recorded for it, offline.

``--agent replay:RUN_ID`` with the recorded run's settings (strategy, seed, budget, workers=1)
reproduces that run exactly: requests are matched by their key (task number, purpose, call
number within the task), and a recorded failure is replayed as the same failure.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import Any, ClassVar

from progressbench import Agent, AgentReply, AgentRequest, LLMCall, UserError, hookimpl


class ReplayAgent(Agent):
    name: ClassVar[str] = "replay"
    description: ClassVar[str] = "replays the responses recorded in a stored run (replay:RUN_ID)"

    def __init__(self, arg: str | None, options):
        super().__init__(arg, options)
        if not arg:
            raise UserError("the replay agent needs a run: --agent replay:RUN_ID")
        self._calls: dict[str, list[Any]] = {}
        self._lock = threading.Lock()

    def bind(self, store: Any) -> None:
        source = store.get_run(self.arg)
        self.arg = source.id
        recorded: dict[str, list[Any]] = defaultdict(list)
        for call in store.llm_calls(source.id):
            recorded[call.request_key].append(call)
        if not recorded:
            raise UserError(f"run {source.id} recorded no agent calls to replay")
        self._calls = dict(recorded)

    def reply(self, request: AgentRequest) -> AgentReply:
        with self._lock:
            recorded = self._calls.get(request.key)
        if not recorded:
            return AgentReply(
                error=f"run {self.arg} recorded no response for request {request.key}"
            )
        calls = [
            LLMCall(
                agent=self.name,
                model=f"replay:{c.model}",
                purpose=request.purpose,
                messages=request.messages(),
                response=c.response,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                error=c.error,
            )
            for c in recorded
        ]
        final = recorded[-1]
        if final.error or not final.response.strip():
            return AgentReply(calls=calls, error=final.error or "the recorded reply was empty")
        return AgentReply(text=final.response, calls=calls)


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_agents(register):
    register(ReplayAgent)
