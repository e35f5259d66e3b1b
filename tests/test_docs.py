"""The documentation's examples stay true."""

from __future__ import annotations

import re
import tomllib

from conftest import REPO

from progressbench.run.config import validate_config


def test_configuration_example_is_a_valid_config():
    text = (REPO / "docs" / "configuration.md").read_text()
    toml = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    config = validate_config(tomllib.loads(toml))
    assert config.strategy == "islands" and config.strategy_options["islands"] == 4


def test_readme_commands_are_the_ci_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "<!-- test-command -->" in readme and "test-command" in ci
    after = readme.split("<!-- test-command -->", 1)[1].splitlines()
    assert after[1] == "```bash" and "pytest" in after[2] and "pip install -e '.[test]'" in after[2]
    assert "progressbench run" in readme.split("<!-- test-command -->", 1)[0]
