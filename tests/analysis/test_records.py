"""Record tables beside the best score, through the CLI: ``leaderboard`` (table, markdown,
json, html) and ``show`` print each environment's records with their sources, the gap to the
best one in the metric's units and direction, and "new record" only for a strict beat.

The runs are written straight into a store (no evaluation needed: the leaderboard reads the
run rows), for two open-math environments: kissing (maximised, best record 604) and
autocorrelation (an upper bound, minimised, best record 1.5029)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import pb

from progressbench import Objective, plugins
from progressbench.store import Store

# best metric -> the standing it must get, and its gap to the record (metric units).
KISSING = {
    605.0: ("new record", -1.0),
    604.0: ("equals record", 0.0),
    262.0: ("behind record", 342.0),
}
AUTOCORRELATION = {
    1.5: ("new record", 1.5 - 1.5029),
    1.5029: ("equals record", 0.0),
    1.57: ("behind record", 1.57 - 1.5029),
}


def published(value: float) -> str:
    """All the digits of a record, a count without ".0"."""
    return f"{value:g}" if value.is_integer() else repr(value)


def objective(env: str, variant: str) -> Objective:
    return plugins.get_environment(env).objective(variant)


@pytest.fixture(scope="module")
def store_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """A store with three finished runs per environment; returns it and run id -> best."""
    db = tmp_path_factory.mktemp("records") / "pb.db"
    store = Store(str(db))
    bests: dict[str, float] = {}
    for env, variant, values in (
        ("kissing", "d11", KISSING),
        ("autocorrelation", "first", AUTOCORRELATION),
    ):
        obj = objective(env, variant)
        for best in values:
            run = store.create_run(
                env=env, variant=variant, strategy="islands", agent="offline", budget=1,
                config_json="{}", objective_json=obj.model_dump_json(), status="finished",
                best_metric=best, best_score=best if obj.direction == "maximize" else -best,
                n_children=1, n_valid=1,
            )  # fmt: skip
            bests[run.id] = best
    store.close()
    return db, bests


def test_json_carries_the_record_table_gap_and_standing(store_db):
    db, bests = store_db
    res = pb("leaderboard", "--format", "json", "--db", str(db))
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert len(rows) == 6
    for row in rows:
        best = bests[row["run"]]
        expected = (KISSING if row["env"] == "kissing" else AUTOCORRELATION)[best]
        assert row["standing"] == expected[0]
        assert row["record_gap"] == pytest.approx(expected[1], abs=1e-12)
        table = objective(row["env"], row["variant"]).records
        assert row["records"] == [r.model_dump() for r in table]
        assert all(r["source"] and r["value"] for r in row["records"])
    kissing = [r for r in rows if r["env"] == "kissing"]
    assert {r["record"] for r in kissing} == {"EinsteinArena agents, preprint (2026)"}
    assert {r["record_value"] for r in kissing} == {604.0}
    # Minimised: the smallest bound ranks first, and the best record is the smallest one.
    auto = [r for r in rows if r["env"] == "autocorrelation"]
    assert [bests[r["run"]] for r in auto] == [1.5, 1.5029, 1.57]
    assert {r["record_value"] for r in auto} == {1.5029} and auto[0]["direction"] == "minimize"


def marked_rows(text: str) -> dict[str, tuple[str, str]]:
    """run id -> (the gap cell, the standing cell) of its leaderboard line."""
    found = {}
    standing = r"(new record|equals record|behind record)"
    for line in text.splitlines():
        match = re.search(rf"(\d{{8}}-\d{{6}}-[0-9a-f]+)\b.*?(\S+)[\s|]+{standing}\b", line)
        if match:
            found[match[1]] = (match[2], match[3])
    return found


@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_the_text_leaderboards_print_the_table_the_rule_and_the_marker(store_db, fmt):
    db, bests = store_db
    res = pb("leaderboard", "--format", fmt, "--db", str(db))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    # Each record, with its year, all its digits and its source.
    for env, variant in (("kissing", "d11"), ("autocorrelation", "first")):
        for r in objective(env, variant).records:
            value = f" {published(r.value)} "
            line = next(ln for ln in out.splitlines() if r.source in ln and value in ln)
            assert r.holder in line and (r.year is None or str(r.year) in line)
    assert "spheres is maximised: gap to record = record - best" in out
    assert "upper_bound is minimised: gap to record = best - record" in out
    assert "new record only when strictly better than TTT-Discover (2026)'s 1.5029" in out
    assert any(
        ln.endswith("EinsteinArena agents, preprint (2026)'s 604") for ln in out.splitlines()
    )
    # "new record" marks exactly the runs that beat the record, one per environment.
    marked = marked_rows(out)
    assert set(marked) == set(bests)
    for rid, best in bests.items():
        standing, gap = {**KISSING, **AUTOCORRELATION}[best]
        assert marked[rid][1] == standing
        # Six significant digits, signed; an equal best shows +0, never -0.
        assert float(marked[rid][0]) == pytest.approx(gap, rel=1e-5, abs=1e-12)
        assert marked[rid][0][0] == ("-" if gap < 0 else "+")


def test_the_html_leaderboard_carries_the_record_tables(store_db):
    db, _ = store_db
    res = pb("leaderboard", "--format", "html", "--db", str(db))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("<table border=1 class=records>") == 2
    assert "<td>Matolcsi-Vinuesa</td><td>2010</td><td>1.50992</td>" in res.stdout
    assert res.stdout.count("<td>new record</td>") == 2
    assert res.stdout.count("<td>equals record</td>") == 2


def test_show_prints_the_records_and_where_the_best_stands(store_db):
    db, bests = store_db
    for rid, best in bests.items():
        res = pb("show", rid, "--db", str(db))
        assert res.returncode == 0, res.stderr
        assert "published records:" in res.stdout
        env = "kissing" if best in KISSING else "autocorrelation"
        for r in objective(env, "d11" if env == "kissing" else "first").records:
            assert f" {published(r.value)} " in res.stdout
        standing, gap = {**KISSING, **AUTOCORRELATION}[best]
        line = next(ln for ln in res.stdout.splitlines() if ln.startswith(f"best {best:.6g}:"))
        assert line.endswith(f", {standing}")
        shown = float(re.search(r"gap to record ([-+][\d.e+-]+)", line)[1])
        assert shown == pytest.approx(gap, rel=1e-5, abs=1e-12)


def test_records_without_sources_still_read_as_the_older_mapping():
    """Stored runs and older plugins give {holder: value}: records with no year or source."""
    old = Objective.model_validate_json(
        '{"metric": "loss", "direction": "minimize", "records": {"optimum": 0.0}}'
    )
    assert old.best_record() == ("optimum", 0.0) and old.records[0].source == ""
    assert old.standing(0.0) == "equals record" and old.record_gap(0.5) == 0.5
    assert Objective(metric="m", direction="maximize").standing(1.0) is None
