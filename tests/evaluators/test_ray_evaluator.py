"""The ray evaluator on a local Ray cluster: placement by the environment's resources,
candidates sandboxed inside each actor like ``local``, lost actors replaced."""

from __future__ import annotations

import os
import sys
import time

import pytest
from conftest import pb, query

from progressbench import plugins
from progressbench.contracts.evaluator import EvalJob, Limits
from progressbench.errors import UserError

ray = pytest.importorskip("ray")  # in the test extra: CI always has it

KILL_WORKER = "import os\nos.kill(os.getppid(), 9)\n"


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def env():
    return plugins.get_environment("circle-packing")


def job(code: str, mode: str = "full") -> EvalJob:
    return EvalJob(program=code, phase=mode, limits=Limits(seconds=30, memory_mb=2048))


def test_evaluates_in_sandboxed_actors_and_survives_hostile_code_and_lost_actors(cluster, env):
    evaluator_cls = plugins.get("evaluators", "ray")
    with evaluator_cls(env, "n26", 2, {"backstop_s": 30}) as evaluator:
        where = evaluator.isolation
        assert where["pid"] != os.getpid() and where["host"]
        outcome = evaluator.evaluate(job(env.baseline("n26")))
        assert outcome.ok, outcome.error
        assert env.assess(outcome.raw, outcome.verified, "n26").valid
        # Ray reserved the environment's cpus per actor: both of the cluster's two.
        assert ray.cluster_resources()["CPU"] == 2
        deadline = time.monotonic() + 10  # the resource view is eventually consistent
        while ray.available_resources().get("CPU", 0) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ray.available_resources().get("CPU", 0) == 0
        # A candidate that kills its worker takes down neither the actor nor the run.
        hostile = evaluator.evaluate(job(KILL_WORKER))
        assert not hostile.ok
        assert evaluator.evaluate(job(env.baseline("n26"))).ok
        # An actor that dies between jobs is reported once, then replaced.
        for actor in list(evaluator._actors):
            ray.kill(actor)
        lost = [evaluator.evaluate(job(env.baseline("n26"))) for _ in range(2)]
        assert {o.status for o in lost} == {"worker-lost"}
        assert all("ray actor lost" in o.error for o in lost)
        assert evaluator.evaluate(job(env.baseline("n26"))).ok


def test_bad_options_and_a_missing_ray_are_clear_errors(env, monkeypatch):
    evaluator_cls = plugins.get("evaluators", "ray")
    with pytest.raises(UserError, match="unknown option.*adress"):
        evaluator_cls(env, "n26", 1, {"adress": "auto"})
    with pytest.raises(UserError, match="'local' option must be a table"):
        evaluator_cls(env, "n26", 1, {"local": "fast"})
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"needs ray: pip install 'progressbench\[ray\]'"):
        evaluator_cls(env, "n26", 1).start()


def test_a_run_through_the_cli(db):
    res = pb(
        "run", "--env", "circle-packing", "--strategy", "greedy", "--budget", "4",
        "--workers", "2", "--evaluator", "ray", "--db", str(db),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    assert query(db, "select status, n_children, n_valid > 0 from run")[0] == ("finished", 4, 1)
