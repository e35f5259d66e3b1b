"""Programs of several files: one text with a header line per file, edited file by file
(each SEARCH/REPLACE block after its file's name), parsed, diffed, prompted and written into
the sandbox per path; a program of one file is untouched by any of it."""

from __future__ import annotations

import os
import stat

import pytest

from progressbench.contracts.agent import AgentRequest
from progressbench.contracts.environment import Objective
from progressbench.contracts.program import (
    ProgramView,
    is_multi_file,
    join_files,
    split_files,
)
from progressbench.contracts.strategy import StrategyContext
from progressbench.errors import EditError, UserError
from progressbench.run import prompts
from progressbench.run.edits import apply_reply, evolve_regions, protected_changes, unified_diff
from progressbench.run.source import read_user_program
from progressbench.sandbox.loader import (
    compile_program,
    import_folder,
    parse_program,
    write_program,
)
from progressbench_plugins.agents.offline import OfflineAgent
from progressbench_strategies.islands.prompting import implement_prompt

MAIN = (
    "from __future__ import annotations\n\nimport kernels\n\n"
    "# EVOLVE-BLOCK-START\nA = 1\n# EVOLVE-BLOCK-END\n\n\n"
    "def run():\n    return kernels.f(A)\n"
)
KERNELS = (
    "from __future__ import annotations\n\n"
    "# EVOLVE-BLOCK-START\nB = 2.5\n# EVOLVE-BLOCK-END\n\n\n"
    "def f(a):\n    return a + B\n"
)
UTIL = "def helper():\n    return 3\n"
CODE = join_files({"kernels.py": KERNELS, "main.py": MAIN, "pkg/util.py": UTIL})


def block(search: str, replace: str, name: str = "") -> str:
    head = f"{name}\n" if name else ""
    return f"{head}<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def test_the_one_text_splits_back_into_its_files_entry_first():
    assert CODE.startswith("# ===== file: main.py =====\n")
    assert list(split_files(CODE)) == ["main.py", "kernels.py", "pkg/util.py"]
    assert split_files(CODE)["kernels.py"] == KERNELS
    assert join_files(split_files(CODE)) == CODE
    assert not is_multi_file(MAIN) and split_files(MAIN) == {"program.py": MAIN}


def test_blocks_edit_the_files_they_name_in_any_decoration():
    reply = (
        "Raise both.\n\n`kernels.py`:\n```python\n"
        + block("B = 2.5\n", "B = 3.5\n")
        + "```\n\n**main.py**\n"
        + block("A = 1\n", "A = 2\n")
        + block("A = 2\n", "A = 4\n")  # no name line: the same file as the block before
    )
    applied = apply_reply(CODE, reply)
    files = split_files(applied.code)
    assert "B = 3.5\n" in files["kernels.py"] and "A = 4\n" in files["main.py"]
    assert files["pkg/util.py"] == UTIL
    assert applied.blocks == 3
    assert applied.edit.startswith("kernels.py\n<<<<<<< SEARCH\n")
    assert "\nmain.py\n<<<<<<< SEARCH\nA = 2\n" in applied.edit


@pytest.mark.parametrize(
    ("reply", "needle"),
    [
        (block("A = 1\n", "A = 2\n"), "block 1 (reply line 1) names no file"),
        (block("A = 1\n", "A = 2\n", "mian.py"), "names the file 'mian.py', which is not a file"),
        (block("def helper():\n", "def helper2():\n", "pkg/util.py"), "pkg/util.py, which has no EVOLVE blocks"),
        (block("def f(a):\n", "def f(b):\n", "kernels.py"), "kernels.py: block 1 (reply line 2): the SEARCH text matches only protected code (line 8"),
        (block("A = 1\n", "A = 2\n", "kernels.py"), "kernels.py: block 1 (reply line 2): the SEARCH text was not found"),
        (block("B = 2.5\n", "B = 1\n# ===== file: evil.py =====\n", "kernels.py"), "cannot be added"),
        ("```python\n" + CODE + "```\n", "this program has several files"),
    ],
)  # fmt: skip
def test_an_edit_to_an_unknown_file_or_outside_the_blocks_is_refused(reply, needle):
    with pytest.raises(EditError) as err:
        apply_reply(CODE, reply)
    assert needle in str(err.value)


def test_protected_changes_name_the_file_and_its_own_line():
    files = split_files(CODE)
    moved = join_files({**files, "kernels.py": KERNELS.replace("a + B", "a - B")})
    assert protected_changes(CODE, moved) == (
        "in kernels.py: protected line 9 changed: '    return a + B' became '    return a - B'"
    )
    util = join_files({**files, "pkg/util.py": UTIL.replace("3", "4")})
    assert "in pkg/util.py: line 2 changed" in (protected_changes(CODE, util) or "")
    fewer = join_files({k: v for k, v in files.items() if k != "pkg/util.py"})
    assert (
        protected_changes(CODE, fewer)
        == "file pkg/util.py was removed; the program's files are fixed"
    )
    more = join_files({**files, "extra.py": "X = 1\n"})
    assert "a file extra.py was added" in (protected_changes(CODE, more) or "")
    assert (
        protected_changes(CODE, MAIN)
        == "the program's file header lines changed; they are protected"
    )


def test_regions_are_per_file_and_a_broken_file_is_named():
    spans = [CODE[a:b] for a, b in evolve_regions(CODE)]
    assert spans == ["A = 1\n", "B = 2.5\n"]
    broken = join_files({"main.py": MAIN, "kernels.py": "# EVOLVE-BLOCK-START\nB = 1\n"})
    with pytest.raises(
        EditError, match="^kernels.py: EVOLVE-BLOCK-START on line 1 is never closed"
    ):
        evolve_regions(broken)


def test_the_diff_is_one_per_changed_file():
    new = apply_reply(CODE, block("B = 2.5\n", "B = 3.5\n", "kernels.py")).code
    diff = unified_diff(CODE, new)
    assert diff.startswith("--- a/kernels.py\n+++ b/kernels.py\n")
    assert "main.py" not in diff and "-B = 2.5\n+B = 3.5\n" in diff
    assert unified_diff(MAIN, MAIN.replace("A = 1", "A = 2")).startswith("--- a/program.py")


def test_parsing_reads_each_file_as_its_own_module_numbered_as_the_one_text():
    tree = parse_program(CODE)  # two `from __future__` imports: legal only file by file
    lines = CODE.split("\n")
    for node in tree.body:
        assert lines[node.lineno - 1].startswith(("from", "import", "A", "B", "def"))
    compile_program(CODE)
    bad = join_files({"main.py": MAIN, "kernels.py": "x = (\n"})
    with pytest.raises(SyntaxError) as err:
        compile_program(bad)
    assert "(in kernels.py, line 1)" in err.value.msg
    assert bad.split("\n")[err.value.lineno - 1] == "x = ("


def test_the_sandbox_gets_the_files_read_only_with_main_as_the_entry(tmp_path):
    entry = write_program(tmp_path, CODE)
    assert entry == tmp_path / "program" / "main.py" and import_folder(entry) == entry.parent
    assert (tmp_path / "program" / "pkg" / "util.py").read_text() == UTIL
    for path in (entry, tmp_path / "program" / "pkg" / "util.py"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    for folder in (tmp_path / "program", tmp_path / "program" / "pkg"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o555
    single = write_program(tmp_path / "program" / "..", MAIN)
    assert single.name == "program.py" and import_folder(single) is None
    escape = tmp_path / "escape"
    escape.mkdir()
    with pytest.raises(ValueError, match="outside its folder"):
        write_program(escape, join_files({"main.py": MAIN, "../up.py": UTIL}))
    for folder in (tmp_path / "program", tmp_path / "program" / "pkg"):
        os.chmod(folder, 0o755)  # so pytest can clean up


def test_the_prompt_shows_every_file_and_explains_the_name_line():
    view = ProgramView(id=1, code=CODE, valid=True, score=1.0)
    objective = Objective(metric="m", direction="maximize")
    system, user = prompts.edit_prompt("a task", view, [], objective)
    assert "# ===== file: pkg/util.py =====" in user and KERNELS in user
    assert "on its\nown line right before each SEARCH/REPLACE block" in system
    plain, _ = prompts.edit_prompt("a task", view.model_copy(update={"code": MAIN}), [], objective)
    assert "several files" not in plain
    # The islands strategy's implementing call edits too: the same system message.
    ctx = StrategyContext(objective=objective, budget=1, reference_id=1)
    implement, _ = implement_prompt(ctx, "a task", view, "an idea", [])
    assert implement == system


def test_the_offline_agent_edits_every_file_with_blocks_and_names_it():
    edited = set()
    for seed in range(12):
        request = AgentRequest(purpose="edit", system="", prompt="", parent_code=CODE, seed=seed)
        reply = OfflineAgent(None, None).reply(request)
        assert not reply.error
        applied = apply_reply(CODE, reply.text)
        changed = {p for p, t in split_files(applied.code).items() if t != split_files(CODE)[p]}
        edited |= changed
        assert reply.text == OfflineAgent(None, None).reply(request).text  # seeded
    assert edited == {"main.py", "kernels.py"}


def test_an_offline_idea_keeps_its_file_through_implement():
    agent = OfflineAgent(None, None)
    files = set()
    for seed in range(8):
        base = {"system": "", "prompt": "", "parent_code": CODE, "seed": seed}
        idea = agent.reply(AgentRequest(purpose="idea", **base)).text
        implemented = agent.reply(AgentRequest(purpose="implement", idea=idea, **base)).text
        assert implemented.startswith("Implementing the idea")
        (file,) = [p for p in ("main.py", "kernels.py") if f'"file": "{p}"' in idea]
        assert f"\n{file}\n<<<<<<< SEARCH" in implemented
        assert apply_reply(CODE, implemented).code != CODE
        files.add(file)
    assert files == {"main.py", "kernels.py"}


def test_a_directory_is_read_as_its_files_and_whole_file_wraps_each(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "main.py").write_text(MAIN)
    (tmp_path / "kernels.py").write_text(KERNELS.rstrip("\n"))  # gets its final newline
    (tmp_path / "pkg" / "util.py").write_text(UTIL)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "junk.py").write_text("x")
    assert read_user_program(str(tmp_path)) == CODE
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "main.py").write_text("X = 1")
    (plain / "more.py").write_text("Y = 2\n")
    wrapped = split_files(read_user_program(str(plain), whole_file=True))
    assert wrapped == {
        "main.py": "# EVOLVE-BLOCK-START\nX = 1\n# EVOLVE-BLOCK-END\n",
        "more.py": "# EVOLVE-BLOCK-START\nY = 2\n# EVOLVE-BLOCK-END\n",
    }
    with pytest.raises(UserError, match="has no EVOLVE blocks"):
        read_user_program(str(plain))


def test_a_single_file_is_kept_byte_for_byte(tmp_path):
    path = tmp_path / "p.py"
    path.write_bytes(b"# EVOLVE-BLOCK-START\nX = 1\n# EVOLVE-BLOCK-END")  # no final newline
    assert read_user_program(str(path)) == path.read_text()
