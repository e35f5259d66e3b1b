"""The litellm agent, with litellm's mock responses and a registered custom provider: no network."""

from __future__ import annotations

import json
import os

import pytest
from conftest import pb, query

from progressbench.contracts.agent import AgentOptions, AgentRequest, AgentUnavailable
from progressbench_plugins.agents.llm import LLMAgent

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = pytest.importorskip("litellm")

EDIT = """Increase the inner ring radius.
<<<<<<< SEARCH
RING1_RADIUS = 0.25  # knob: [0.12, 0.35]
=======
RING1_RADIUS = 0.26  # knob: [0.12, 0.35]
>>>>>>> REPLACE
"""


def request() -> AgentRequest:
    return AgentRequest(purpose="edit", system="sys", prompt="improve", parent_code="x = 1", seed=1)


def test_mock_response_records_tokens_and_cost():
    agent = LLMAgent("openai/gpt-4o-mini", AgentOptions(extra={"mock_response": EDIT}))
    reply = agent.reply(request())
    assert reply.text == EDIT and not reply.error
    (call,) = reply.calls
    assert call.model == "openai/gpt-4o-mini" and call.purpose == "edit"
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and call.cost_usd > 0
    assert call.messages[0] == {"role": "system", "content": "sys"}


class Flaky(litellm.CustomLLM):
    """Fails with a rate limit ``failures`` times, then answers."""

    def __init__(self, failures: int, error: type[Exception] = litellm.RateLimitError):
        super().__init__()
        self.failures, self.error, self.calls = failures, error, 0

    def completion(self, *args, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error(message="slow down", llm_provider="flaky", model="flaky/m")
        return litellm.completion(
            model="openai/gpt-4o-mini", messages=kwargs["messages"], mock_response=EDIT
        )


@pytest.fixture
def flaky():
    def install(failures: int, error: type[Exception] = litellm.RateLimitError) -> Flaky:
        handler = Flaky(failures, error)
        litellm.custom_provider_map = [{"provider": "flaky", "custom_handler": handler}]
        litellm.utils.custom_llm_setup()
        return handler

    yield install
    litellm.custom_provider_map = []


def test_rate_limits_are_retried_with_backoff(flaky):
    handler = flaky(2)
    agent = LLMAgent("flaky/m", AgentOptions(retries=3, extra={"backoff_s": 0.01}))
    reply = agent.reply(request())
    assert reply.text == EDIT and not reply.error
    assert handler.calls == 3
    assert [bool(c.error) for c in reply.calls] == [True, True, False]
    assert "RateLimitError" in reply.calls[0].error


def test_retries_give_up_with_a_recorded_failure(flaky):
    flaky(100)
    reply = LLMAgent("flaky/m", AgentOptions(retries=2, extra={"backoff_s": 0.01})).reply(request())
    assert reply.error.startswith("model call failed") and len(reply.calls) == 3


def test_non_retryable_errors_fail_at_once(flaky):
    handler = flaky(100, litellm.AuthenticationError)
    agent = LLMAgent("flaky/m", AgentOptions(retries=5, extra={"backoff_s": 0.01}))
    with pytest.raises(AgentUnavailable) as stopped:
        agent.reply(request())
    assert handler.calls == 1 and "AuthenticationError" in str(stopped.value)
    assert len(stopped.value.calls) == 1 and "AuthenticationError" in stopped.value.calls[0].error


def test_empty_reply_is_a_failure():
    reply = LLMAgent("openai/gpt-4o-mini", AgentOptions(extra={"mock_response": "  "})).reply(
        request()
    )
    assert reply.error == "the model returned an empty reply" and len(reply.calls) == 1


def write_config(tmp_path, reply: str, **settings) -> str:
    lines = ['agents = ["openai/gpt-4o-mini"]']
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += [
        "[agent_options]",
        "retries = 0",
        "[agent_options.extra]",
        f"mock_response = {json.dumps(reply)}",
    ]
    path = tmp_path / "llm.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_run_with_a_model_records_calls_and_cost(db, tmp_path):
    cfg = write_config(tmp_path, EDIT, budget=3, workers=1)
    res = pb("run", "--config", cfg, "--db", str(db))
    assert res.returncode == 0, res.stderr
    (agent, cost, n_valid) = query(db, "select agent, cost_usd, n_valid from run")[0]
    assert agent == "openai/gpt-4o-mini" and n_valid >= 1
    calls = query(db, "select model, cost_usd, prompt_tokens, program_id from llm_call")
    assert len(calls) == 3 and all(
        c[0] == "openai/gpt-4o-mini" and c[1] > 0 and c[2] > 0 for c in calls
    )
    assert all(c[3] is not None for c in calls)
    assert abs(cost - sum(c[1] for c in calls)) < 1e-12


def test_max_cost_stops_the_run_cleanly(db, tmp_path):
    cfg = write_config(tmp_path, EDIT, budget=50, workers=1, max_cost=0.00004)
    res = pb("run", "--config", cfg, "--db", str(db))
    assert res.returncode == 0, res.stderr
    status, message, n_children, cost = query(
        db, "select status, message, n_children, cost_usd from run"
    )[0]
    assert status == "stopped" and "cost cap" in message and "cost cap" in res.stderr
    assert 1 <= n_children < 50 and cost >= 0.00004
    # Nothing was asked of the model once the cap was reached.
    per_call = query(db, "select max(cost_usd) from llm_call")[0][0]
    assert cost < 0.00004 + 2 * per_call


def test_malformed_replies_go_through_the_fast_error_catcher(db, tmp_path):
    cfg = write_config(tmp_path, "I would rather not edit anything.", budget=2, workers=1, n_fast=2)
    res = pb("run", "--config", cfg, "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert query(db, "select n_failed, n_retries from run")[0] == (2, 4)
    attempts = query(db, "select attempt, stage, error from attempt order by task_key, attempt")
    assert [a[0] for a in attempts] == [0, 1, 2, 0, 1, 2] and {a[1] for a in attempts} == {"edit"}
    assert all("SEARCH/REPLACE" in a[2] or "no edits" in a[2].lower() for a in attempts)
    purposes = [p for (p,) in query(db, "select purpose from llm_call order by request_key")]
    assert purposes == ["edit", "fix", "fix"] * 2
    # The error was fed back to the model in the fix prompt.
    fix_prompt = json.loads(
        query(db, "select messages_json from llm_call where purpose='fix' limit 1")[0][0]
    )
    assert "failed" in fix_prompt[1]["content"]


def test_ensemble_picks_an_agent_per_call_by_weight(db, tmp_path):
    cfg = tmp_path / "ensemble.toml"
    cfg.write_text(
        'agents = ["openai/gpt-4o-mini", "offline"]\nagent_weights = [1.0, 3.0]\nbudget = 40\n'
        'workers = 2\nstrategy = "greedy"\n[agent_options]\nretries = 0\n[agent_options.extra]\n'
        f"mock_response = {json.dumps(EDIT)}\n"
    )
    res = pb("run", "--config", str(cfg), "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert query(db, "select agent from run")[0][0] == "openai/gpt-4o-mini+offline"
    models = [m for (m,) in query(db, "select model from llm_call")]
    share = models.count("offline") / len(models)
    assert set(models) == {"openai/gpt-4o-mini", "offline"} and 0.55 < share < 0.95
    # Only the model's calls cost money.
    assert query(db, "select sum(cost_usd) from llm_call where model='offline'")[0][0] == 0


def test_database_file_is_private(db):
    assert pb("run", "--budget", "1", "--db", str(db)).returncode == 0
    assert db.stat().st_mode & 0o777 == 0o600
