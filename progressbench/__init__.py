"""progressbench: progress-oriented benchmarks for program-evolving agents.

This module is the public surface for plugin authors: everything an environment, strategy,
agent, guard or evaluator needs is importable from here (``from progressbench import
Environment, Objective, hookimpl``); the modules below it are the platform's own and may
change. Names load on first use, so ``import progressbench`` (and ``progressbench --help``)
stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import pluggy

__version__ = "0.1.0"

# Plugins (built-in and third-party alike) mark their hook implementations with this.
hookimpl = pluggy.HookimplMarker("progressbench")

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    **dict.fromkeys(
        [
            "Assessment",
            "Environment",
            "Feature",
            "Objective",
            "Resources",
            "SANDBOX_KEY",
            "SandboxContext",
            "Variant",
            "format_score",
        ],
        "progressbench.contracts.environment",
    ),
    **dict.fromkeys(
        ["Task", "Proposal", "ProposalSession", "Strategy", "StrategyContext"],
        "progressbench.contracts.strategy",
    ),
    "ProgramView": "progressbench.contracts.program",
    **dict.fromkeys(
        [
            "Agent",
            "AgentOptions",
            "AgentReply",
            "AgentRequest",
            "AgentUnavailable",
            "LLMCall",
            "Purpose",
        ],
        "progressbench.contracts.agent",
    ),
    **dict.fromkeys(["Guard", "Sandbox", "Verdict"], "progressbench.contracts.guard"),
    **dict.fromkeys(
        ["EvalJob", "EvalOutcome", "Evaluator", "Limits"], "progressbench.contracts.evaluator"
    ),
    **dict.fromkeys(["EditError", "PluginError", "UserError"], "progressbench.errors"),
    **dict.fromkeys(
        ["compile_program", "import_folder", "load_program", "parse_program"],
        "progressbench.sandbox.loader",
    ),
    "code_hash": "progressbench.store.hashing",
    **dict.fromkeys(
        ["adopt_orphans", "children_cpu_s", "end_children"], "progressbench.sandbox.accounting"
    ),
    **dict.fromkeys(
        ["install_witness", "open_witness", "read_witness", "spawn_witness", "write_witness"],
        "progressbench.sandbox.witness",
    ),
}
# Modules plugins use as a whole: SEARCH/REPLACE edits and EVOLVE blocks, prompt templates.
_MODULES = {"edits": "progressbench.run.edits", "prompts": "progressbench.run.prompts"}

__all__ = [
    "__version__",
    "hookimpl",
    "Agent",
    "AgentOptions",
    "AgentReply",
    "AgentRequest",
    "AgentUnavailable",
    "Assessment",
    "EditError",
    "Environment",
    "EvalJob",
    "EvalOutcome",
    "Evaluator",
    "Feature",
    "Guard",
    "LLMCall",
    "Limits",
    "Objective",
    "PluginError",
    "ProgramView",
    "Proposal",
    "ProposalSession",
    "Purpose",
    "Resources",
    "SANDBOX_KEY",
    "Sandbox",
    "SandboxContext",
    "Strategy",
    "StrategyContext",
    "Task",
    "UserError",
    "Variant",
    "Verdict",
    "adopt_orphans",
    "children_cpu_s",
    "code_hash",
    "compile_program",
    "end_children",
    "format_score",
    "import_folder",
    "install_witness",
    "load_program",
    "open_witness",
    "parse_program",
    "read_witness",
    "spawn_witness",
    "write_witness",
    "edits",
    "prompts",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    else:
        raise AttributeError(f"module 'progressbench' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from progressbench.contracts.agent import (
        Agent,
        AgentOptions,
        AgentReply,
        AgentRequest,
        AgentUnavailable,
        LLMCall,
        Purpose,
    )
    from progressbench.contracts.environment import (
        SANDBOX_KEY,
        Assessment,
        Environment,
        Feature,
        Objective,
        Resources,
        SandboxContext,
        Variant,
        format_score,
    )
    from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Evaluator, Limits
    from progressbench.contracts.guard import Guard, Sandbox, Verdict
    from progressbench.contracts.program import ProgramView
    from progressbench.contracts.strategy import (
        Proposal,
        ProposalSession,
        Strategy,
        StrategyContext,
        Task,
    )
    from progressbench.errors import EditError, PluginError, UserError
    from progressbench.run import edits, prompts
    from progressbench.sandbox.accounting import adopt_orphans, children_cpu_s, end_children
    from progressbench.sandbox.loader import (
        compile_program,
        import_folder,
        load_program,
        parse_program,
    )
    from progressbench.sandbox.witness import (
        install_witness,
        open_witness,
        read_witness,
        spawn_witness,
        write_witness,
    )
    from progressbench.store.hashing import code_hash
