"""`run --program PATH`: a run evolves the user's program (a file, or a directory of files)
instead of the environment's baseline, stores it as its reference, survives `kill -9`, and
refuses a bad program with one line before anything is stored."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import pb, query
from kill import kill_9, start_run, wait_for_children

from progressbench.contracts.program import join_files, split_files

TWO_FILES = Path(__file__).parent.parent / "programs" / "two_file_packing"
BUDGET = 30


def fixture_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TWO_FILES.glob("*.py"))}


def test_a_two_file_program_evolves_in_both_files_and_resumes_after_kill_9(db):
    args = ["--program", str(TWO_FILES), "--budget", str(BUDGET), "--workers", "2"]
    proc = start_run(db, *args, "--strategy", "greedy")
    wait_for_children(db, 6, proc)
    kill_9(proc)
    rid, status = query(db, "select id, status from run")[0]
    assert status == "running"
    done_before = query(db, "select id, code_hash from program where status != 'pending'")

    res = pb("run", "--resume", rid, "--db", str(db))
    assert res.returncode == 0, res.stderr

    n_children, budget, status = query(db, "select n_children, budget, status from run")[0]
    assert (status, n_children, budget) == ("finished", BUDGET, BUDGET)
    children = query(db, "select status from program where is_reference = 0")
    assert len(children) == BUDGET and all(s != "pending" for (s,) in children)
    twice = query(
        db, "select program_id from evaluation where kind = 'full' group by program_id "
        "having count(*) > 1"
    )  # fmt: skip
    assert twice == []
    after = query(db, "select id, code_hash from program where status != 'pending'")
    assert after[: len(done_before)] == done_before
    # The reference is the user's two files, evaluated once, exactly as read.
    (reference,) = query(db, "select code from program where is_reference = 1")
    assert reference[0] == join_files(fixture_files())
    # The offline agent edited both files, each edit naming its file; every child keeps them.
    edits = [e for (e,) in query(db, "select edit from program where is_reference = 0")]
    assert any(e.startswith("main.py\n<<<<<<< SEARCH") for e in edits)
    assert any(e.startswith("pack_kernels.py\n<<<<<<< SEARCH") for e in edits)
    for (code,) in query(db, "select code from program where is_reference = 0"):
        assert list(split_files(code)) == ["main.py", "pack_kernels.py"]
    diff = pb("best", rid, "--diff", "--db", str(db))
    assert diff.returncode == 0 and "--- a/" in diff.stdout
    shown = pb("show", rid, "--db", str(db)).stdout
    assert f"program {TWO_FILES}: main.py (" in shown and "pack_kernels.py (" in shown


def test_a_single_file_program_is_stored_as_it_is(db, tmp_path):
    baseline = Path(__file__).parents[2] / "environments" / "circle_packing" / "baseline.py"
    mine = tmp_path / "mine.py"
    mine.write_text(baseline.read_text().replace("RING1_RADIUS = 0.25", "RING1_RADIUS = 0.26"))
    res = pb("run", "--program", str(mine), "--budget", "3", "--db", str(db))
    assert res.returncode == 0, res.stderr
    (code,) = query(db, "select code from program where is_reference = 1")[0]
    assert code == mine.read_text()
    config = query(db, "select config_json from run")[0][0]
    assert f'"program":"{mine}"' in config.replace(" ", "")


def test_whole_file_lets_agents_edit_a_program_without_markers(db, tmp_path):
    plain = tmp_path / "plain.py"
    plain.write_text(
        "import math\n\nR = 0.05\n\n\ndef run_packing():\n"
        "    pts = [((i % 5 + 0.5) / 5, (i // 5 + 0.5) / 6) for i in range(26)]\n"
        "    return pts, [R * math.sqrt(1.0) for _ in pts]\n"
    )
    no_flag = pb("run", "--program", str(plain), "--budget", "2", "--db", str(db))
    assert no_flag.returncode == 2 and "--whole-file" in no_flag.stderr
    res = pb("run", "--program", str(plain), "--whole-file", "--budget", "4", "--db", str(db))
    assert res.returncode == 0, res.stderr
    (code,) = query(db, "select code from program where is_reference = 1")[0]
    assert code == f"# EVOLVE-BLOCK-START\n{plain.read_text()}# EVOLVE-BLOCK-END\n"
    changed = query(db, "select count(*) from program where is_reference = 0 and edit != ''")
    assert changed[0][0] > 0


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


BLOCK = "# EVOLVE-BLOCK-START\nX = 1\n# EVOLVE-BLOCK-END\n"


@pytest.mark.parametrize(
    ("files", "target", "needle"),
    [
        ({}, "missing.py", "missing.py: no such file or directory"),
        ({"bad.py": BLOCK + "def f(:\n"}, "bad.py", "bad.py: line 4: syntax error"),
        ({"open.py": "# EVOLVE-BLOCK-START\nX = 1\n"}, "open.py", "open.py: EVOLVE-BLOCK-START on line 1 is never closed"),
        ({"stray.py": "X = 1\n# EVOLVE-BLOCK-END\n"}, "stray.py", "stray.py: EVOLVE-BLOCK-END on line 2 has no"),
        ({"plain.py": "X = 1\n"}, "plain.py", "plain.py has no EVOLVE blocks"),
        ({"d/kernels_x.py": BLOCK}, "d", "d: a program directory needs a main.py"),
        ({"d/main.py": BLOCK, "d/kernels_y.py": "def f(:\n"}, "d", "d/kernels_y.py: line 1: syntax error"),
        ({"d/main.py": "X = 1\n", "d/kernels_z.py": "# EVOLVE-BLOCK-START\n"}, "d", "d/kernels_z.py: EVOLVE-BLOCK-START on line 1"),
        ({"d/main.py": "import json\n", "d/json.py": BLOCK}, "d", "its module 'json' has the name of an installed"),
        ({"h.py": BLOCK + "# ===== file: x.py =====\n"}, "h.py", "h.py: line 4 has the form of the line"),
        ({"w.py": BLOCK}, "w.py --whole-file", "w.py has EVOLVE-BLOCK markers already"),
    ],
)  # fmt: skip
def test_a_bad_program_is_one_line_and_nothing_is_stored(db, tmp_path, files, target, needle):
    write(tmp_path, files)
    path, *flags = target.split()
    res = pb("run", "--program", str(tmp_path / path), *flags, "--budget", "2", "--db", str(db))
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: program "), res.stderr
    assert needle in lines[0]
    assert not db.exists() or query(db, "select count(*) from run") == [(0,)]


def test_program_cannot_change_on_resume_and_whole_file_needs_a_program(db):
    res = pb("run", "--whole-file", "--db", str(db))
    assert res.returncode == 2 and "whole_file applies to a program" in res.stderr
    assert pb("run", "--budget", "2", "--db", str(db)).returncode == 0
    rid = query(db, "select id from run")[0][0]
    again = pb("run", "--resume", rid, "--program", str(TWO_FILES), "--db", str(db))
    assert again.returncode == 2 and "cannot change program" in again.stderr


def test_a_replay_with_the_same_program_reproduces_the_run(db):
    args = ["--program", str(TWO_FILES), "--budget", "8", "--workers", "1", "--strategy", "greedy"]
    assert pb("run", *args, "--db", str(db)).returncode == 0
    rid = query(db, "select id from run")[0][0]
    res = pb("run", *args, "--agent", f"replay:{rid}", "--db", str(db))
    assert res.returncode == 0, res.stderr
    replayed = query(db, "select id from run where id != ?", rid)[0][0]
    rows = "select code_hash, status, edit from program where run_id = ? order by id"
    assert query(db, rows, replayed) == query(db, rows, rid)


def test_a_replay_starts_from_the_stored_program_whatever_is_on_disk_now(db, tmp_path):
    mine = write(tmp_path / "mine", fixture_files())
    args = ["--program", str(mine), "--budget", "4", "--workers", "1", "--strategy", "greedy"]
    assert pb("run", *args, "--db", str(db)).returncode == 0
    rid = query(db, "select id from run")[0][0]
    rows = "select code_hash, status, edit from program where run_id = ? order by id"
    # Changed, then gone: each replay reproduces the recorded run all the same.
    for change in (
        lambda: (mine / "pack_kernels.py").write_text("def max_radii(c):\n    return c\n"),
        lambda: shutil.rmtree(mine),
    ):
        change()
        res = pb("run", *args, "--agent", f"replay:{rid}", "--db", str(db))
        assert res.returncode == 0, res.stderr
        replayed = query(db, "select id from run order by created_at desc")[0][0]
        assert replayed != rid and query(db, rows, replayed) == query(db, rows, rid)


def test_the_run_names_the_users_program_when_it_evaluates_or_refuses_it(db, tmp_path):
    mine = write(tmp_path / "mine", fixture_files())
    res = pb("run", "--program", str(mine), "--budget", "1", "--db", str(db))
    assert res.returncode == 0 and f"evaluating program {mine}\n" in res.stdout + res.stderr
    # Not valid here: the user's to fix, not the environment plugin's; no run is kept.
    (mine / "pack_kernels.py").write_text(
        "# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\ndef max_radii(c):\n    return c\n"
    )
    res = pb("run", "--program", str(mine), "--budget", "1", "--db", str(db))
    assert res.returncode == 2
    assert f"error: program {mine} is not valid here: " in res.stderr
    assert "environment" not in res.stderr.splitlines()[-1]
    assert query(db, "select count(*) from run") == [(1,)]
