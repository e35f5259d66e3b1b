"""The viewer's pages in headless Chromium over a real run: what is rendered is what the store
holds (curve points, grid cells, the changed line of a diff), a running run's page follows it
without a reload, and hostile text from the store is shown, never run."""

from __future__ import annotations

import difflib
import time
from pathlib import Path

from conftest import query
from viewer_support import copy_store, css, serving

from progressbench.store import Program, Store

FINISHED = ("valid", "invalid", "failed", "rejected")

# The fixtures: recorded (a real run), server (serve over it), browser (headless Chromium).
pytest_plugins = ["viewer_support"]


def _polyline_points(find) -> int:
    (line,) = find("#curve polyline.best")
    return len(line.get_attribute("points").split())


def test_run_page_draws_one_point_per_finished_child(recorded, server, browser):
    browser.get(f"{server}/run/{recorded.run_id}")
    find = css(browser)
    children = recorded.finished_children()
    valid = [pid for pid, status in children if status == "valid"]
    assert len(find("#curve")) == 1
    assert _polyline_points(find) == len(children) == 30
    assert len(find("#curve circle.child")) == len(valid)
    assert len(find("#curve line.failure")) == len(children) - len(valid)
    assert find("#curve")[0].get_attribute("data-points") == str(len(children))
    assert recorded.run_id in find("h1")[0].text


def test_grid_shows_the_cells_the_strategy_stored(recorded, server, browser):
    state = recorded.state()
    stored = {tuple(cell): pid for island in state["islands"] for cell, pid in island["grid"]}
    scores = dict(query(recorded.db, "SELECT id, score FROM program"))
    best: dict[tuple, int] = {}
    for island in state["islands"]:
        for cell, pid in island["grid"]:
            held = best.get(tuple(cell))
            if held is None or scores[pid] > scores[held]:
                best[tuple(cell)] = pid
    browser.get(f"{server}/run/{recorded.run_id}")
    filled = css(browser)("#grid rect.cell.filled")
    assert len(stored) > 1 and len(filled) == len(stored)
    assert sorted(int(r.get_attribute("data-program")) for r in filled) == sorted(best.values())
    assert len(css(browser)("table.islands tbody tr")) == len(state["islands"])


def test_program_page_diff_shows_the_changed_line(recorded, server, browser):
    rows = query(
        recorded.db,
        "SELECT c.id, c.code, p.code FROM program c JOIN program p "
        "ON p.id = CAST(json_extract(c.parent_ids_json, '$[0]') AS INTEGER) "
        "WHERE c.run_id = ? AND c.code != p.code ORDER BY c.id LIMIT 1",
        recorded.run_id,
    )
    ((child, code, parent_code),) = rows
    added = [
        line[1:]
        for line in difflib.unified_diff(parent_code.splitlines(), code.splitlines(), lineterm="")
        if line.startswith("+") and not line.startswith("+++")
    ]
    browser.get(f"{server}/run/{recorded.run_id}/program/{child}")
    shown = [e.text for e in css(browser)("pre.diff .add") if not e.text.startswith("+++")]
    assert added and shown == [f"+{line}" for line in added]
    assert code.splitlines()[0] in css(browser)("pre.code")[0].text


def test_leaderboard_links_each_run_to_its_page(recorded, server, browser):
    browser.get(f"{server}/")
    links = [a for a in css(browser)("table.leaderboard a") if a.text == recorded.run_id]
    assert len(links) == 1
    links[0].click()
    assert browser.current_url.endswith(f"/run/{recorded.run_id}")
    assert len(css(browser)("#curve")) == 1


def _child(store: Store, run_id: str, parent: int, **fields) -> Program:
    program = Program(
        run_id=run_id, parent_ids_json=f"[{parent}]", code="x = 1\n", code_hash="h", **fields
    )
    return store.add(program)


def test_a_running_run_updates_without_a_reload(recorded, browser, tmp_path):
    db = copy_store(recorded.db, tmp_path / "live.db")
    store = Store(str(db), create=False)
    run = store.update_run(recorded.run_id, status="running")
    children = len(recorded.finished_children())
    with serving(db) as url:
        browser.get(f"{url.rstrip('/')}/run/{run.id}")
        find = css(browser)
        assert _polyline_points(find) == children
        browser.execute_script("window.notReloaded = true;")
        _child(store, run.id, run.reference_id, status="valid", score=9.0, metric=9.0)
        store.update_run(run.id, n_children=run.n_children + 1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _polyline_points(find) == children:
            time.sleep(0.2)
        assert _polyline_points(find) == children + 1
        assert browser.execute_script("return window.notReloaded === true;")
        store.update_run(run.id, status="finished")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and find("#content")[0].get_attribute("data-live"):
            time.sleep(0.2)
        assert find("#content")[0].get_attribute("data-live") is None  # polling stopped
    store.close()


HOSTILE = "</pre></title><script>window.pwned = 1</script><img src=x onerror='window.pwned=2'>"


def test_hostile_text_from_the_store_is_shown_not_run(recorded, browser, tmp_path: Path):
    db = copy_store(recorded.db, tmp_path / "hostile.db")
    store = Store(str(db), create=False)
    run = store.get_run(recorded.run_id)
    bad = _child(store, run.id, run.reference_id, status="failed", error=HOSTILE, idea=HOSTILE)
    store.update_run(run.id, n_children=run.n_children + 1)
    with serving(db) as url:
        for page in (f"/run/{run.id}", f"/run/{run.id}/program/{bad.id}"):
            browser.get(url.rstrip("/") + page)
            assert browser.execute_script("return window.pwned === undefined;")
            assert "<script>window.pwned = 1</script>" in browser.page_source.replace(
                "&lt;", "<"
            ).replace("&gt;", ">")
            assert not css(browser)("img")
    store.close()
