"""The command line end to end on circle-packing, offline, as a user runs it."""

from __future__ import annotations

import json

from conftest import pb, query


def run_id(db) -> str:
    return query(db, "select id from run order by created_at desc limit 1")[0][0]


def test_offline_run_show_best_leaderboard(db):
    res = pb("run", "--budget", "12", "--workers", "2", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert "using the offline agent" in res.stderr
    assert "results in" in res.stdout and str(db) in res.stdout
    rid = run_id(db)
    # The hints name the database they were made for.
    assert f"next: progressbench show {rid} --db {db} |" in res.stdout
    status, n_children, ref, best = query(
        db, "select status, n_children, reference_metric, best_metric from run where id=?", rid
    )[0]
    assert status == "finished" and n_children == 12
    assert best >= ref > 0
    # Every child is stored with a final status and one full evaluation at most.
    statuses = query(db, "select status from program where run_id=? and is_reference=0", rid)
    assert len(statuses) == 12 and all(
        s in ("valid", "invalid", "failed", "rejected") for (s,) in statuses
    )
    assert query(db, "select count(*) from llm_call where run_id=?", rid)[0][0] >= 12

    show = pb("show", rid, "--db", str(db))
    assert show.returncode == 0 and "strategy islands" in show.stdout and "top" in show.stdout

    code = pb("best", rid, "--db", str(db))
    assert "def run_packing" in code.stdout
    diff = pb("best", rid, "--diff", "--db", str(db))
    assert diff.returncode == 0
    assert diff.stdout.startswith("--- a/program.py") or "identical" in diff.stdout

    board = pb("leaderboard", "--format", "json", "--db", str(db))
    rows = json.loads(board.stdout)
    assert len(rows) == 1
    row = rows[0]
    assert row["run"] == rid and row["agent"] == "offline" and row["strategy"] == "islands"
    assert row["variant"] == "n26" and row["evaluations"] == 12
    assert abs(row["delta"] - (best - ref)) < 1e-12
    assert abs(row["record_gap"] - (2.63598325 - best)) < 1e-9
    table = pb("leaderboard", "--db", str(db)).stdout
    assert rid in table and "circle-packing" in table
    md = pb("leaderboard", "--format", "markdown", "--db", str(db)).stdout
    assert md.startswith("### circle-packing") and "| offline" in md


def test_leaderboard_separates_environments_and_strategies(db):
    for strategy in ("greedy", "best-of-n"):
        assert pb("run", "--budget", "4", "--strategy", strategy, "--db", str(db)).returncode == 0
    rows = json.loads(pb("leaderboard", "--format", "json", "--db", str(db)).stdout)
    assert {r["strategy"] for r in rows} == {"greedy", "best-of-n"}
    assert [r["rank"] for r in rows] == [1, 2]
    assert rows[0]["best"] >= rows[1]["best"]
    unknown = pb("leaderboard", "--env", "nosuch", "--db", str(db))
    assert unknown.returncode == 2 and "unknown environment 'nosuch'" in unknown.stderr


def test_config_file_is_stored_with_the_run(db, tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("strategy: best-of-n\nbudget: 3\nseed: 7\nn_fast: 1\n")
    res = pb("run", "--config", str(cfg), "--budget", "4", "--db", str(db))
    assert res.returncode == 0, res.stderr
    stored = json.loads(query(db, "select config_json from run")[0][0])
    assert stored["strategy"] == "best-of-n" and stored["seed"] == 7 and stored["n_fast"] == 1
    assert stored["budget"] == 4  # the flag overrides the file


def test_plugins_listing(db):
    res = pb("plugins", "--json")
    infos = {p["name"]: p for p in json.loads(res.stdout)}
    assert infos["circle_packing"]["registered"] == {"environments": ["circle-packing"]}
    assert infos["circle_packing"]["hooks"] == ["register_environments"]
    assert infos["greedy"]["distribution"] == "progressbench"
    text = pb("plugins").stdout
    assert "offline_agent (progressbench" in text and "agents: offline" in text
