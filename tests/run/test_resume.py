"""kill -9 at any moment, then --resume: the budget completes, nothing lost or duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from conftest import pb, query
from kill import kill_9, start_run, wait_for_children

BUDGET = 24


def start(db) -> subprocess.Popen:
    return start_run(db, "--budget", str(BUDGET), "--workers", "2", "--strategy", "greedy")


def snapshot(db):
    return {
        "evaluations": query(
            db, "select id, program_id, kind, status, score from evaluation order by id"
        ),
        "programs": query(
            db, "select id, status, code_hash from program where status != 'pending' order by id"
        ),
        "calls": query(db, "select id, request_key from llm_call order by id"),
    }


def check_complete(db, rid: str) -> None:
    status, n_children, budget = query(
        db, "select status, n_children, budget from run where id=?", rid
    )[0]
    assert status == "finished" and n_children == budget == BUDGET
    children = query(db, "select status from program where run_id=? and is_reference=0", rid)
    assert len(children) == BUDGET
    assert all(s in ("valid", "invalid", "failed", "rejected") for (s,) in children)
    # One full evaluation per program at most, one program per task, every task done.
    dup = query(
        db,
        "select program_id, count(*) from evaluation where kind='full' group by program_id having count(*) > 1",
    )
    assert dup == []
    tasks = query(db, "select state, program_id from task where run_id=?", rid)
    assert len(tasks) == BUDGET and all(state == "done" and pid for state, pid in tasks)
    assert len({pid for _, pid in tasks}) == BUDGET
    evaluated = query(
        db,
        "select count(*) from program p join evaluation e on e.program_id = p.id "
        "where p.run_id=? and p.status in ('valid', 'invalid')",
        rid,
    )[0][0]
    assert (
        evaluated
        == query(
            db, "select count(*) from program where run_id=? and status in ('valid','invalid')", rid
        )[0][0]
    )


@pytest.mark.parametrize("kill_after", [1, 9, 17])
def test_kill_9_then_resume(db, kill_after):
    proc = start(db)
    wait_for_children(db, kill_after, proc)
    kill_9(proc)
    rid = query(db, "select id from run")[0][0]
    before = snapshot(db)
    assert query(db, "select status from run")[0][0] == "running"

    res = pb("run", "--resume", rid, "--db", str(db))
    assert res.returncode == 0, res.stderr
    after = snapshot(db)
    for key in before:  # everything recorded before the kill is still there, unchanged
        # (As sets: a program pending at the kill, below one already done, is finished by
        # the resume under its own id, so it sorts in between.)
        assert set(before[key]) <= set(after[key]), key
    check_complete(db, rid)


def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(db):
    proc = start(db)
    wait_for_children(db, 5, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    rid = query(db, "select id from run")[0][0]
    assert f"progressbench run --resume {rid}" in err
    assert "Traceback" not in err
    assert query(db, "select status from run")[0][0] == "interrupted"
    res = pb("run", "--resume", rid, "--db", str(db))
    assert res.returncode == 0, res.stderr
    check_complete(db, rid)


STUCK_CLEANUP = """
import sys, time
from progressbench.run.session import stop_on_signals
stop_on_signals(limit_s=1.0)
try:
    print("ready", flush=True)  # inside the try: the test's Ctrl-C may follow at once
    time.sleep(60)
except KeyboardInterrupt:
    print("cleaning up", flush=True)
    time.sleep(60)  # a clean-up stuck behind a lock
"""


def test_a_stuck_clean_up_after_ctrl_c_is_cut_off_at_its_limit():
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_CLEANUP],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.stdout.readline() == "cleaning up\n"
        os.killpg(proc.pid, signal.SIGINT)  # a second Ctrl-C does not cut the clean-up short
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert "took more than 1 s: leaving without it" in err and "Traceback" not in err


def test_resumed_islands_run_makes_the_same_choices_as_an_unbroken_one(tmp_path):
    args = [
        "--strategy",
        "islands",
        "--budget",
        "30",
        "--workers",
        "1",
        "--seed",
        "4",
        "--strategy-option",
        "template_children=6",
        "--strategy-option",
        "children_per_generation=4",
        "--strategy-option",
        "migration_interval=2",
    ]
    straight = tmp_path / "straight.db"
    assert pb("run", *args, "--db", str(straight)).returncode == 0
    broken = tmp_path / "broken.db"
    proc = start_run(broken, *args)
    wait_for_children(broken, 13, proc)
    kill_9(proc)
    rid = query(broken, "select id from run")[0][0]
    assert pb("run", "--resume", rid, "--db", str(broken)).returncode == 0

    def history(db):
        return query(
            db,
            "select code_hash, status, score, island, generation, mode, parent_ids_json "
            "from program order by id",
        )

    def ranks(rows):  # parent ids differ between databases only by numbering: compare by position
        return [r[:-1] for r in rows]

    assert ranks(history(broken)) == ranks(history(straight))
    state = lambda db: json.loads(query(db, "select strategy_state_json from run")[0][0])  # noqa: E731
    assert state(broken)["migrations"] == state(straight)["migrations"]
