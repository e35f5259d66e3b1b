"""The packages an environment declares for its candidates (``Environment.packages``),
checked once at the start of ``run`` and ``eval``: each must import inside the sandbox, where
candidates will import it, or the command stops with one line naming the package and the pip
command. Nothing is ever installed behind the user's back.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
from pathlib import Path
from typing import Any

from progressbench import plugins
from progressbench.contracts.environment import Environment, SandboxContext
from progressbench.contracts.evaluator import EvalJob, Evaluator, Limits
from progressbench.errors import UserError

PROBE = f"{__name__}:probe"


@functools.cache
def _provided() -> dict[str, list[str]]:
    """Canonical distribution name -> the top-level modules it installs."""
    out: dict[str, list[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        for dist in dists:
            if not module.startswith("_"):
                out.setdefault(_canonical(dist), []).append(module)
    return out


def import_names(package: str) -> list[str]:
    """The modules a package installs, the one named like it first (``torch``: torch,
    functorch, torchgen; ``PyYAML``: yaml); for one not installed, its name as a module."""
    wanted = _canonical(package)
    found = sorted(_provided().get(wanted, []), key=lambda m: (_canonical(m) != wanted, m))
    return found or [re.sub(r"[-.]+", "_", package)]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def probe(program: Path, ctx: SandboxContext) -> dict[str, Any]:
    """Sandbox side: import each of ``ctx.options["packages"]`` and report those that fail,
    with why."""
    missing: dict[str, str] = {}
    for package in ctx.options["packages"]:
        try:
            importlib.import_module(import_names(package)[0])
        except Exception as exc:
            missing[package] = f"{type(exc).__name__}: {exc}"
    return {"missing": missing}


def install_hint(env: Environment, missing: list[str]) -> str:
    """The pip command that brings ``missing`` packages of ``env``."""
    if env.install_hint:
        return env.install_hint
    if plugins.distribution_of(env.name) == plugins.BUILTIN_DIST:
        return f"pip install '{plugins.BUILTIN_DIST}[{env.name}]'"
    return "pip install " + " ".join(missing)


def check_packages(env: Environment, evaluator: Evaluator) -> None:
    """A one-line ``UserError`` unless every declared package imports in the sandbox of the
    (started) ``evaluator``."""
    if not env.packages:
        return
    resources = env.resources(evaluator.variant)
    job = EvalJob(
        program="",
        phase="call",
        limits=Limits(seconds=max(resources.smoke_seconds, 30.0), memory_mb=resources.memory_mb),
        options={"entry": PROBE, "packages": list(env.packages)},
    )
    outcome = evaluator.evaluate(job)
    if not outcome.ok:
        raise UserError(
            f"could not check the packages of environment {env.name!r} in the sandbox: "
            f"{outcome.status}: {(outcome.error or outcome.stderr).strip()[-300:]}"
        )
    missing = sorted((outcome.raw or {}).get("missing", {}))
    if missing:
        names = ", ".join(missing)
        raise UserError(
            f"package {names} (which {env.name!r} candidates may import) does not import in the "
            f"sandbox: {install_hint(env, missing)}"
        )


def start_checked(evaluator: Evaluator, env: Environment) -> None:
    """Start ``evaluator`` and check the declared packages; on failure close it again."""
    try:
        evaluator.start()
        check_packages(env, evaluator)
    except BaseException:
        evaluator.close()
        raise
