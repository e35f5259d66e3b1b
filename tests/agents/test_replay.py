"""Exact replay: a run re-driven by its recorded responses reaches the same programs and scores."""

from __future__ import annotations

from conftest import pb, query


def programs(db, rid):
    return query(
        db,
        "select code_hash, status, score, island, generation, mode, idea from program "
        "where run_id=? order by id",
        rid,
    )


def test_replay_reproduces_an_islands_run(db):
    common = [
        "--env",
        "circle-packing",
        "--strategy",
        "islands",
        "--budget",
        "30",
        "--workers",
        "1",
        "--seed",
        "11",
        "--strategy-option",
        "template_children=8",
        "--strategy-option",
        "children_per_generation=4",
        "--db",
        str(db),
    ]
    first = pb("run", *common)
    assert first.returncode == 0, first.stderr
    (source,) = query(db, "select id from run")[0]
    replay = pb("run", *common, "--agent", f"replay:{source}")
    assert replay.returncode == 0, replay.stderr
    (copy,) = query(db, "select id from run where id != ?", source)[0]
    assert programs(db, copy) == programs(db, source)
    assert {m for *_, m, _ in programs(db, source)} >= {"template", "meta"}
    assert query(db, "select agent from run where id=?", copy)[0][0] == f"replay:{source}"
    # The replayed run spent nothing and made the same number of calls.
    assert query(db, "select count(*), sum(cost_usd) from llm_call where run_id=?", copy)[0] == (
        query(db, "select count(*) from llm_call where run_id=?", source)[0][0],
        0.0,
    )


def test_replay_of_a_missing_response_is_a_recorded_failure(db):
    assert pb("run", "--budget", "2", "--workers", "1", "--db", str(db)).returncode == 0
    (source,) = query(db, "select id from run")[0]
    res = pb(
        "run",
        "--budget",
        "4",
        "--workers",
        "1",
        "--n-fast",
        "0",
        "--agent",
        f"replay:{source}",
        "--db",
        str(db),
    )
    assert res.returncode == 0, res.stderr
    (copy,) = query(db, "select id from run where id != ?", source)[0]
    errors = [
        e for (e,) in query(db, "select error from program where run_id=? and is_reference=0", copy)
    ]
    assert sum("recorded no response" in e for e in errors) == 2


def test_replay_needs_a_run(db):
    res = pb("run", "--agent", "replay", "--db", str(db))
    assert res.returncode == 2 and "replay:RUN_ID" in res.stderr


def by_task(db, rid):
    """Each task's program (task order: program ids follow the order proposals finish)."""
    return query(
        db,
        "select t.seq, p.code_hash, p.status, p.score, p.generation, p.mode from task t "
        "join program p on p.id = t.program_id where t.run_id=? order by t.seq",
        rid,
    )


def test_replay_of_a_two_worker_run_is_exact_with_one_or_two_workers(db):
    common = ["--strategy", "greedy", "--budget", "12", "--seed", "5", "--db", str(db)]
    assert pb("run", *common, "--workers", "2").returncode == 0
    (source,) = query(db, "select id from run")[0]
    for workers in ("1", "2"):
        res = pb("run", *common, "--workers", workers, "--agent", f"replay:{source}")
        assert res.returncode == 0, res.stderr
    copies = [r for (r,) in query(db, "select id from run where id != ? order by rowid", source)]
    assert len(copies) == 2
    for copy in copies:
        assert by_task(db, copy) == by_task(db, source)
        assert query(db, "select count(*) from program where run_id=? and error != ''", copy) == [
            (0,)
        ]
