"""The plugin system: a real third-party package through a real entry point, collisions,
the load-limiting variable, and inline plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, cli_env, pb, query

from progressbench import hookimpl, hookspecs, plugins
from progressbench.contracts.environment import Environment
from progressbench.errors import PluginError


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """tests/example_plugin installed with pip into a private folder (its own dist-info and
    entry point), then put on PYTHONPATH for the CLI."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(REPO / "tests" / "example_plugin"),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_third_party_plugin_installs_and_runs_end_to_end(example_site, db, tmp_path):
    env = cli_env(PYTHONPATH=str(example_site))
    infos = {p["name"]: p for p in json.loads(pb("plugins", "--json", env=env).stdout)}
    example = infos["example"]
    assert example["distribution"] == "progressbench-example" and example["version"] == "0.2.0"
    assert example["hooks"] == ["register_environments", "register_strategies"]
    assert example["registered"] == {"environments": ["rosenbrock"], "strategies": ["lucky"]}

    res = pb(
        "run",
        "--env",
        "rosenbrock",
        "--strategy",
        "lucky",
        "--budget",
        "8",
        "--db",
        str(db),
        env=env,
    )
    assert res.returncode == 0, res.stderr
    status, ref, best, n = query(
        db, "select status, reference_metric, best_metric, n_children from run"
    )[0]
    assert status == "finished" and n == 8
    assert ref == pytest.approx(24.2)  # Rosenbrock at (-1.2, 1.0)
    assert best <= ref  # minimised
    board = json.loads(pb("leaderboard", "--format", "json", "--db", str(db), env=env).stdout)
    assert board[0]["env"] == "rosenbrock" and board[0]["metric"] == "loss"


def test_load_plugins_variable_limits_external_plugins(example_site, db):
    env = cli_env(PYTHONPATH=str(example_site), PROGRESSBENCH_LOAD_PLUGINS="")
    names = {p["name"] for p in json.loads(pb("plugins", "--json", env=env).stdout)}
    assert "example" not in names and "circle_packing" in names  # built-ins always load
    res = pb("run", "--env", "rosenbrock", "--db", str(db), env=env)
    assert res.returncode == 2 and "unknown environment 'rosenbrock'" in res.stderr
    env["PROGRESSBENCH_LOAD_PLUGINS"] = "progressbench-example"
    names = {p["name"] for p in json.loads(pb("plugins", "--json", env=env).stdout)}
    assert "example" in names


class _Clash:
    class Env(Environment):
        name = "circle-packing"

    @hookimpl
    def register_environments(self, register):
        register(self.Env())


class _Nameless:
    @hookimpl
    def register_strategies(self, register):
        register(object())


@pytest.mark.parametrize(
    ("inline", "kind", "message"),
    [
        (_Clash(), "environments", "environment 'circle-packing' is registered by both"),
        (_Nameless(), "strategies", "registered a strategy without a name"),
    ],
)
def test_collisions_and_nameless_registrations_fail_loudly(plugin, inline, kind, message):
    plugin(inline, name="test-inline")
    with pytest.raises(PluginError, match=message):
        plugins.registry(kind)


def test_inline_plugin_registration_is_attributed(plugin):
    class Inline:
        class Env(Environment):
            name = "inline-env"

        @hookimpl
        def register_environments(self, register):
            register(self.Env())

    inline = plugin(Inline(), name="inline")
    assert plugins.registry("environments")["inline-env"].plugin == "inline"
    info = {i.name: i for i in plugins.describe_plugins()}["inline"]
    assert info.registered == {"environments": ["inline-env"]}
    assert info.distribution == "(registered at runtime)"
    plugin.unregister(inline)
    assert "inline-env" not in plugins.registry("environments")
    with pytest.raises(PluginError, match="unknown environment 'inline-env'"):
        plugins.get_environment("inline-env")


def test_hookspecs_module_holds_only_documented_hook_stubs():
    names = [n for n in dir(hookspecs) if n.startswith("register_")]
    assert sorted(names) == sorted(plugins.KINDS.values())
    for name in names:
        fn = getattr(hookspecs, name)
        assert fn.__doc__ and "register" in fn.__doc__
        assert hasattr(fn, "progressbench_spec")


def test_broken_third_party_plugin_names_itself(tmp_path, db):
    pkg = tmp_path / "broken"
    (pkg / "pb_broken").mkdir(parents=True)
    (pkg / "pb_broken" / "__init__.py").write_text("raise RuntimeError('boom at import')\n")
    (pkg / "pyproject.toml").write_text(
        '[project]\nname = "pb-broken"\nversion = "1.0"\n'
        '[project.entry-points.progressbench]\nbroken = "pb_broken"\n'
        '[tool.setuptools]\npackages = ["pb_broken"]\n'
    )
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(site),
            str(pkg),
        ],
        check=True,
        capture_output=True,
    )
    res = pb("plugins", env=cli_env(PYTHONPATH=str(site)))
    assert res.returncode == 2
    assert res.stderr.strip() == "error: plugin 'broken' (pb-broken) failed to load: boom at import"


def test_a_misspelt_hook_is_refused_naming_the_plugin(tmp_path, monkeypatch):
    """Field trial: ``register_environment`` (no s) was accepted and never called."""
    (tmp_path / "misspelt_plugin.py").write_text(
        "from progressbench import hookimpl\n\n"
        "@hookimpl\n"
        "def register_environment(register):\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginError, match="plugin 'misspelt_plugin'.*register_environment"):
        plugins.register_modules(["misspelt_plugin"])
    assert not plugins.pm.has_plugin("misspelt_plugin")


class _ClassNotInstance:
    class Env(Environment):
        name = "class-not-instance"

    @hookimpl
    def register_environments(self, register):
        register(self.Env)


class _NotAStrategy:
    class Search:
        name = "not-a-strategy"

    @hookimpl
    def register_strategies(self, register):
        register(self.Search)


@pytest.mark.parametrize(
    ("inline", "kind", "message"),
    [
        (_ClassNotInstance(), "environments", r"registered the class Env .*instance \(Env\(\)\)"),
        (_NotAStrategy(), "strategies", r"register a subclass of progressbench\.Strategy"),
    ],
)
def test_a_registration_of_the_wrong_kind_is_one_line(plugin, inline, kind, message):
    plugin(inline, name="wrong-kind")
    with pytest.raises(PluginError, match=f"plugin 'wrong-kind'.*{message}"):
        plugins.registry(kind)


def test_a_misspelt_name_in_the_load_variable_is_an_error(example_site):
    env = cli_env(PYTHONPATH=str(example_site), PROGRESSBENCH_LOAD_PLUGINS="progressbench-exampel")
    res = pb("plugins", env=env)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "PROGRESSBENCH_LOAD_PLUGINS names 'progressbench-exampel'" in res.stderr


def test_the_listing_survives_a_collision_and_says_how_to_resolve_it(plugin):
    """Field trial: a duplicate name broke every command, ``plugins`` included."""
    plugin(_Clash(), name="clashing")
    with pytest.raises(PluginError, match="registered by both"):
        plugins.registry("environments")
    infos = {i.name: i for i in plugins.describe_plugins()}
    assert infos["circle_packing"].registered["environments"] == ["circle-packing"]
    (problem,) = infos["clashing"].problems
    assert "'circle-packing' is registered by both 'circle_packing' and 'clashing'" in problem
    assert "PROGRESSBENCH_LOAD_PLUGINS" in problem
    assert f"  problem: {problem}" in plugins.describe_text(list(infos.values()))
