"""SEARCH/REPLACE parsing and application, confined to EVOLVE blocks."""

from __future__ import annotations

import re

import pytest

from progressbench.errors import EditError
from progressbench.run.edits import (
    Block,
    apply_reply,
    evolve_regions,
    parse_blocks,
    protected_changes,
    unified_diff,
)

PROGRAM = """\
import math

SCALE = 2


def harness(x):
    return x * SCALE


# EVOLVE-BLOCK-START
def step(x):
    y = x + 1
    return y * 2


def decay(x):
    return x * 0.5
# EVOLVE-BLOCK-END

print(harness(step(3)))
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


# --- evolve_regions ---------------------------------------------------------------------


def test_regions_span_the_text_between_marker_lines():
    [(start, end)] = evolve_regions(PROGRAM)
    inside = PROGRAM[start:end]
    assert inside.startswith("def step(x):\n")
    assert inside.endswith("    return x * 0.5\n")
    assert "EVOLVE" not in inside


def test_several_regions_and_markers_in_strings_are_ignored():
    code = (
        'NOTE = "# EVOLVE-BLOCK-START is a marker"\n'
        "# EVOLVE-BLOCK-START\na = 1\n# EVOLVE-BLOCK-END\n"
        "b = 2\n"
        "    # EVOLVE-BLOCK-START (indented, with a note)\nc = 3\n    # EVOLVE-BLOCK-END\n"
    )
    assert [code[s:e] for s, e in evolve_regions(code)] == ["a = 1\n", "c = 3\n"]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("a = 1\n", "no evolvable code"),
        ("# EVOLVE-BLOCK-START\na = 1\n", "line 1 is never closed"),
        ("a = 1\n# EVOLVE-BLOCK-END\n", "EVOLVE-BLOCK-END on line 2 has no"),
        (
            "# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-START\n# EVOLVE-BLOCK-END\n",
            "nested EVOLVE-BLOCK-START on line 2",
        ),
    ],
)
def test_bad_markers_raise(code, message):
    with pytest.raises(EditError, match=message):
        evolve_regions(code)


# --- parse_blocks ------------------------------------------------------------------------


def test_parse_several_blocks_with_prose_and_fences():
    reply = (
        "I will make two changes.\n"
        "```python\n" + block("    y = x + 1\n", "    y = x + 2\n") + "```\n"
        "And a second one:\n"
        "```\n" + block("    return x * 0.5\n", "    return x * 0.25\n    # halved\n") + "```\n"
        "Done.\n"
    )
    blocks = parse_blocks(reply)
    assert blocks == [
        Block(search="    y = x + 1\n", replace="    y = x + 2\n", index=1, line=3),
        Block(
            search="    return x * 0.5\n",
            replace="    return x * 0.25\n    # halved\n",
            index=2,
            line=11,
        ),
    ]


def test_parse_accepts_crlf_and_empty_replace():
    reply = "<<<<<<< SEARCH\r\na = 1\r\n=======\r\n>>>>>>> REPLACE\r\n"
    assert parse_blocks(reply) == [Block(search="a = 1\n", replace="", index=1, line=1)]


def test_parse_returns_nothing_for_prose():
    assert parse_blocks("Just some thoughts.\n```python\nx = 1\n```\n") == []


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ("prose\n<<<<<<< SEARCH\na\n", r"block 1 \(reply line 2\): the reply ends before its ="),
        (
            block("a\n", "b\n") + "<<<<<<< SEARCH\na\n=======\nb\n",
            r"block 2 \(reply line 6\): the reply ends before its >>>>>>> REPLACE",
        ),
        (
            "<<<<<<< SEARCH\na\n<<<<<<< SEARCH\n",
            r"block 1 \(reply line 1\): a new <<<<<<< SEARCH on reply line 3",
        ),
        (
            "<<<<<<< SEARCH\na\n=======\nb\n<<<<<<< SEARCH\n",
            r"block 1 \(reply line 1\): .* before this block's >>>>>>> REPLACE",
        ),
        ("text\n=======\n", "stray ======= on reply line 2"),
        ("text\n>>>>>>> REPLACE\n", "stray >>>>>>> REPLACE on reply line 2"),
        ("<<<<<<< SEARCH\na\n>>>>>>> REPLACE\n", r"block 1 .* REPLACE on reply line 3 before ="),
        ("<<<<<<< SEARCH\na\n=======\nb\n=======\n", "a second ======= on reply line 5"),
    ],
)
def test_malformed_blocks_name_block_and_line(reply, message):
    with pytest.raises(EditError, match=message):
        parse_blocks(reply)


# --- apply_reply: diffs -------------------------------------------------------------------


def test_apply_one_block():
    applied = apply_reply(PROGRAM, "Tweak:\n" + block("    y = x + 1\n", "    y = x + 3\n"))
    assert applied.kind == "diff"
    assert applied.blocks == 1
    assert applied.code == PROGRAM.replace("y = x + 1", "y = x + 3")
    assert applied.edit == block("    y = x + 1\n", "    y = x + 3\n")


def test_blocks_apply_in_order_on_the_evolving_result():
    reply = block("    y = x + 1\n", "    y = x + 5\n") + block(
        "    y = x + 5\n    return y * 2\n", "    y = x + 5\n    return y * 4\n"
    )
    applied = apply_reply(PROGRAM, reply)
    assert "    y = x + 5\n    return y * 4\n" in applied.code
    assert applied.blocks == 2


def test_multiline_replace_can_insert_and_delete_lines():
    reply = block("def decay(x):\n    return x * 0.5\n", "")
    reply += block("    return y * 2\n", "    z = y * 2\n    return z\n")
    applied = apply_reply(PROGRAM, reply)
    assert "decay" not in applied.code
    assert "    z = y * 2\n    return z\n" in applied.code


def test_trailing_whitespace_is_tolerated_both_ways():
    code = PROGRAM.replace("    y = x + 1\n", "    y = x + 1   \n")
    applied = apply_reply(code, block("    y = x + 1\n", "    y = x + 2\n"))
    assert "    y = x + 2\n" in applied.code
    applied = apply_reply(PROGRAM, block("    y = x + 1 \t\n", "    y = x + 2\n"))
    assert "    y = x + 2\n" in applied.code


def test_indentation_is_not_tolerated_and_the_error_says_so():
    with pytest.raises(EditError, match="matches line 12 only if indentation is ignored"):
        apply_reply(PROGRAM, block("y = x + 1\n", "y = x + 2\n"))


def test_not_found_shows_the_most_similar_evolvable_lines():
    with pytest.raises(EditError) as info:
        apply_reply(PROGRAM, "x\n" + block("def decay(z):\n    return z * 0.5\n", "pass\n"))
    message = str(info.value)
    assert message.startswith("block 1 (reply line 2): the SEARCH text was not found")
    assert "(16-17)" in message
    assert "  16| def decay(x):" in message
    assert "  17|     return x * 0.5" in message
    assert "harness" not in message


def test_search_in_protected_code_is_refused():
    with pytest.raises(EditError, match=r"block 1 .*matches only protected code \(line 7"):
        apply_reply(PROGRAM, block("    return x * SCALE\n", "    return 0\n"))


def test_search_across_a_marker_is_refused():
    search = "# EVOLVE-BLOCK-START\ndef step(x):\n"
    with pytest.raises(EditError, match="only protected code"):
        apply_reply(PROGRAM, block(search, "def step(x):\n"))


def test_copy_in_protected_code_does_not_make_a_search_ambiguous():
    code = PROGRAM.replace("    return x * 0.5\n", "    return x * SCALE\n")
    applied = apply_reply(code, block("    return x * SCALE\n", "    return x * 3\n"))
    assert "def harness(x):\n    return x * SCALE\n" in applied.code
    assert "def decay(x):\n    return x * 3\n" in applied.code


def test_ambiguous_search_asks_for_context():
    code = PROGRAM.replace("return x * 0.5", "y = x + 1")
    with pytest.raises(EditError, match=r"ambiguous: it matches 2 times \(at lines 12, 17\)"):
        apply_reply(code, block("    y = x + 1\n", "    y = x\n"))


def test_empty_search_is_refused():
    with pytest.raises(EditError, match="block 1 .*SEARCH section is empty"):
        apply_reply(PROGRAM, block("\n", "x = 1\n"))


def test_edit_without_change_is_refused():
    with pytest.raises(EditError, match="produces no change"):
        apply_reply(PROGRAM, block("    y = x + 1\n", "    y = x + 1\n"))


def test_reply_without_blocks_or_program_is_refused():
    with pytest.raises(EditError, match="no SEARCH/REPLACE blocks and no full program"):
        apply_reply(PROGRAM, "I would lower the learning rate.\n```python\nx = 1\n```\n")


def test_replace_may_not_add_markers():
    replace = "    y = x + 1\n# EVOLVE-BLOCK-END\nx = 1\n# EVOLVE-BLOCK-START\n"
    with pytest.raises(EditError, match="block 1 .*markers are protected"):
        apply_reply(PROGRAM, block("    y = x + 1\n", replace))


def test_search_for_text_an_earlier_block_changed_is_explained():
    reply = block("    y = x + 1\n", "    y = x + 2\n") + block("    y = x + 1\n", "    y = 0\n")
    with pytest.raises(EditError, match="block 2 .*an earlier block of this reply already"):
        apply_reply(PROGRAM, reply)


def test_one_bad_block_applies_nothing():
    reply = block("    y = x + 1\n", "    y = x + 2\n") + block("missing\n", "x\n")
    with pytest.raises(EditError, match="block 2"):
        apply_reply(PROGRAM, reply)


def test_program_without_evolve_blocks_cannot_be_edited():
    with pytest.raises(EditError, match="no evolvable code"):
        apply_reply("x = 1\n", block("x = 1\n", "x = 2\n"))


# --- apply_reply: full rewrites --------------------------------------------------------


def test_full_rewrite_is_accepted_when_protected_code_is_unchanged():
    new = PROGRAM.replace("return x * 0.5", "return x * 0.3")
    applied = apply_reply(PROGRAM, f"Here is the program:\n```python\n{new}```\n")
    assert applied.kind == "rewrite"
    assert applied.blocks == 0
    assert applied.code == new
    assert applied.edit == unified_diff(PROGRAM, new)
    assert "-    return x * 0.5\n+    return x * 0.3\n" in applied.edit


def test_rewrite_keeps_protected_bytes_even_if_trailing_whitespace_was_dropped():
    code = PROGRAM.replace("SCALE = 2\n", "SCALE = 2   \n")
    new = PROGRAM.replace("return x * 0.5", "return x * 0.3")
    applied = apply_reply(code, f"```python\n{new}```")
    assert "SCALE = 2   \n" in applied.code
    assert "return x * 0.3" in applied.code


def test_rewrite_that_changes_protected_code_names_the_line():
    new = PROGRAM.replace("SCALE = 2", "SCALE = 3").replace("0.5", "0.3")
    with pytest.raises(
        EditError, match=r"protected line 3 changed: 'SCALE = 2' became 'SCALE = 3'"
    ):
        apply_reply(PROGRAM, f"```python\n{new}```\n")


def test_rewrite_that_moves_a_marker_is_refused():
    new = PROGRAM.replace("# EVOLVE-BLOCK-START\n", "").replace(
        "def harness", "# EVOLVE-BLOCK-START\ndef harness"
    )
    with pytest.raises(EditError, match="changes protected code"):
        apply_reply(PROGRAM, f"```python\n{new}```\n")


def test_identical_rewrite_is_no_change():
    with pytest.raises(EditError, match="identical"):
        apply_reply(PROGRAM, f"```python\n{PROGRAM}```\n")


def test_rewrite_uses_the_last_full_program_in_the_reply():
    first = PROGRAM.replace("0.5", "0.1")
    last = PROGRAM.replace("0.5", "0.2")
    applied = apply_reply(PROGRAM, f"```python\n{first}```\nBetter:\n~~~python\n{last}~~~\n")
    assert applied.code == last


# --- protected_changes, unified_diff ----------------------------------------------------


def test_protected_changes_ignores_evolvable_edits():
    assert protected_changes(PROGRAM, PROGRAM.replace("0.5", "0.7")) is None


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (PROGRAM.replace("import math\n", "import os\n"), "protected line 1 changed"),
        (PROGRAM.replace("print(harness(step(3)))\n", ""), "protected line 20 .* was removed"),
        (PROGRAM + "import socket\n", r"'import socket'\) was added .* at line 21"),
        (PROGRAM.replace("SCALE = 2\n", "SCALE = 2 \n"), "line 3 .* trailing whitespace"),
        (PROGRAM.replace("# EVOLVE-BLOCK-END\n", ""), "markers are broken"),
        (
            PROGRAM.replace("def decay", "# EVOLVE-BLOCK-END\n# EVOLVE-BLOCK-START\ndef decay"),
            "number of EVOLVE blocks changed from 1 to 2",
        ),
    ],
)
def test_protected_changes_describes_the_first_change(new, message):
    description = protected_changes(PROGRAM, new)
    assert description is not None
    assert re.search(message, description), description


def test_unified_diff_has_git_style_headers():
    diff = unified_diff("a\nb\n", "a\nc", name="train.py")
    assert diff.splitlines()[:2] == ["--- a/train.py", "+++ b/train.py"]
    assert "-b\n+c\n\\ No newline at end of file\n" in diff
    assert unified_diff("same\n", "same\n") == ""
