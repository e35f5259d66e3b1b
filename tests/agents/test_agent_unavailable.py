"""The public ``AgentUnavailable`` contract, in process with a plugin agent: raised from
``Agent.reply``, its calls are stored, the run stops ``failed`` with its message (exit code 1),
an agent's other exceptions stay recorded failures, and a resume continues the run."""

from __future__ import annotations

from typing import ClassVar

import pytest

from progressbench import AgentUnavailable, hookimpl
from progressbench.contracts.agent import Agent, AgentOptions, AgentReply, AgentRequest, LLMCall
from progressbench.errors import RunFailed, UserError
from progressbench.run.config import RunConfig
from progressbench.run.loop import RunLoop
from progressbench.store import Store
from progressbench_plugins.agents.offline import OfflineAgent


class Gated(Agent):
    """Answers like the offline agent while ``open``; otherwise cannot answer at all."""

    name = "gated"
    open: ClassVar[bool] = False

    def reply(self, request: AgentRequest) -> AgentReply:
        call = LLMCall(
            agent=self.name, model="gated", purpose=request.purpose, messages=request.messages()
        )
        if not Gated.open:
            call.error = "AuthenticationError: no key"
            raise AgentUnavailable("model gated: the provider refused the API key", [call])
        edit = request.model_copy(update={"purpose": "edit"})
        call.response = OfflineAgent(None, AgentOptions()).reply(edit).text
        return AgentReply(text=call.response, calls=[call])


class GatedPlugin:
    @hookimpl
    def register_agents(self, register):
        register(Gated)


@pytest.fixture
def gated(plugin):
    Gated.open = False
    plugin(GatedPlugin(), name="gated-agent")
    return Gated


def test_an_unavailable_agent_stops_the_run_and_a_resume_continues_it(tmp_path, gated):
    store = Store(str(tmp_path / "pb.db"))
    cfg = RunConfig(env="circle-packing", agents=["gated"], strategy="greedy", budget=3, workers=1)
    loop = RunLoop(store, cfg, say=lambda _: None)
    with pytest.raises(RunFailed) as stopped:
        loop.execute()
    assert isinstance(stopped.value, UserError) and stopped.value.exit_code == 1
    assert str(stopped.value).startswith("model gated: the provider refused the API key")
    run = store.get_run(loop._active.id)
    assert run.status == "failed" and run.message.startswith("model gated: the provider refused")
    assert run.n_children == 0
    (call,) = store.llm_calls(run.id)
    assert call.error == "AuthenticationError: no key" and call.request_key == "1:edit:1"

    gated.open = True
    resumed = RunLoop(store, cfg, run=store.get_run(run.id), say=lambda _: None).execute()
    assert resumed.status == "finished" and resumed.n_children == 3
    calls = store.llm_calls(run.id)
    (failed,) = [c for c in calls if c.error]
    # The refused call belongs to the child its task became after the resume.
    (again,) = [c for c in calls if c.request_key == "1:edit:1" and not c.error]
    assert failed.program_id is not None and failed.program_id == again.program_id
