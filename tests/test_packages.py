"""Declared candidate packages (``Environment.packages``): the static guard allows the
standard library and what an environment declares, the sandbox probe names what does not
import, the pip command names the extra, and the main install brings the default's."""

from __future__ import annotations

import tomllib
from pathlib import Path

from conftest import REPO

from progressbench import Environment, SandboxContext, plugins
from progressbench.run.config import RunConfig
from progressbench.run.packages import import_names, install_hint, probe
from progressbench_plugins.guards.static import StaticGuard

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def verdict(env: Environment, code: str):
    return StaticGuard().check_program(code, env.baseline(env.pick_variant(None)), env, "")


def test_the_builtin_environments_declare_what_candidates_may_import():
    circle = plugins.get_environment("circle-packing")
    assert circle.packages == ("numpy", "scipy")
    assert plugins.get_environment("nanogpt").packages == ("torch", "numpy", "triton")
    # The agents are told, in the task text.
    assert "numpy and scipy" in circle.task_description("n26")


def test_the_static_guard_follows_the_declaration():
    circle = plugins.get_environment("circle-packing")
    ok = "import json\nimport numpy as np\nfrom scipy.optimize import minimize\n"
    assert verdict(circle, ok).passed
    refused = verdict(circle, "import sympy\n")
    assert not refused.passed and refused.rule == "module-not-allowed"
    assert "standard library nor among the packages this environment declares" in refused.reason
    assert "numpy, scipy" in refused.reason
    # The deny-list still comes first: declaring nothing never allows subprocess.
    assert verdict(circle, "import subprocess\n").rule == "forbidden-module"

    class Undeclared(Environment):
        name = "undeclared-test"

        def baseline(self, variant: str) -> str:
            return ""

    # No declaration, no allow-list (third-party environments written before it).
    assert verdict(Undeclared(), "import sympy\n").passed


def test_import_names_come_from_the_installed_metadata():
    assert import_names("numpy") == ["numpy"]
    assert import_names("PyYAML") == ["yaml"]
    assert import_names("torch")[0] == "torch" and len(import_names("torch")) > 1
    assert import_names("progressbench-no-such-package") == ["progressbench_no_such_package"]


def test_the_probe_names_what_does_not_import(tmp_path):
    ctx = SandboxContext(
        variant="",
        phase="call",
        seed=0,
        scratch=tmp_path,
        time_limit=10,
        options={"packages": ["numpy", "scipy", "progressbench-no-such-package"]},
    )
    missing = probe(Path("unused.py"), ctx)["missing"]
    assert list(missing) == ["progressbench-no-such-package"]
    assert "ModuleNotFoundError" in missing["progressbench-no-such-package"]


def test_the_pip_command_names_the_extra_that_brings_them():
    circle = plugins.get_environment("circle-packing")
    assert install_hint(circle, ["scipy"]) == "pip install 'progressbench[circle-packing]'"
    extras = PYPROJECT["project"]["optional-dependencies"]
    for env_name in ("circle-packing", "nanogpt"):
        env = plugins.get_environment(env_name)
        named = {r.split(">")[0].split("=")[0].split(";")[0].strip() for r in extras[env_name]}
        assert set(env.packages) <= named, env_name


def test_the_main_install_brings_what_the_default_environment_needs():
    default = plugins.get_environment(RunConfig().env)
    required = {
        r.split(">")[0].split("=")[0].split("!")[0].split(";")[0].strip()
        for r in PYPROJECT["project"]["dependencies"]
    }
    assert set(default.packages) <= required
