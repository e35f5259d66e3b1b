"""RunConfig: one-line errors naming the field, TOML and YAML files, a ``[run]`` table, and
flags over file values."""

from __future__ import annotations

import json

import pytest

from progressbench.errors import UserError
from progressbench.run.config import (
    RunConfig,
    build_config,
    read_config_file,
    validate_config,
)


def error_of(values: dict) -> str:
    with pytest.raises(UserError) as info:
        validate_config(values)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"budget": 0},
            "invalid config: budget: Input should be greater than or equal to 1 (got 0)",
        ),
        ({"budgte": 5}, "invalid config: budgte: unknown setting (got 5)"),
        ({"workers": "many"}, "invalid config: workers: Input should be a valid integer"),
        ({"max_cost": -1}, "invalid config: max_cost: Input should be greater than 0 (got -1)"),
        ({"n_fast": 11}, "invalid config: n_fast: Input should be less than or equal to 10"),
        ({"agent_options": {"retries": "x"}}, "invalid config: agent_options.retries: "),
        ({"strategy_options": "x"}, "invalid config: strategy_options: Input should be a valid"),
    ],
)
def test_an_invalid_value_is_one_line_naming_the_field(values, expected):
    assert error_of(values).startswith(expected)


def test_several_errors_are_counted_on_the_same_line():
    assert error_of({"budget": 0, "seed": -1, "n_fast": 99}).endswith("(+2 more)")


def test_weights_must_be_positive_and_match_the_agents():
    assert "weights must be positive" in error_of({"agents": ["a"], "agent_weights": [0]})
    message = error_of({"agents": ["a", "b"], "agent_weights": [1.0]})
    assert "agent_weights has 1 values for 2 agents" in message


def test_defaults_describe_a_complete_run():
    config = validate_config({})
    assert (config.env, config.strategy, config.budget, config.n_fast) == (
        "circle-packing", "islands", 100, 3,
    )  # fmt: skip
    assert config.agents == [] and config.workers is None and config.guards is None
    # What is stored with a run reads back as the same config.
    assert RunConfig.model_validate_json(config.model_dump_json()) == config


def test_a_toml_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'budget = 7\nstrategy = "greedy"\nagents = ["offline"]\n'
        "[strategy_options]\nislands = 2\n[agent_options]\nretries = 1\n"
    )
    values = read_config_file(path)
    assert values == {
        "budget": 7, "strategy": "greedy", "agents": ["offline"],
        "strategy_options": {"islands": 2}, "agent_options": {"retries": 1},
    }  # fmt: skip
    config = validate_config(values)
    assert config.budget == 7 and config.agent_options.retries == 1


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".YAML"])
def test_a_yaml_file(tmp_path, suffix):
    path = tmp_path / f"run{suffix}"
    path.write_text("budget: 4\nenv_options:\n  size: 3\nguards: [static]\n")
    assert read_config_file(path) == {"budget": 4, "env_options": {"size": 3}, "guards": ["static"]}


def test_an_empty_yaml_file_is_no_settings(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert read_config_file(path) == {}


@pytest.mark.parametrize("name", ["shared.toml", "shared.yaml"])
def test_a_run_table_is_read_alone(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".toml"):
        path.write_text("[tool.other]\nx = 1\n\n[run]\nbudget = 9\nseed = 2\n")
    else:
        path.write_text("tool:\n  other: 1\nrun:\n  budget: 9\n  seed: 2\n")
    assert read_config_file(path) == {"budget": 9, "seed": 2}


def test_file_errors_are_one_line(tmp_path):
    missing = tmp_path / "missing.toml"
    with pytest.raises(UserError, match=r"config file '.*missing.toml' does not exist"):
        read_config_file(missing)
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("budget = = 3\n[unclosed\n")
    with pytest.raises(UserError, match=r"is not valid TOML: ") as info:
        read_config_file(bad_toml)
    assert "\n" not in str(info.value)
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("budget: [1, 2\n")
    with pytest.raises(UserError, match=r"is not valid YAML: ") as info:
        read_config_file(bad_yaml)
    assert "\n" not in str(info.value)
    listed = tmp_path / "list.yaml"
    listed.write_text("- budget\n- 3\n")
    with pytest.raises(UserError, match="must hold a table of settings at top level"):
        read_config_file(listed)


def test_flags_override_the_file_and_unset_flags_do_not(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('budget = 7\nstrategy = "greedy"\nseed = 5\n')
    config = build_config(read_config_file(path), {"budget": 12, "seed": None, "workers": 2})
    assert (config.budget, config.strategy, config.seed, config.workers) == (12, "greedy", 5, 2)
    with pytest.raises(UserError, match="invalid config: budget"):
        build_config(read_config_file(path), {"budget": 0})


# --- agents as tables, per-agent settings, secrets ---------------------------------------
def test_agent_tables_become_specs_weights_and_settings(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        'agents = ["offline", {model = "openai/a", weight = 2, api_base = "http://h:1/v1", '
        'api_key_env = "A_KEY", input_cost_per_token = 1e-6, output_cost_per_token = 2e-6}]\n'
    )
    config = build_config(read_config_file(path), {})
    assert config.agents == ["offline", "openai/a"] and config.agent_weights == [1.0, 2.0]
    own = config.agent_settings["openai/a"]
    assert own.api_base == "http://h:1/v1" and own.api_key_env == "A_KEY"
    # A stored config has one shape: validating it again changes nothing.
    assert validate_config(config.model_dump()) == config
    # Agents named by flags keep the file's settings for them, not its weights.
    flagged = build_config(read_config_file(path), {"agents": ["openai/a"]})
    assert flagged.agent_weights == [] and "openai/a" in flagged.agent_settings


@pytest.mark.parametrize(
    ("agents", "expected"),
    [
        ([{"weight": 2}], "each [[agents]] table needs a model"),
        (["m", {"model": "m"}], "'m' is listed twice"),
        ([{"model": "m", "api_key": "k", "api_key_env": "K"}], "not both"),
        ([{"model": "m", "input_cost_per_token": 1e-6}], "give both input_cost_per_token"),
        ([{"model": "m", "api_key_env": "not a name"}], "api_key_env"),
        ([{"model": "m", "temprature": 1}], "agent_settings.m.temprature: unknown setting"),
    ],
)
def test_bad_agent_tables_are_one_line(agents, expected):
    assert expected in error_of({"agents": agents})


def test_an_api_key_is_never_in_the_stored_config():
    config = validate_config(
        {
            "agents": [{"model": "openai/a", "api_key": "sk-one"}],
            "agent_options": {"extra": {"api_key": "sk-two"}},
        }
    )
    stored = config.model_dump_json()
    assert "sk-one" not in stored and "sk-two" not in stored and "**********" in stored
    assert config.redacted_keys() == []
    # What a resume reads back names the keys it must be given again.
    again = validate_config(json.loads(stored))
    assert again.redacted_keys() == ["openai/a", "agent_options"]
    # In memory the keys are there, for the agents.
    from progressbench.run.agents import options_for

    assert options_for("openai/a", config).extra["api_key"].get_secret_value() == "sk-one"


def test_the_run_s_api_base_is_the_default_of_agents_without_their_own():
    from progressbench.run.agents import options_for

    config = validate_config(
        {
            "agents": ["openai/a", {"model": "openai/b", "api_base": "http://b/v1"}],
            "api_base": "http://all/v1",
            "agent_options": {"extra": {"api_base": "http://old/v1"}},
        }
    )
    assert options_for("openai/a", config).extra["api_base"] == "http://all/v1"
    assert options_for("openai/b", config).extra["api_base"] == "http://b/v1"


# --- prompt templates ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("where", "text", "expected"),
    [
        ("edit.txt", "$task $nonsense", "edit.txt: unknown placeholder $nonsense"),
        ("circle-packing/fix.txt", "${idea} $ nope", "fix.txt: a $ that is no placeholder"),
        ("idea.txt", "$tried $errors", "idea.txt: unknown placeholder $errors"),
    ],
)
def test_a_bad_prompt_template_stops_before_the_run(tmp_path, where, text, expected):
    from conftest import pb, query

    folder = tmp_path / "prompts"
    (folder / "circle-packing").mkdir(parents=True)
    (folder / where).write_text(text)
    db = tmp_path / "pb.db"
    res = pb("run", "--prompts", str(folder), "--budget", "1", "--db", str(db))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert expected in line and str(folder) in line
    assert not db.exists() or query(db, "select count(*) from run") == [(0,)]


def test_a_prompt_template_with_known_placeholders_runs(tmp_path):
    from conftest import pb

    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "inspiration.txt").write_text("## $n ($score)\n$code\n")
    (folder / "notes.txt").write_text("$anything: not a template name, left alone")
    res = pb("run", "--prompts", str(folder), "--budget", "2", "--db", str(tmp_path / "pb.db"))
    assert res.returncode == 0, res.stderr


def test_every_toml_example_in_the_agent_docs_is_a_valid_config():
    import re
    import tomllib

    from conftest import REPO

    text = (REPO / "docs" / "agents.md").read_text()
    blocks = re.findall(r"```toml\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        config = validate_config(tomllib.loads(block))
        assert config.agents and set(config.agent_settings) <= set(config.agents)
