"""What the pages draw, from a store built through the Store's API: the efficiency frontier
of a nanogpt-like run, lineage through a corrupt parent link, strategies without islands."""

from __future__ import annotations

import json
import re

import pytest

from progressbench.contracts.environment import Objective
from progressbench.store import Evaluation, Program, Store
from progressbench.viewer import data
from progressbench.viewer.plots import plot_run
from progressbench.viewer.server import Viewer

OBJECTIVE = Objective(metric="val_loss", direction="minimize", target=1.0).model_dump_json()
# (train_cost_s, val_loss), the axes nanogpt declares: the third point is beaten on both axes by the second.
POINTS = [(10.0, 3.0), (8.0, 3.5), (9.0, 3.6), (12.0, 2.9)]


@pytest.fixture
def store(tmp_path):
    store = Store(str(tmp_path / "pb.db"))
    yield store
    store.close()


def _run(store: Store, state: dict | None = None, env: str = "nanogpt"):
    run = store.create_run(
        env=env, variant="tiny", strategy="islands", agent="offline", budget=4,
        config_json="{}", objective_json=OBJECTIVE,
        strategy_state_json=json.dumps(state or {}),
    )  # fmt: skip
    ref = store.add(Program(run_id=run.id, code="a\n", code_hash="r", is_reference=True,
                            status="valid", score=-4.0, metric=4.0))  # fmt: skip
    ids = []
    for i, (seconds, loss) in enumerate(POINTS):
        p = store.add(
            Program(
                run_id=run.id,
                parent_ids_json=json.dumps([ids[-1] if ids else ref.id]),
                code=f"a\nb{i}\n",
                code_hash=str(i),
                status="valid",
                score=-loss,
                metric=loss,
                idea=f"idea {i}",
            )  # fmt: skip
        )
        store.add(Evaluation(run_id=run.id, program_id=p.id, status="ok", valid=True,
                             metrics_json=json.dumps({"train_cost_s": seconds, "val_loss": loss})))  # fmt: skip
        ids.append(p.id)
    return store.update_run(run.id, reference_id=ref.id, best_program_id=ids[-1], n_children=4,
                            n_valid=4, best_score=-2.9, best_metric=2.9)  # fmt: skip


def test_the_frontier_shows_every_valid_program_and_joins_the_undominated(store):
    run = _run(store)
    body = Viewer(store, None, 0).handle(f"/run/{run.id}", {}).body.decode()
    frontier = re.search(r'<svg id="frontier".*?</svg>', body, re.S).group(0)
    assert 'data-points="4"' in frontier
    assert frontier.count('class="point on-front"') == 3
    assert frontier.count('class="point"') == 1
    view = data.load(store, run.id)
    assert [(x, y) for x, y, _ in view.frontier.front] == [(8.0, 3.5), (10.0, 3.0), (12.0, 2.9)]


def test_lineage_follows_first_parents_and_stops_at_a_cycle(store):
    run = _run(store)
    view = data.load(store, run.id)
    assert [p.id for p in view.lineage()] == [run.reference_id, *range(2, 6)]
    looped = {**view.programs, 2: data.ProgramRow(**{**vars(view.programs[2]), "parent_id": 5})}
    view.programs = looped
    assert [p.id for p in view.lineage()] == [2, 3, 4, 5]


def test_ideas_are_ranked_by_their_effect_over_the_parent(store):
    run = _run(store)
    ideas = data.load(store, run.id).ideas()
    assert [i.program.idea for i in ideas] == ["idea 0", "idea 3", "idea 2", "idea 1"]
    assert ideas[0].effect == pytest.approx(1.0)  # 4.0 -> 3.0


def test_a_strategy_without_islands_gets_no_island_views(store):
    run = _run(store, {"best": 3, "islands": "not a list"})
    view = data.load(store, run.id)
    assert view.islands == [] and view.grid is None
    body = Viewer(store, None, 0).handle(f"/run/{run.id}", {}).body.decode()
    assert 'id="curve"' in body and 'id="grid"' not in body


def test_a_grid_of_three_axes_is_shown_over_its_first_two(store):
    state = {
        "islands": [{"archive": [2], "grid": [[[0, 1, 0], 2], [[0, 1, 2], 5], [[3, 0, 1], 3]]}]
    }
    run = _run(store, state, env="unknown-env")
    grid = data.load(store, run.id).grid
    assert grid.filled == 3 and [a.bins for a in grid.axes] == [4, 2]
    assert {k: p.id for k, p in grid.cells.items()} == {(0, 1): 5, (3, 0): 3}


def test_plot_draws_the_frontier(store, tmp_path):
    run = _run(store)
    out = tmp_path / "frontier.png"
    assert plot_run(store, run.id, "frontier", str(out)) == f"wrote {out}"
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_a_curve_of_many_children_is_drawn_as_paths_with_every_child():
    from progressbench.viewer import svg

    rows = [
        data.ProgramRow(i, 0, "valid" if i % 10 else "failed", float(i % 7), None, False, 0, 0,
                        "", "", "")
        for i in range(1, svg.DETAIL_LIMIT + 2)
    ]  # fmt: skip
    chart = svg.curve(data.curve(rows, None), None, "score", str)
    assert re.search(r'<polyline class="best" points="([^"]*)"', chart).group(1).count(",") == len(
        rows
    )
    valid = sum(1 for r in rows if r.status == "valid")
    assert f'class="children" data-count="{valid}"' in chart
    assert f'class="failures" data-count="{len(rows) - valid}"' in chart
    assert "<circle" not in chart


def test_a_run_whose_process_is_gone_is_shown_interrupted_and_not_followed(store):
    """A kill -9'd run stays marked running in the store; the viewer, like `show` and the
    leaderboard, shows it interrupted and its page stops polling."""
    run = store.update_run(_run(store).id, status="running")
    store.leases.release_all()  # what a dead process leaves: no live lease
    body = Viewer(store, None, 0).handle(f"/run/{run.id}", {}).body.decode()
    assert '<span class="status interrupted">interrupted' in body and "data-live" not in body
    assert data.version(store, run.id)["status"] == "interrupted"
    assert store.get_run(run.id).status == "running"  # shown, never written
