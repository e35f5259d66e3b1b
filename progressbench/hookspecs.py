"""The public plugin API: one hook per plugin kind, each handing the plugin a ``register``
callback. Every registered object carries a unique ``name``; a second object of the same kind
and name fails loudly, naming both plugins. The base classes are importable from
``progressbench`` itself, and a plugin marks its implementations with
``progressbench.hookimpl``."""

from collections.abc import Callable
from typing import Any

from pluggy import HookspecMarker

hookspec = HookspecMarker("progressbench")


@hookspec
def register_environments(register: Callable[[Any], None]) -> None:
    """Register environments: call ``register(env)`` with an instance of
    ``progressbench.Environment`` for each objective this plugin provides."""


@hookspec
def register_evaluators(register: Callable[[Any], None]) -> None:
    """Register evaluators: call ``register(cls)`` with a subclass of
    ``progressbench.Evaluator`` (it runs candidates under an environment's harness)."""


@hookspec
def register_guards(register: Callable[[Any], None]) -> None:
    """Register guards: call ``register(guard)`` with an instance of ``progressbench.Guard``
    (static checks before a candidate runs, or checks of its result after)."""


@hookspec
def register_strategies(register: Callable[[Any], None]) -> None:
    """Register search strategies: call ``register(cls)`` with a subclass of
    ``progressbench.Strategy``."""


@hookspec
def register_agents(register: Callable[[Any], None]) -> None:
    """Register agents: call ``register(cls)`` with a subclass of ``progressbench.Agent`` (it
    turns a prompt and a parent program into a reply holding edits)."""


@hookspec(firstresult=True)
def resolve_environment(name: str) -> Any:
    """Build the environment a name stands for that no plugin registered (e.g.
    ``task:PATH``): return a ``progressbench.Environment`` whose ``name`` is ``name`` made
    stable (a resolved path), or None for a name this plugin does not understand. Sandbox
    workers rebuild the environment from that name, so the same name must give the same
    environment in a fresh process. The first line of the implementation's docstring is what
    ``progressbench plugins`` shows for it."""
