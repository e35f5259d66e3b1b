"""The open-math environments on the platform: every variant's baseline is valid and far from
its record, the task text carries the record table, and each family's baseline goes through
a short offline islands run (the real RunLoop, sandboxed workers) that stays valid or
improves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from progressbench import plugins
from progressbench.run.config import RunConfig
from progressbench.run.loop import RunLoop
from progressbench.store import Store
from progressbench_environments.open_math import plugin as open_math
from progressbench_environments.open_math.base import plain

MODULE = open_math.__name__
FAMILIES = [env.name for env in open_math.ENVIRONMENTS]
VARIANTS = [(env.name, v) for env in open_math.ENVIRONMENTS for v in env.problems]


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    """The plugin, whether or not its entry point is installed (unregistered after, if this
    fixture registered it)."""
    plugins.load_plugins()
    ours = not plugins.pm.is_registered(open_math)
    plugins.register_modules([MODULE])
    yield
    if ours:
        plugins.pm.unregister(open_math)


def test_every_family_is_registered(registered):
    names = set(plugins.registry("environments"))
    assert set(FAMILIES) <= names
    assert len(VARIANTS) == 11


@pytest.mark.parametrize(("name", "variant"), VARIANTS)
def test_each_baseline_is_valid_and_far_from_its_record(registered, name, variant):
    env = plugins.get_environment(name)
    namespace: dict[str, object] = {"__name__": "baseline"}
    exec(compile(env.baseline(variant), f"{name}-{variant}", "exec"), namespace)
    assessment = env.assess({"construction": plain(namespace["construct"]())}, None, variant)
    assert assessment.valid, assessment.reason
    objective = env.objective(variant)
    _, record = objective.best_record()
    gap = -objective.improvement(assessment.metrics[objective.metric], record)
    assert gap > 0.02 * abs(record), "a baseline should leave the search something to do"
    assert assessment.metrics["new_record"] == 0.0
    assert set(assessment.features) >= {f.name for f in env.features(variant)}
    text = env.task_description(variant)
    assert "construct()" in text and "tolerance 0" in text and "Published records" in text


@pytest.mark.parametrize("name", FAMILIES)
def test_a_short_offline_islands_run_keeps_the_baseline_valid(registered, tmp_path, name):
    store = Store(str(tmp_path / "pb.db"))
    config = RunConfig(
        env=name,
        agents=["offline"],
        strategy="islands",
        budget=4,
        workers=1,
        seed=0,
        evaluator_options={"plugin_modules": [MODULE]},
    )
    run = RunLoop(store, config, say=lambda _: None).execute()
    assert run.status == "finished" and run.n_children == 4
    programs = store.programs(run.id)
    reference = next(p for p in programs if p.is_reference)
    assert reference.status == "valid"
    assert run.best_score is not None and run.best_score >= reference.score
    assert run.n_valid >= 1
