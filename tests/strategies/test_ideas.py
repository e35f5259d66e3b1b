"""Which idea a child is credited with when the fast error catcher had to fix it."""

from __future__ import annotations

from types import ModuleType

import pytest

from progressbench import hookimpl
from progressbench.contracts.agent import Agent, AgentOptions, AgentReply, AgentRequest, LLMCall
from progressbench.run.config import RunConfig
from progressbench.run.edits import restated_idea
from progressbench.run.loop import RunLoop
from progressbench.store.database import Store
from progressbench_plugins.agents.offline import OfflineAgent


def test_restated_idea_is_a_leading_idea_line_only():
    assert restated_idea("\n  Idea: shrink the step  \n\nedits") == "Idea: shrink the step"
    assert restated_idea("idea: lower case too") == "idea: lower case too"
    assert restated_idea("Fixed the typo.\nIdea: not on the first line") == ""
    assert restated_idea("") == ""


class Scripted(Agent):
    """Stage 1 proposes idea A, stage 2 replies with no edits (an edit failure), and the fix
    either restates the idea it implements instead (``arg`` "restate") or keeps quiet."""

    name = "scripted"

    def reply(self, request: AgentRequest) -> AgentReply:
        if request.purpose == "idea":
            text = "Idea: A, a bold change"
        elif request.purpose == "implement":
            text = "I have nothing to change."
        else:
            edit = OfflineAgent(None, AgentOptions()).reply(
                request.model_copy(update={"purpose": "edit"})
            )
            lead = "Idea: B, a smaller change instead\n\n" if self.arg == "restate" else ""
            text = lead + edit.text
        call = LLMCall(
            agent=self.name, model="scripted", purpose=request.purpose,
            messages=request.messages(), response=text,
        )  # fmt: skip
        return AgentReply(text=text, calls=[call])


@pytest.fixture(scope="module")
def scripted(module_plugin) -> None:
    module = ModuleType("scripted_agent_plugin")

    @hookimpl
    def register_agents(register):
        register(Scripted)

    module.register_agents = register_agents
    module_plugin(module)


@pytest.mark.parametrize(("arg", "credited"), [("restate", "Idea: B"), ("quiet", "Idea: A")])
def test_a_fix_that_abandons_the_idea_is_credited_with_the_one_it_states(
    tmp_path, scripted, arg, credited
):
    store = Store(str(tmp_path / "pb.db"))
    config = RunConfig(
        env="circle-packing", strategy="islands", agents=[f"scripted:{arg}"], budget=2,
        workers=1, strategy_options={"template_children": 0},
    )  # fmt: skip
    run = RunLoop(store, config, say=lambda _: None).execute()
    children = [p for p in store.programs(run.id) if not p.is_reference]
    assert len(children) == 2
    for child in children:
        assert child.retries == 1 and child.status == "valid", child.error
        assert child.idea.startswith(credited), child.idea
