"""The Store on SQLite: linking a program's LLM calls, one transaction per result, run ids by
prefix, a private database file."""

from __future__ import annotations

import json
import os
import stat

import pytest
from sqlalchemy.exc import IntegrityError

from progressbench.errors import UserError
from progressbench.store import (
    Evaluation,
    LLMCallRecord,
    Program,
    Store,
    TaskRecord,
    VerdictRecord,
    code_hash,
)


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(str(tmp_path / "pb.db"))
    yield s
    s.close()


def new_run(store: Store, run_id: str | None = None):
    fields = dict(env="e", variant="v", strategy="s", agent="a", budget=3, config_json="{}")
    return store.create_run(id=run_id, **fields) if run_id else store.create_run(**fields)


def program(run_id: str, code: str = "x = 1\n", **fields) -> Program:
    return Program(run_id=run_id, code=code, code_hash=code_hash(code), **fields)


def calls(run_id: str, *keys: str) -> list[LLMCallRecord]:
    return [
        LLMCallRecord(run_id=run_id, request_key=k, agent="a", model="m", purpose="edit")
        for k in keys
    ]


def issue(store: Store, run_id: str, seq: int) -> TaskRecord:
    task = TaskRecord(key=f"{run_id}:{seq}", run_id=run_id, seq=seq, task_json="{}")
    store.issue_tasks([task], run_id, {"strategy_state_json": json.dumps({"issued": seq})})
    return task


def test_add_program_links_exactly_the_calls_it_is_given(store):
    run, other = new_run(store), new_run(store)
    task = issue(store, run.id, 1)
    # Two sessions asked "1:edit:1" (a killed one, then its redo); task 10 and another run
    # have look-alike keys.
    store.add_all(calls(run.id, "1:edit:1", "1:fix:2", "1:edit:1", "10:edit:1", "11:fix:1"))
    store.add_all(calls(other.id, "1:edit:1"))
    verdict = VerdictRecord(run_id=run.id, program_id=0, guard="g", stage="static", passed=True)
    prog = store.add_program(
        program(run.id), task.key, [verdict], call_keys=["1:edit:1", "1:fix:2", "1:edit:1"]
    )
    linked = sorted(
        (c.run_id == run.id, c.request_key) for c in store.llm_calls(run.id) + store.llm_calls(other.id)
        if c.program_id == prog.id
    )  # fmt: skip
    assert linked == [(True, "1:edit:1"), (True, "1:edit:1"), (True, "1:fix:2")]
    assert store.tasks(run.id)[0].program_id == prog.id
    # Static verdicts get the program's id when it is written.
    assert [(v.guard, v.program_id) for v in store.verdicts(prog.id)] == [("g", prog.id)]


def test_add_program_without_keys_links_nothing(store):
    run = new_run(store)
    task = issue(store, run.id, 1)
    store.add_all(calls(run.id, "1:edit:1"))
    prog = store.add_program(program(run.id), task.key, [])
    assert [c.program_id for c in store.llm_calls(run.id)] == [None]
    assert store.tasks(run.id)[0].program_id == prog.id


def test_call_keys_are_the_run_s_distinct_request_keys(store):
    run, other = new_run(store), new_run(store)
    store.add_all(calls(run.id, "1:edit:1", "1:edit:1", "2:idea:1"))
    store.add_all(calls(other.id, "9:edit:1"))
    assert store.call_keys(run.id) == {"1:edit:1", "2:idea:1"}


def test_commit_result_is_one_transaction(store):
    run = new_run(store)
    task = issue(store, run.id, 1)
    prog = store.add_program(program(run.id), task.key, [])
    first = Evaluation(run_id=run.id, program_id=prog.id, kind="full", status="ok")
    store.add(first)
    again = Evaluation(run_id=run.id, program_id=prog.id, kind="full", status="ok")
    verdict = VerdictRecord(
        run_id=run.id, program_id=prog.id, guard="g", stage="result", passed=True
    )
    # A second full evaluation breaks the unique constraint: nothing of the result is kept.
    with pytest.raises(IntegrityError):
        store.commit_result(
            prog.id, {"status": "valid", "score": 1.0}, again, [verdict], task.key,
            {"n_children": 1, "strategy_state_json": '{"after": true}'},
        )  # fmt: skip
    assert store.get_program(prog.id).status == "pending"
    assert store.verdicts(prog.id) == [] and len(store.evaluations(run.id)) == 1
    assert store.tasks(run.id)[0].state == "issued"
    kept = store.get_run(run.id)
    assert kept.n_children == 0 and json.loads(kept.strategy_state_json) == {"issued": 1}
    # The same result without the duplicate commits all of it.
    store.commit_result(
        prog.id, {"status": "valid", "score": 1.0}, None, [verdict], task.key, {"n_children": 1}
    )
    assert store.get_program(prog.id).status == "valid" and store.get_program(prog.id).score == 1.0
    assert len(store.verdicts(prog.id)) == 1 and store.tasks(run.id)[0].state == "done"
    assert store.get_run(run.id).n_children == 1


def test_a_run_is_found_by_a_unique_prefix_of_its_id(store):
    new_run(store, "20240101-000000-aaaaaa")
    new_run(store, "20240101-000000-aabbbb")
    new_run(store, "20240202-000000-cccccc")
    assert store.get_run("20240202").id == "20240202-000000-cccccc"
    assert store.get_run("20240101-000000-aab").id == "20240101-000000-aabbbb"
    assert store.get_run("20240101-000000-aaaaaa").id == "20240101-000000-aaaaaa"
    with pytest.raises(UserError, match="'20240101-000000-aa' is ambiguous.*begins 2 runs"):
        store.get_run("20240101-000000-aa")  # two match: say so, not "no run"
    with pytest.raises(UserError, match="no run 'nope'"):
        store.get_run("nope")


def test_new_run_ids_sort_by_time_and_differ(store):
    a, b = new_run(store), new_run(store)
    assert a.id != b.id and len(a.id) == len("20240101-000000-abcdef") and ":" not in a.id


def test_a_new_sqlite_file_is_private(tmp_path):
    path = tmp_path / "fresh.db"
    Store(str(path)).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_write_ahead_log_is_as_private_as_the_database(tmp_path):
    """Field trial: the database was 0600 but its -wal and -shm were 0644, readable by any
    user while a run wrote prompts and responses into them."""
    path = tmp_path / "fresh.db"
    s = Store(str(path))
    new_run(s)  # a write: SQLite creates the log and its index now
    sidecars = [tmp_path / f"fresh.db{suffix}" for suffix in ("-wal", "-shm")]
    assert all(p.exists() for p in sidecars)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in sidecars} == {
        "fresh.db-wal": 0o600,
        "fresh.db-shm": 0o600,
    }
    s.close()


def test_opening_without_create_never_makes_a_file(tmp_path):
    path = tmp_path / "typo.db"
    with pytest.raises(UserError, match="no database at"):
        Store(str(path), create=False)
    assert not path.exists()


def test_an_existing_database_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.db"
    Store(str(path)).close()
    os.chmod(path, 0o640)
    Store(str(path)).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_the_verdict_table_keeps_its_name():
    assert VerdictRecord.__tablename__ == "verdict"


def test_a_program_row_reads_back_its_inspirations(store):
    run = new_run(store)
    prog = store.add(program(run.id, inspiration_ids_json="[4, 2]", parent_ids_json="[1]"))
    assert store.get_program(prog.id).inspiration_ids == [4, 2]
    assert store.get_program(prog.id).parent_ids == [1]
