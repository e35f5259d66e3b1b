"""The one PluginManager, and the registries built from its hooks.

Built-in plugins and third-party ones load the same way: through the ``progressbench``
entry-point group. ``PROGRESSBENCH_LOAD_PLUGINS`` (comma-separated entry-point or
distribution names; empty for none) limits which *external* plugins load; the built-ins that
ship with progressbench always load.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field
from typing import Any

import pluggy

from progressbench import hookspecs
from progressbench.errors import PluginError, UserError

ENTRY_POINT_GROUP = "progressbench"
LOAD_ENV_VAR = "PROGRESSBENCH_LOAD_PLUGINS"
BUILTIN_DIST = "progressbench"

KINDS = {
    "environments": "register_environments",
    "evaluators": "register_evaluators",
    "guards": "register_guards",
    "strategies": "register_strategies",
    "agents": "register_agents",
}

SINGULAR = {
    "environments": "environment",
    "evaluators": "evaluator",
    "guards": "guard",
    "strategies": "strategy",
    "agents": "agent",
}

pm = pluggy.PluginManager("progressbench")
pm.add_hookspecs(hookspecs)

# plugin name -> (distribution name, version), for the ``plugins`` listing.
_origins: dict[str, tuple[str, str]] = {}
_loaded = False


def _allowed_external() -> set[str] | None:
    raw = os.environ.get(LOAD_ENV_VAR)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def register_modules(names: list[str]) -> None:
    """Import and register plugin modules by name (environments that are not installed
    through an entry point: tests, notebooks), once each."""
    for name in names:
        module = importlib.import_module(name)
        if not pm.is_registered(module):
            _register(module, name)


def _register(module: Any, name: str) -> None:
    """Register one plugin; a hook implementation no spec knows (a misspelt hook name) is
    refused, naming the plugin, instead of being silently never called."""
    pm.register(module, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(module)
        hooks = ", ".join(KINDS.values())
        raise PluginError(f"plugin {name!r}: {exc} (the hooks are: {hooks})") from None


def load_plugins() -> pluggy.PluginManager:
    """Load every entry-point plugin once; later calls return the same manager."""
    global _loaded
    if _loaded:
        return pm
    _loaded = True
    allowed = _allowed_external()
    external: set[str] = set()
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        builtin = dist == BUILTIN_DIST
        if not builtin:
            external |= {ep.name, dist}
        if not builtin and allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        if pm.has_plugin(ep.name):
            other = _origins.get(ep.name, ("?", "?"))[0]
            raise PluginError(
                f"plugin name {ep.name!r} is used by both {other} and {dist}; uninstall one of them"
            )
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must name itself
            raise PluginError(f"plugin {ep.name!r} ({dist}) failed to load: {exc}") from exc
        _register(module, ep.name)
        _origins[ep.name] = (dist, version)
    unknown = sorted((allowed or set()) - external)
    if unknown:
        raise PluginError(
            f"{LOAD_ENV_VAR} names {', '.join(map(repr, unknown))}, which no installed plugin "
            f"is (installed: {', '.join(sorted(external)) or 'none but the built-ins'})"
        )
    return pm


@dataclass
class Registered:
    name: str
    obj: Any
    plugin: str


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # What its ``resolve_environment`` builds (the first line of its docstring).
    resolves: str = ""


def registry(kind: str) -> dict[str, Registered]:
    """Everything registered for ``kind`` (one of KINDS), by name. A collision or a bad
    registration raises, naming the plugin(s)."""
    found, problems = _scan(kind)
    if problems:
        raise PluginError(problems[0][1])
    return found


def _scan(kind: str) -> tuple[dict[str, Registered], list[tuple[str, str]]]:
    """What the plugins register for ``kind``, and the problems found on the way, each as
    (plugin, message): ``plugins`` lists them where every other command stops on the first."""
    load_plugins()
    hook = getattr(pm.hook, KINDS[kind])
    found: dict[str, Registered] = {}
    problems: list[tuple[str, str]] = []
    # Oldest first (entry points before runtime registrations): the first name taken keeps it.
    for impl in hook.get_hookimpls():

        def register(obj: Any, _plugin: str = impl.plugin_name) -> None:
            name = getattr(obj, "name", None)
            try:
                if not isinstance(name, str) or not name:
                    raise PluginError(
                        f"plugin {_plugin!r} registered a {SINGULAR[kind]} without a name"
                    )
                if name in found:
                    raise PluginError(
                        f"{SINGULAR[kind]} {name!r} is registered by both "
                        f"{found[name].plugin!r} and {_plugin!r}: uninstall one, or leave one "
                        f"out with {LOAD_ENV_VAR}"
                    )
                _check_kind(kind, obj, _plugin)
            except PluginError as exc:
                problems.append((_plugin, str(exc)))
                return
            found[name] = Registered(name=name, obj=obj, plugin=_plugin)

        impl.function(register=register)
    return found, problems


def _contracts() -> dict[str, tuple[type, bool]]:
    """Each kind's contract, and whether plugins register instances of it (or subclasses)."""
    from progressbench.contracts.agent import Agent
    from progressbench.contracts.environment import Environment
    from progressbench.contracts.evaluator import Evaluator
    from progressbench.contracts.guard import Guard
    from progressbench.contracts.strategy import Strategy

    return {
        "environments": (Environment, True),
        "guards": (Guard, True),
        "strategies": (Strategy, False),
        "agents": (Agent, False),
        "evaluators": (Evaluator, False),
    }


def _check_kind(kind: str, obj: Any, plugin: str) -> None:
    """Environments and guards are registered as instances, the other kinds as classes, each
    of its contract: a mix-up is one line naming the plugin, not a traceback later."""
    contract, as_instance = _contracts()[kind]
    what = SINGULAR[kind]
    if as_instance and isinstance(obj, type):
        raise PluginError(
            f"plugin {plugin!r} registered the class {obj.__name__} as its {what}: register "
            f"an instance ({obj.__name__}())"
        )
    if as_instance and not isinstance(obj, contract):
        raise PluginError(f"plugin {plugin!r} registered {obj!r}, not a {contract.__name__}")
    if not as_instance and not (isinstance(obj, type) and issubclass(obj, contract)):
        raise PluginError(
            f"plugin {plugin!r} registered {obj!r} as its {what}: register a subclass of "
            f"progressbench.{contract.__name__} (the class, not an instance)"
        )


def get(kind: str, name: str) -> Any:
    """The registered object of ``kind`` called ``name``, or a one-line error listing choices."""
    items = registry(kind)
    if name not in items:
        choices = ", ".join(sorted(items)) or "none installed"
        raise PluginError(f"unknown {SINGULAR[kind]} {name!r} (available: {choices})")
    return items[name].obj


# Environments built by ``resolve_environment``, by the stable names they carry: a name that
# resolves to one (``task:tests/x`` in /abs) gets that object (``task:/abs/tests/x``).
_resolved: dict[str, Any] = {}


def get_environment(name: str) -> Any:
    """The registered environment ``name``, or the one a ``resolve_environment`` hook builds
    for it (``task:PATH``); otherwise a one-line error listing the choices."""
    items = registry("environments")
    if name in items:
        return items[name].obj
    if name in _resolved:
        return _resolved[name]
    env = pm.hook.resolve_environment(name=name)
    if env is None:
        return get("environments", name)
    from progressbench.contracts.environment import Environment

    if not isinstance(env, Environment):
        raise PluginError(f"resolve_environment({name!r}) returned {env!r}, not an Environment")
    return _resolved.setdefault(env.name, env)


def trust_of(env_name: str) -> str | None:
    """The trust label of an environment a ``resolve_environment`` hook builds (their names
    hold a colon, ``task:PATH``) when it is not the default; None for the others, and for one
    that no longer resolves (a task folder since removed). Reports call it without loading
    the plugins for runs of registered environments."""
    if ":" not in env_name:
        return None
    from progressbench.contracts.environment import Environment

    try:
        trust: str = get_environment(env_name).trust
    except UserError:
        return None
    return trust if trust != Environment.trust else None


def distribution_of(env_name: str) -> str | None:
    """The distribution whose plugin registered environment ``env_name`` (None for one a
    ``resolve_environment`` hook built or one registered at runtime)."""
    reg = registry("environments").get(env_name)
    return _origins[reg.plugin][0] if reg is not None and reg.plugin in _origins else None


def describe_plugins() -> list[PluginInfo]:
    """Every loaded plugin with its version, the hooks it implements and what it registered."""
    load_plugins()
    infos: dict[str, PluginInfo] = {}
    for plugin_name, plugin in pm.list_name_plugin():
        if plugin_name is None or plugin is None:
            continue
        dist, version = _origins.get(plugin_name, ("(registered at runtime)", ""))
        infos[plugin_name] = PluginInfo(plugin_name, dist, version)
        for caller in pm.get_hookcallers(plugin) or []:
            infos[plugin_name].hooks.append(caller.name)
            if caller.name == "resolve_environment":
                impl = next(i for i in caller.get_hookimpls() if i.plugin is plugin)
                infos[plugin_name].resolves = (impl.function.__doc__ or "").strip().split("\n")[0]
    for kind in KINDS:
        found, problems = _scan(kind)
        for reg in found.values():
            if reg.plugin in infos:
                infos[reg.plugin].registered.setdefault(kind, []).append(reg.name)
        for plugin, message in problems:
            if plugin in infos:
                infos[plugin].problems.append(message)
    for info in infos.values():
        info.hooks.sort()
        for names in info.registered.values():
            names.sort()
    return sorted(infos.values(), key=lambda i: (i.distribution != BUILTIN_DIST, i.name))


def describe_text(infos: list[PluginInfo]) -> str:
    """The ``progressbench plugins`` listing: each plugin, its hooks and what it registered."""
    lines = []
    for info in infos:
        version = f" {info.version}" if info.version else ""
        lines.append(f"{info.name} ({info.distribution}{version})")
        lines.append(f"  hooks: {', '.join(info.hooks)}")
        for kind, names in sorted(info.registered.items()):
            lines.append(f"  {kind}: {', '.join(names)}")
        if info.resolves:
            lines.append(f"  resolves: {info.resolves}")
        lines += [f"  problem: {message}" for message in info.problems]
    return "\n".join(lines)
