"""llm: any model litellm can reach (``--agent openai/gpt-5``, ``anthropic/...``, ``ollama/...``).

litellm is imported on first use only: it costs seconds and would otherwise fetch its model
price map from the network at import time (``LITELLM_LOCAL_MODEL_COST_MAP`` keeps it local).

The platform owns the retries: litellm's and the provider SDK's own are turned off
(``num_retries=0``, ``max_retries=0``), so each HTTP request is one attempt, and every attempt,
failed or not, is returned as a recorded call with its tokens, USD cost and error. Rate limits,
timeouts, connection and server errors are retried up to ``retries`` times, after the server's
``Retry-After`` when it sends one (capped at ``timeout_s``), else after a jittered exponential
backoff. Errors no retry can fix (a missing or refused API key, an unknown model, a request the
provider rejects) raise ``AgentUnavailable``: the run stops with one line naming the model.

Parameters a model does not take are dropped (litellm's ``drop_params``, e.g. gpt-5's
``temperature``); ``api_key_env`` names the variable holding the key, read when the agent is
built (at start and on every resume), since a stored config keeps no key.
"""

from __future__ import annotations

import os
import random
import time
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from pydantic import SecretStr

from progressbench import Agent, AgentReply, AgentRequest, AgentUnavailable, LLMCall, hookimpl
from progressbench.contracts.agent import REDACTED

RETRYABLE = (
    "RateLimitError",
    "Timeout",
    "APIConnectionError",
    "ServiceUnavailableError",
    "InternalServerError",
)
# Raised before any request is sent when the provider's key is not set (litellm maps it to
# an InternalServerError, which would otherwise be retried).
MISSING_KEY = ("Missing credentials", "api_key client option must be set")
FATAL_STATUS = {
    400: "the provider rejected the request",
    401: "the provider refused the API key",
    403: "the provider denied access",
    404: "unknown model (or api_base)",
}
# litellm's own price settings (per-agent prices for models its price map lacks).
PRICES = frozenset({"input_cost_per_token", "output_cost_per_token"})
# Settings of litellm's that would retry behind the platform's back, or break reading replies.
REFUSED_EXTRA = {
    "num_retries": "use agent_options.retries: the platform retries and stores every attempt",
    "max_retries": "use agent_options.retries: the platform retries and stores every attempt",
    "stream": "streamed replies are not supported: the agent reads each reply whole",
}


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
        extra = dict(self.options.extra)
        for key, why in REFUSED_EXTRA.items():
            if key in extra and extra[key] not in (None, False, 0):
                raise ValueError(f"agent_options.extra.{key} is not allowed: {why}")
            extra.pop(key, None)
        try:
            self.backoff_s = float(extra.pop("backoff_s", 2.0))
        except (TypeError, ValueError):
            raise ValueError("agent_options.extra.backoff_s must be a number of seconds") from None
        key_env = extra.pop("api_key_env", None)
        if key_env:
            if not os.environ.get(key_env):
                raise ValueError(f"its api_key_env {key_env} is not set in the environment")
            extra["api_key"] = os.environ[key_env]
        secret = extra.get("api_key")
        if isinstance(secret, SecretStr):
            extra["api_key"] = secret.get_secret_value()
        if extra.get("api_key") == REDACTED:
            raise ValueError(
                "its api_key is not stored with the run: give it again with --config FILE "
                "(or use api_key_env)"
            )
        # Parameters a model does not take (gpt-5's temperature) are left out, not refused.
        extra.setdefault("drop_params", True)
        self.extra = extra
        _check_provider(arg, extra.get("api_base"))

    @property
    def label(self) -> str:
        return self.model

    @property
    def priced(self) -> bool:
        if PRICES <= self.extra.keys():
            return True
        try:
            info = _litellm().get_model_info(self.model)
        except Exception:  # litellm raises when the model is not in its price map
            return False
        return info.get("input_cost_per_token") is not None

    def reply(self, request: AgentRequest) -> AgentReply:
        litellm = _litellm()
        messages = request.messages()
        calls: list[LLMCall] = []
        for attempt in range(self.options.retries + 1):
            started = time.monotonic()
            call = LLMCall(
                agent=self.name, model=self.model, purpose=request.purpose, messages=messages
            )
            calls.append(call)
            try:
                response = litellm.completion(
                    model=self.model,
                    messages=messages,
                    temperature=self.options.temperature,
                    max_tokens=self.options.max_tokens,
                    timeout=self.options.timeout_s,
                    **self.extra,
                    # One HTTP request per attempt: the loop here is the only retry.
                    num_retries=0,
                    max_retries=0,
                )
            except Exception as exc:
                call.latency_s = time.monotonic() - started
                call.error = _describe(exc)
                fatal = _fatal(litellm, exc)
                if fatal:
                    raise AgentUnavailable(
                        f"model {self.model}: {fatal} ({call.error})", calls=calls
                    ) from exc
                if type(exc).__name__ in RETRYABLE and attempt < self.options.retries:
                    wait = _retry_after(exc, self.options.timeout_s)
                    if wait is None:
                        # Jittered exponential backoff, so parallel workers do not retry in
                        # lockstep.
                        wait = self.backoff_s * (2**attempt) * (0.5 + random.random())
                    else:
                        call.error += f" (Retry-After: {wait:g}s)"
                    time.sleep(wait)
                    continue
                return AgentReply(calls=calls, error=f"model call failed: {call.error}")
            call.latency_s = time.monotonic() - started
            call.response = _text(response)
            usage = getattr(response, "usage", None)
            call.prompt_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
            call.completion_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
            if PRICES <= self.extra.keys():  # the user's prices, over any litellm may guess
                call.cost_usd = call.prompt_tokens * float(
                    self.extra["input_cost_per_token"]
                ) + call.completion_tokens * float(self.extra["output_cost_per_token"])
            else:
                call.cost_usd = _cost(litellm, response)
            if not call.response.strip():
                call.error = f"empty reply: {_why_empty(response)}"
                return AgentReply(calls=calls, error="the model returned an empty reply")
            return AgentReply(text=call.response, calls=calls)
        return AgentReply(calls=calls, error="model call failed")


def _check_provider(model: str, api_base: Any) -> None:
    """A model string litellm cannot route (``--agent nosuch``) is a user error now, before
    the run is stored, not a failed request per child."""
    try:
        _litellm().get_llm_provider(model, api_base=api_base)
    except Exception:  # litellm raises BadRequestError with a paragraph of advice
        raise ValueError(
            f"litellm knows no provider for model {model!r}: write PROVIDER/MODEL, e.g. "
            "openai/gpt-5, anthropic/claude-sonnet-4-5, ollama_chat/llama3 or, for any "
            "OpenAI-compatible server, openai/NAME with --api-base URL (docs/agents.md)"
        ) from None


def _describe(exc: Exception) -> str:
    """``Type: first line`` of ``exc``, without litellm's repeated ``litellm.Type: Type:``."""
    name = type(exc).__name__
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    for prefix in (f"litellm.{name}: ", f"{name}: "):
        if line.startswith(prefix):
            line = line[len(prefix) :]
    return f"{name}: {line}" if line else name


def _fatal(litellm: Any, exc: Exception) -> str:
    """Why no request to this model can succeed, or "" when the error may be this request's."""
    if any(marker in str(exc) for marker in MISSING_KEY):
        return "no API key (set the provider's key, e.g. OPENAI_API_KEY, or api_key)"

    def kind(*names: str) -> tuple[type[BaseException], ...]:
        return tuple(c for c in (getattr(litellm, n, None) for n in names) if c is not None)

    # A prompt too long or refused by a content filter is this request's failure only.
    if isinstance(exc, kind("ContextWindowExceededError", "ContentPolicyViolationError")):
        return ""
    if isinstance(exc, kind("AuthenticationError")):
        return FATAL_STATUS[401]
    if isinstance(exc, kind("PermissionDeniedError")):
        return FATAL_STATUS[403]
    if isinstance(exc, kind("NotFoundError")):
        return FATAL_STATUS[404]
    if isinstance(exc, kind("UnsupportedParamsError")):
        return "a parameter is not supported by this model"
    if isinstance(exc, kind("BadRequestError")):
        return FATAL_STATUS[400]
    # litellm maps some of these statuses to a plain APIError (a 403 from OpenAI, for one).
    return FATAL_STATUS.get(getattr(exc, "status_code", None), "")  # type: ignore[arg-type]


def _retry_after(exc: Exception, cap: float) -> float | None:
    """The wait the server asked for (``Retry-After`` seconds or date, ``retry-after-ms``),
    at most ``cap`` seconds; None when it did not say."""
    response = getattr(exc, "response", None)
    raw = getattr(response, "headers", None) or getattr(exc, "litellm_response_headers", None)
    try:
        headers = {str(k).lower(): str(v) for k, v in dict(raw or {}).items()}
    except (TypeError, ValueError):
        return None
    wait: float | None = None
    try:
        if "retry-after-ms" in headers:
            wait = float(headers["retry-after-ms"]) / 1000
        elif "retry-after" in headers:
            value = headers["retry-after"].strip()
            try:
                wait = float(value)
            except ValueError:
                wait = parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
    if wait is None or wait != wait:  # absent, or NaN
        return None
    return min(max(wait, 0.0), cap)


def _text(response: Any) -> str:
    try:
        return response.choices[0].message.content or ""
    except (AttributeError, IndexError, TypeError):
        return ""


def _why_empty(response: Any) -> str:
    choices = getattr(response, "choices", None)
    if not choices:
        return "the response had no choices"
    reason = getattr(choices[0], "finish_reason", None)
    return f"no text in the reply (finish_reason {reason})" if reason else "no text in the reply"


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
