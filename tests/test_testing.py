"""``progressbench.testing``: a plugin author's test runs one program through every stage of a
run (static guards, smoke, the sandboxed full evaluation, assess, result guards)."""

from __future__ import annotations

import pytest

from progressbench import plugins
from progressbench.testing import check_program


@pytest.fixture(scope="module")
def reference() -> str:
    return plugins.get_environment("circle-packing").baseline("n26")


def test_the_reference_is_valid_with_its_metric(reference):
    checked = check_program("circle-packing", reference)
    assert checked.valid, checked.reason
    assert checked.smoke is not None and checked.smoke.ok
    assert checked.full is not None and checked.full.candidate_s > 0
    assert checked.metrics["sum_radii"] == pytest.approx(1.65861, abs=1e-4)
    assert checked.reason == "" and all(v.passed for v in checked.static)


def test_a_program_that_does_not_parse_stops_at_the_guards(reference):
    checked = check_program("circle-packing", reference.replace("def ", "def (", 1))
    assert not checked.valid and checked.smoke is None and checked.full is None
    assert "guard syntax" in checked.reason


def test_a_hostile_import_is_rejected_before_it_runs(reference):
    hostile = reference.replace("# EVOLVE-BLOCK-END", "import subprocess\n# EVOLVE-BLOCK-END", 1)
    checked = check_program("circle-packing", hostile)
    assert checked.smoke is None and "forbidden-module" in checked.reason


def test_a_failing_program_is_reported_with_its_error(reference):
    failing = reference.replace(
        "# EVOLVE-BLOCK-END", "raise RuntimeError('broken on purpose')\n# EVOLVE-BLOCK-END", 1
    )
    checked = check_program("circle-packing", failing)
    assert not checked.valid and "broken on purpose" in checked.reason


def test_an_environment_that_is_not_installed_reaches_the_workers(plugin):
    plugin("verify_env")
    env = plugins.get_environment("noisy-test")
    checked = check_program(env, env.baseline("default"), plugin_modules=["verify_env"])
    assert checked.valid, checked.reason
    assert checked.metrics["loss"] == pytest.approx(1.6, abs=0.1)
