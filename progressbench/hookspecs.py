"""The public plugin API: one hook per plugin kind, each handing the plugin a ``register``
callback. Every registered object carries a unique ``name``; a second object of the same kind
and name fails loudly, naming both plugins."""

from pluggy import HookspecMarker

hookspec = HookspecMarker("progressbench")


@hookspec
def register_environments(register):
    """Register environments: call ``register(env)`` with an instance of
    ``progressbench.contracts.environment.Environment`` for each objective this plugin provides."""


@hookspec
def register_evaluators(register):
    """Register evaluators: call ``register(cls)`` with a subclass of
    ``progressbench.contracts.evaluator.Evaluator`` (it runs candidates under an environment's harness)."""


@hookspec
def register_guards(register):
    """Register guards: call ``register(guard)`` with an instance of
    ``progressbench.contracts.guard.Guard`` (static checks before a candidate runs, or checks of its
    result after)."""


@hookspec
def register_strategies(register):
    """Register search strategies: call ``register(cls)`` with a subclass of
    ``progressbench.contracts.strategy.Strategy``."""


@hookspec
def register_agents(register):
    """Register agents: call ``register(cls)`` with a subclass of ``progressbench.contracts.agent.Agent``
    (it turns a prompt and a parent program into a reply holding edits)."""
