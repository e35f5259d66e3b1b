"""llm: any model litellm can reach (``--agent openai/gpt-5``, ``anthropic/...``, ``ollama/...``).

litellm is imported on first use only: it costs seconds and would otherwise fetch its model
price map from the network at import time (``LITELLM_LOCAL_MODEL_COST_MAP`` keeps it local).
Rate limits, timeouts and transient server errors are retried with exponential backoff; every
attempt, failed or not, is returned as a recorded call with its tokens and USD cost.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, ClassVar

from progressbench import Agent, AgentReply, AgentRequest, LLMCall, hookimpl

RETRYABLE = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
)


def _litellm() -> Any:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class LLMAgent(Agent):
    name: ClassVar[str] = "llm"
    description: ClassVar[str] = "any litellm model string (provider/model); retries, cost tracking"
    accepts_model_strings: ClassVar[bool] = True
    online: ClassVar[bool] = True

    def __init__(self, arg: str | None, options):
        super().__init__(arg, options)
        if not arg:
            raise ValueError("the llm agent needs a model: --agent PROVIDER/MODEL")
        self.model = arg

    @property
    def label(self) -> str:
        return self.model

    def reply(self, request: AgentRequest) -> AgentReply:
        litellm = _litellm()
        messages = request.messages()
        calls: list[LLMCall] = []
        extra = dict(self.options.extra)
        backoff = float(extra.pop("backoff_s", 2.0))
        for attempt in range(self.options.retries + 1):
            started = time.monotonic()
            call = LLMCall(
                agent=self.name, model=self.model, purpose=request.purpose, messages=messages
            )
            try:
                response = litellm.completion(
                    model=self.model,
                    messages=messages,
                    temperature=self.options.temperature,
                    max_tokens=self.options.max_tokens,
                    timeout=self.options.timeout_s,
                    **extra,
                )
            except Exception as exc:
                call.latency_s = time.monotonic() - started
                call.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                calls.append(call)
                if type(exc).__name__ in RETRYABLE and attempt < self.options.retries:
                    # Jittered exponential backoff, so parallel workers do not retry in lockstep.
                    time.sleep(backoff * (2**attempt) * (0.5 + random.random()))
                    continue
                return AgentReply(calls=calls, error=f"model call failed: {call.error}")
            call.latency_s = time.monotonic() - started
            call.response = _text(response)
            usage = getattr(response, "usage", None)
            call.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            call.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            call.cost_usd = _cost(litellm, response)
            calls.append(call)
            if not call.response.strip():
                return AgentReply(calls=calls, error="the model returned an empty reply")
            return AgentReply(text=call.response, calls=calls)
        return AgentReply(calls=calls, error="model call failed")


def _text(response: Any) -> str:
    try:
        return response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError):
        return ""


def _cost(litellm: Any, response: Any) -> float:
    # Models missing from litellm's price map (local ones, mocks) cost what we can't know: 0.
    try:
        return float(litellm.completion_cost(completion_response=response) or 0.0)
    except Exception:
        hidden = getattr(response, "_hidden_params", {}) or {}
        return float(hidden.get("response_cost") or 0.0)


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_agents(register):
    register(LLMAgent)
