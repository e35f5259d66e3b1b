"""``progressbench plot`` and ``compare --plot`` write real PNG and SVG files; a plot that
cannot be drawn is one line and exit 2, before any work."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from conftest import pb

PNG = b"\x89PNG\r\n\x1a\n"

# The fixtures: recorded (a real run), server (serve over it), browser (headless Chromium).
pytest_plugins = ["viewer_support"]


@pytest.mark.parametrize(("kind", "suffix"), [("score", "png"), ("grid", "svg")])
def test_plot_writes_the_chart(recorded, tmp_path, kind, suffix):
    out = tmp_path / f"{kind}.{suffix}"
    res = pb("plot", recorded.run_id, "--kind", kind, "-o", str(out), "--db", str(recorded.db))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"wrote {out}"
    if suffix == "png":
        assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000
    else:
        assert ET.parse(out).getroot().tag.endswith("svg")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "frontier", "-o", "f.png"], "declares no efficiency frontier"),
        (["-o", "f.pdf"], "written as .png or .svg"),
        (["-o", "missing/f.png"], "does not exist"),
    ],
)
def test_a_plot_that_cannot_be_drawn_is_one_line(recorded, tmp_path, args, message):
    res = pb("plot", recorded.run_id, *args, "--db", str(recorded.db), cwd=tmp_path)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr


def test_compare_writes_its_plot(tmp_path):
    out, db = tmp_path / "compare.svg", tmp_path / "pb.db"
    args = ["--strategy", "greedy", "--strategy", "best-of-n", "--seeds", "2", "--budget", "4"]
    res = pb("compare", *args, "--db", str(db), "--plot", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith(f"wrote {out}")
    svg = out.read_text()
    assert "greedy" in svg and "best-of-n" in svg


def test_compare_refuses_a_bad_plot_path_before_running(tmp_path):
    db = tmp_path / "pb.db"
    res = pb("compare", "--budget", "4", "--db", str(db), "--plot", str(tmp_path / "c.txt"))
    assert res.returncode == 2 and ".png or .svg" in res.stderr
    assert not db.exists()
