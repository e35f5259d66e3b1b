"""Per-agent settings (``[[agents]]`` tables), secrets kept out of the store, prices and
--max-cost, and resume reusing stored replies: the real CLI and litellm's HTTP path against
fake OpenAI servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_env, pb, query
from fake_openai import FakeOpenAI, fault, hang, ok

# litellm fetches its price map from the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
pytest.importorskip("litellm")

EDIT = """Increase the inner ring radius.
<<<<<<< SEARCH
RING1_RADIUS = 0.25  # knob: [0.12, 0.35]
=======
RING1_RADIUS = 0.26  # knob: [0.12, 0.35]
>>>>>>> REPLACE
"""
BAD_EDIT = """Change a line that is not there.
<<<<<<< SEARCH
NO_SUCH_LINE = 1
=======
NO_SUCH_LINE = 2
>>>>>>> REPLACE
"""
# Every child edits the reference, so EDIT always applies.
TOP = 'strategy = "best-of-n"\nworkers = 1\n'
TAIL = "[agent_options.extra]\nbackoff_s = 0.01\n"


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in cli_env().items() if not k.endswith("_API_KEY")}
    return {**base, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra}


def agent_table(model: str, server: FakeOpenAI, **settings) -> str:
    lines = ["[[agents]]", f'model = "{model}"', f'api_base = "{server.api_base}"']
    return "\n".join(lines + [f"{k} = {json.dumps(v)}" for k, v in settings.items()]) + "\n"


def config(tmp_path: Path, head: str, *tables: str) -> str:
    path = tmp_path / "run.toml"
    path.write_text(head + TOP + "".join(tables) + TAIL)
    return str(path)


def test_each_agent_of_an_ensemble_has_its_own_server_key_and_prices(db, tmp_path):
    with FakeOpenAI([ok(EDIT, 100, 10)]) as a, FakeOpenAI([ok(EDIT, 100, 10)]) as b:
        cfg = config(
            tmp_path,
            "budget = 8\nmax_cost = 100\n",
            agent_table(
                "openai/model-a", a, api_key_env="KEY_A",
                input_cost_per_token=0.001, output_cost_per_token=0.002,
            ),
            agent_table(
                "openai/model-b", b, weight=2, api_key="sk-b-secret",
                input_cost_per_token=0.0, output_cost_per_token=0.01,
            ),
        )  # fmt: skip
        res = pb("run", "--config", cfg, "--db", str(db), env=env(KEY_A="sk-a"))
    assert res.returncode == 0, res.stderr
    assert a.count > 0 and b.count > 0 and a.count + b.count == 8
    assert set(a.keys) == {"sk-a"} and set(b.keys) == {"sk-b-secret"}
    costs = dict(query(db, "select model, max(cost_usd) from llm_call group by model"))
    assert costs == pytest.approx({"openai/model-a": 0.12, "openai/model-b": 0.1})
    (stored, agent) = query(db, "select config_json, agent from run")[0]
    assert agent == "openai/model-a+openai/model-b"
    # The key given in the config is not stored; the name of the variable is.
    assert "sk-b-secret" not in stored and "sk-a" not in stored
    settings = json.loads(stored)["agent_settings"]
    assert settings["openai/model-b"]["api_key"] == "**********"
    assert settings["openai/model-a"]["api_key_env"] == "KEY_A"
    assert json.loads(stored)["agent_weights"] == [1.0, 2.0]


def stopped_by_a_refused_key(db, tmp_path, server, **settings) -> tuple[str, str]:
    cfg = config(tmp_path, "budget = 2\n", agent_table("openai/m", server, **settings))
    res = pb("run", "--config", cfg, "--db", str(db), env=env(KEY_M="sk-env"))
    assert res.returncode == 1, res.stderr
    run_id = query(db, "select id from run")[0][0]
    # The hint resumes the run in this database, not in the default one.
    assert f"(progressbench run --resume {run_id} --db {db} once fixed)" in res.stderr
    return run_id, cfg


def test_a_key_from_the_config_is_asked_for_again_on_resume(db, tmp_path):
    with FakeOpenAI([fault(401, "Incorrect API key provided"), ok(EDIT)]) as server:
        run_id, cfg = stopped_by_a_refused_key(db, tmp_path, server, api_key="sk-plain")
        assert "sk-plain" not in query(db, "select config_json from run")[0][0]
        res = pb("run", "--resume", run_id, "--db", str(db), env=env())
        assert res.returncode == 2 and "Traceback" not in res.stderr
        (line,) = res.stderr.strip().splitlines()
        assert "api_key of openai/m" in line and "--config FILE" in line
        # The file again gives the key; a file that changes the experiment is refused.
        other = tmp_path / "other.toml"
        other.write_text(Path(cfg).read_text().replace("best-of-n", "greedy"))
        res = pb("run", "--resume", run_id, "--config", str(other), "--db", str(db), env=env())
        assert res.returncode == 2 and "differs" in res.stderr and "strategy" in res.stderr
        res = pb("run", "--resume", run_id, "--config", cfg, "--db", str(db), env=env())
        assert res.returncode == 0, res.stderr
    assert query(db, "select status, n_children from run")[0] == ("finished", 2)
    assert set(server.keys) == {"sk-plain"}


def test_a_key_from_an_environment_variable_is_read_again_on_resume(db, tmp_path):
    with FakeOpenAI([fault(401, "Incorrect API key provided"), ok(EDIT)]) as server:
        run_id, _ = stopped_by_a_refused_key(db, tmp_path, server, api_key_env="KEY_M")
        res = pb("run", "--resume", run_id, "--db", str(db), env=env())
        assert res.returncode == 2 and "KEY_M is not set" in res.stderr
        res = pb("run", "--resume", run_id, "--db", str(db), env=env(KEY_M="sk-env"))
        assert res.returncode == 0, res.stderr
    assert set(server.keys) == {"sk-env"}


def test_a_cost_cap_no_agent_can_reach_is_an_error_before_the_run(db, tmp_path):
    with FakeOpenAI([ok(EDIT)]) as server:
        cfg = config(tmp_path, "max_cost = 1\n", agent_table("openai/unpriced-model", server))
        res = pb("run", "--config", cfg, "--db", str(db), env=env(OPENAI_API_KEY="sk"))
    assert res.returncode == 2 and server.count == 0
    (line,) = res.stderr.strip().splitlines()
    assert "can never be reached" in line and "openai/unpriced-model" in line
    assert query(db, "select count(*) from run") == [(0,)]


def test_an_unpriced_agent_beside_a_priced_one_is_a_warning(db, tmp_path):
    with FakeOpenAI([ok(EDIT)]) as server:
        cfg = config(
            tmp_path,
            "budget = 2\nmax_cost = 1\n",
            agent_table("openai/unpriced-model", server),
            agent_table("openai/gpt-5-mini", server),
        )
        res = pb("run", "--config", cfg, "--db", str(db), env=env(OPENAI_API_KEY="sk"))
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "openai/unpriced-model" in warnings[0]
    assert "input_cost_per_token" in warnings[0]


def test_a_resumed_task_reuses_the_replies_its_killed_session_stored(db, tmp_path):
    with FakeOpenAI([ok(BAD_EDIT), hang(60)]) as server:
        cfg = config(tmp_path, "budget = 1\nn_fast = 2\n", agent_table("openai/m", server))
        proc = subprocess.Popen(
            [sys.executable, "-m", "progressbench.cli", "run", "--config", cfg, "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env(OPENAI_API_KEY="sk"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        # The fix request hangs: the edit's reply is stored before the fix is asked.
        while server.count < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert server.count == 2
        run_id = query(db, "select id from run")[0][0]
        assert query(db, "select request_key from llm_call") == [("1:edit:1",)]
        server.script = [ok(EDIT)]
        res = pb("run", "--resume", run_id, "--db", str(db), env=env(OPENAI_API_KEY="sk"))
    assert res.returncode == 0, res.stderr
    # Only the request whose reply was lost is asked again: the fix of the stored reply
    # (field trial: two stored calls were asked again, both replies linked to one program).
    assert server.count == 3
    assert "NO_SUCH_LINE" in server.requests[2]["messages"][1]["content"]
    calls = query(db, "select request_key, program_id from llm_call order by id")
    assert [k for k, _ in calls] == ["1:edit:1", "1:fix:2"]
    (program,) = query(db, "select id, status, retries from program where not is_reference")
    assert {p for _, p in calls} == {program[0]} and program[1:] == ("valid", 1)
    assert query(db, "select attempt, stage from attempt") == [(0, "edit")]


def test_api_base_flag_reaches_a_self_hosted_server_for_any_model(db):
    with FakeOpenAI([ok(EDIT)]) as server:
        res = pb(
            "run", "--agent", "openai/my-local-model", "--api-base", server.api_base,
            "--strategy", "best-of-n", "--budget", "2", "--workers", "1", "--db", str(db),
            env=env(OPENAI_API_KEY="sk-local"),
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert server.count == 2 and server.requests[0]["model"] == "my-local-model"
    assert json.loads(query(db, "select config_json from run")[0][0])["api_base"] == server.api_base


def test_a_parameter_the_server_refuses_ends_the_run_with_exit_1(db):
    refusal = fault(400, "Unsupported parameter: 'temperature' is not supported with this model")
    with FakeOpenAI([refusal]) as server:
        res = pb(
            "run", "--agent", "openai/gpt-5", "--api-base", server.api_base,
            "--budget", "3", "--workers", "1", "--db", str(db), env=env(OPENAI_API_KEY="sk"),
        )  # fmt: skip
    assert res.returncode == 1 and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "rejected the request" in errors[0] and "temperature" in errors[0]
    assert query(db, "select status from run") == [("failed",)]


def test_ctrl_c_during_a_hung_model_call_leaves_at_once(db, tmp_path):
    # The run loop used to wait for the children still running before it closed anything:
    # Ctrl-C during a model call (or a long training run) took as long as the call.
    with FakeOpenAI([hang(60)]) as server:
        cfg = config(tmp_path, "budget = 4\n", agent_table("openai/m", server))
        proc = subprocess.Popen(
            [sys.executable, "-m", "progressbench.cli", "run", "--config", cfg, "--db", str(db)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env(OPENAI_API_KEY="sk"),
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while server.count < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert server.count >= 1
        os.killpg(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        try:
            _, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert time.monotonic() - sent < 20 and "Traceback" not in err
    run_id = query(db, "select id, status from run")[0]
    assert run_id[1] == "interrupted"
    assert f"progressbench run --resume {run_id[0]}" in err
    # The tasks whose calls were cut off stay issued: a resume redoes them.
    states = query(db, "select state from task")
    assert states and all(state == "issued" for (state,) in states)
