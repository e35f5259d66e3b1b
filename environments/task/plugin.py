"""Registration: ``--env task:PATH`` builds the environment of the task folder at PATH."""

from __future__ import annotations

from progressbench import Environment, hookimpl

PREFIX = "task:"


@hookimpl
def resolve_environment(name: str) -> Environment | None:
    """task:PATH, an OpenEvolve/SkyDiscover task folder (trust: evaluator-in-sandbox)"""
    if not name.startswith(PREFIX):
        return None
    from .env import task_environment

    return task_environment(name[len(PREFIX) :])
