"""What a candidate's text does to the store (issue 16, class 3): a row built from it is
always storable, and a child whose result the database refuses all the same is recorded as
failed, with why; the run goes on. A fault of the database itself still stops the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from progressbench.contracts.environment import Assessment
from progressbench.contracts.evaluator import EvalOutcome
from progressbench.contracts.strategy import Task
from progressbench.run import rows
from progressbench.store.database import Store
from progressbench.store.schema import StoreError
from progressbench.store.tables import Evaluation


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Store, str, int]:
    store = Store(str(tmp_path / "pb.db"))
    run = store.create_run(
        env="e", variant="v", strategy="s", agent="a", budget=1, config_json="{}"
    )
    task = Task(parent_id=1)
    program = rows.program_row(run.id, task, "a", "x = '\udc80'\n", "", "", 0, "pending", "")
    added = store.add_program(program, None, [])
    assert added.id is not None
    return store, run.id, added.id


def test_rows_from_hostile_text_are_storable(stored: tuple[Store, str, int]) -> None:
    store, run_id, program_id = stored
    outcome = EvalOutcome(status="error", error="bad \udc80\x00" + "x" * 300_000, stdout="\ud800")
    evaluation = rows.evaluation_row(run_id, program_id, outcome, Assessment(valid=False))
    fields = {"status": "failed", "score": None, "metric": None, "error": "why \udc80"}
    rows.commit_result(store, program_id, fields, evaluation, [], None, {})
    got = store.get_program(program_id)
    assert got.status == "failed" and got.error == "why \ufffd"
    assert got.code == "x = '\ufffd'\n"
    ev = store.evaluation(program_id)
    assert ev is not None and ev.stdout == "\ufffd"
    assert ev.error.startswith("[...") and len(ev.error) <= rows.STORED_TEXT_CHARS


def test_an_unstorable_result_fails_the_child_not_the_run(stored: tuple[Store, str, int]) -> None:
    store, run_id, program_id = stored
    # A row built around the builders (none of them lets such text through).
    evaluation = Evaluation(run_id=run_id, program_id=program_id, status="ok", error="\udc80")
    fields = {"status": "valid", "score": 1.0, "metric": 1.0, "error": ""}
    rows.commit_result(store, program_id, fields, evaluation, [], None, {})
    got = store.get_program(program_id)
    assert got.status == "failed" and got.score is None
    assert got.error.startswith("its result could not be stored: 'utf-8' codec can't encode")
    assert store.evaluation(program_id) is None


@pytest.mark.parametrize(
    "fault",
    [OperationalError("commit", {}, Exception("disk I/O error")), StoreError("database gone")],
    ids=["operational", "store"],
)
def test_a_database_fault_still_stops_the_run(
    stored: tuple[Store, str, int], monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    store, _, program_id = stored

    def broken(*args: object) -> None:
        raise fault

    monkeypatch.setattr(store, "commit_result", broken)
    fields = {"status": "valid", "score": 1.0, "metric": 1.0, "error": ""}
    with pytest.raises(type(fault)):
        rows.commit_result(store, program_id, fields, None, [], None, {})
