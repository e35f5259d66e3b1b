"""The offline agent: seeded perturbations that apply cleanly and respect knob domains."""

from __future__ import annotations

import ast
import difflib
import json
import re

import pytest

from progressbench.contracts.agent import Agent, AgentOptions, AgentReply, AgentRequest
from progressbench.errors import EditError
from progressbench.run.edits import apply_reply, parse_blocks, protected_changes
from progressbench_plugins.agents import offline
from progressbench_plugins.agents.offline import KnobDomain, OfflineAgent, knobs

PARENT = '''\
"""A toy training script."""
import math

SEED = 1234


def harness(x):
    return x[0] * 2


# EVOLVE-BLOCK-START
LR = 3e-3  # knob: [1e-4, 1e-1] log
N_LAYER = 4  # knob: [1, 12] int
ACT = "gelu"  # knob: {"relu", "gelu", "silu"}
WARMUP = 0.1  # knob: [0, 0.5]
BETA2 = 0.999
HIDDEN = 128
OFFSET = -3


def model(x, steps=200):
    y = x[0] + x[1:3].sum(dim=-1)
    for _ in range(steps):
        y = y * 0.95 + 1.5e-2
    msg = f"loss {y:.3f} after 10 steps"
    return y  # scaled by 7


def other(x):
    y = x * 0.95 + 1.5e-2
    return y
# EVOLVE-BLOCK-END

print(harness([3]))
'''

BLOCK_LINES = range(12, 32)


def request(purpose: str = "edit", seed: int = 0, code: str = PARENT, **extra) -> AgentRequest:
    return AgentRequest(
        purpose=purpose, system="sys", prompt="improve it", parent_code=code, seed=seed, **extra
    )


def ask(purpose: str = "edit", seed: int = 0, code: str = PARENT, **extra) -> AgentReply:
    return OfflineAgent(None, AgentOptions()).reply(request(purpose, seed, code, **extra))


def changed_lines(old: str, new: str) -> list[int]:
    """1-based numbers of the old lines that differ (the agent never adds or removes lines)."""
    old_lines, new_lines = old.splitlines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    return [n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=True), 1) if a != b]


def assignments(code: str) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def test_registers_through_the_hook():
    registered: list[type[Agent]] = []
    offline.register_agents(register=registered.append)
    assert registered == [OfflineAgent]
    assert OfflineAgent.name == "offline" and not OfflineAgent.online


def test_same_seed_same_reply_different_seeds_differ():
    first = ask(seed=42).text
    assert ask(seed=42).text == first
    assert len({ask(seed=seed).text for seed in range(20)}) >= 15


def test_reply_records_the_call():
    reply = ask(seed=3)
    assert not reply.error
    [call] = reply.calls
    assert (call.agent, call.model, call.purpose) == ("offline", "offline", "edit")
    assert call.messages == request(seed=3).messages()
    assert call.response == reply.text
    assert call.latency_s >= 0


def test_reply_is_one_line_of_explanation_then_blocks():
    text = ask(seed=5).text
    explanation, rest = text.split("\n", 1)
    assert explanation.startswith("Perturbation: ") and "->" in explanation
    assert rest.startswith("\n<<<<<<< SEARCH\n")
    assert 1 <= len(parse_blocks(text)) <= 3


@pytest.mark.parametrize("seed", range(200))
def test_edits_apply_cleanly_and_respect_the_rules(seed):
    text = ask(seed=seed).text
    applied = apply_reply(PARENT, text)
    assert applied.kind == "diff"
    assert protected_changes(PARENT, applied.code) is None
    compile(applied.code, "<child>", "exec")
    lines = changed_lines(PARENT, applied.code)
    assert 1 <= len(lines) <= 3
    assert set(lines) <= set(BLOCK_LINES)
    # Every SEARCH matches exactly once in the whole program, protected code included.
    for block in parse_blocks(text):
        assert PARENT.count(block.search) == 1

    # Knobs stay in their domains, with their types.
    for knob in knobs(applied.code):
        assert knob.domain.contains(knob.value), (knob, text)
    values = assignments(applied.code)
    assert isinstance(values["N_LAYER"], int)
    assert isinstance(values["HIDDEN"], int) and values["HIDDEN"] > 0
    assert isinstance(values["OFFSET"], int) and values["OFFSET"] < 0
    assert isinstance(values["BETA2"], float) and 0.5 < values["BETA2"] < 1
    assert isinstance(values["LR"], float)

    # Strings, comments and structural literals are never touched.
    for fixed in ('f"loss {y:.3f} after 10 steps"', "# scaled by 7", "x[1:3].sum(dim=-1)"):
        assert fixed in applied.code


def test_knobs_are_preferred_over_anonymous_literals():
    knob_lines = {k.line for k in knobs(PARENT)}
    hits = [
        line in knob_lines
        for seed in range(100)
        for line in changed_lines(PARENT, apply_reply(PARENT, ask(seed=seed).text).code)
    ]
    # 4 knobs at weight 4 against 8 literals at weight <= 1.
    assert sum(hits) / len(hits) > 0.55


def test_every_kind_of_value_gets_perturbed_across_seeds():
    touched = set()
    for seed in range(200):
        touched.update(changed_lines(PARENT, apply_reply(PARENT, ask(seed=seed).text).code))
    # LR..OFFSET, steps=200 (line 21), the 0.95 / 1.5e-2 lines (24, 30).
    assert {12, 13, 14, 15, 16, 17, 18, 21, 24, 30} <= touched


def test_floats_stay_floats_and_ints_never_reach_zero():
    code = "# EVOLVE-BLOCK-START\nA = 10.0\nB = 1\nC = -2\n# EVOLVE-BLOCK-END\n"
    seen = {"A": set(), "B": set(), "C": set()}
    for seed in range(200):
        values = assignments(apply_reply(code, ask(seed=seed, code=code).text).code)
        assert isinstance(values["A"], float) and values["A"] > 0
        assert isinstance(values["B"], int) and values["B"] >= 1
        assert isinstance(values["C"], int) and values["C"] <= -1
        for name in seen:
            seen[name].add(values[name])
    assert len(seen["A"]) > 20 and 2 in seen["B"] and {-1, -3} <= seen["C"]


def test_duplicate_lines_get_widened_search_context():
    code = (
        "# EVOLVE-BLOCK-START\n"
        "def f(x):\n    y = x * 0.5\n    return y\n\n"
        "def g(x):\n    y = x * 0.5\n    return y\n"
        "# EVOLVE-BLOCK-END\n"
    )
    for seed in range(30):
        text = ask(seed=seed, code=code).text
        applied = apply_reply(code, text)
        for block in parse_blocks(text):
            assert code.count(block.search) == 1
            assert block.search.count("\n") >= 2
        assert len(changed_lines(code, applied.code)) >= 1


def test_fix_makes_one_small_change_away_from_the_failing_line():
    error = 'Traceback (most recent call last):\n  File "program.py", line 12, in <module>\n'
    for seed in range(50):
        text = ask("fix", seed=seed, error=error).text
        assert text.startswith("The last change failed")
        lines = changed_lines(PARENT, apply_reply(PARENT, text).code)
        assert len(lines) == 1 and lines != [12]


def test_idea_is_prose_naming_one_change():
    reply = ask("idea", seed=11)
    assert not reply.error
    assert reply.text.startswith("Idea: ")
    assert parse_blocks(reply.text) == []
    with pytest.raises(EditError):
        apply_reply(PARENT, reply.text)
    tail = json.loads(re.search(r"^offline-idea: (.*)$", reply.text, re.M).group(1))
    assert f"line {tail['line']}" in reply.text.splitlines()[0]
    assert f"from {tail['old']} to {tail['new']}" in reply.text


@pytest.mark.parametrize("seed", range(40))
def test_idea_then_implement_makes_exactly_that_change(seed):
    idea = ask("idea", seed=seed).text
    tail = json.loads(re.search(r"^offline-idea: (.*)$", idea, re.M).group(1))
    # Stage 2 runs with its own seed; the idea alone decides the change.
    text = ask("implement", seed=seed + 1000, idea=idea).text
    assert text.startswith("Implementing the idea: ")
    new = apply_reply(PARENT, text).code
    [line] = changed_lines(PARENT, new)
    assert line == tail["line"]
    old_line = PARENT.splitlines()[line - 1]
    new_line = new.splitlines()[line - 1]
    assert new_line == old_line.replace(tail["old"], tail["new"], 1)


def test_implement_of_a_literal_idea():
    code = "# EVOLVE-BLOCK-START\ndef f(x):\n    return x * 0.25 + 0.25\n# EVOLVE-BLOCK-END\n"
    idea = ask("idea", seed=0, code=code).text
    assert "the constant 0.25 on line 3" in idea
    new = apply_reply(code, ask("implement", seed=9, code=code, idea=idea).text).code
    tail = json.loads(idea.rsplit("offline-idea: ", 1)[1])
    expected = list(code.splitlines()[2])
    expected[tail["col"] : tail["col"] + len(tail["old"])] = tail["new"]
    assert new.splitlines()[2] == "".join(expected)


@pytest.mark.parametrize(
    ("idea", "reason"),
    [
        ("Idea: something vague", "it has no offline-idea line"),
        ('offline-idea: {"name": "LR"}', "not valid"),
        (
            'offline-idea: {"name": "LR", "line": 12, "col": 5, "old": "3e-3", "new": "5.0"}',
            r"5.0 is outside the domain \[0.0001, 0.1\] log of `LR`",
        ),
        (
            'offline-idea: {"name": "NOPE", "line": 12, "col": 5, "old": "3e-3", "new": "1"}',
            "no knob named NOPE",
        ),
        (
            'offline-idea: {"name": null, "line": 17, "col": 9, "old": "128", "new": "1.5"}',
            "not a numeric literal of the same kind",
        ),
    ],
)
def test_implement_falls_back_to_a_fresh_perturbation(idea, reason):
    text = ask("implement", seed=1, idea=idea).text
    assert text.startswith("Could not implement the idea as stated (")
    assert re.search(reason, text.splitlines()[0])
    apply_reply(PARENT, text)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("x = 1.5\n", "no usable EVOLVE blocks"),
        ("# EVOLVE-BLOCK-START\ndef f(x):\n    return x[0]\n# EVOLVE-BLOCK-END\n", "nothing to"),
        ("# EVOLVE-BLOCK-START\nx = (1.5\n# EVOLVE-BLOCK-END\n", "not valid Python"),
    ],
)
def test_nothing_to_perturb_is_an_error_reply(code, message):
    reply = ask(code=code)
    assert reply.text == ""
    assert message in reply.error
    assert reply.calls[0].error == reply.error


def test_knob_syntax():
    code = (
        "A = 1  # knob: [0, 5] int\n"  # outside EVOLVE blocks: not a knob
        "# EVOLVE-BLOCK-START\n"
        "B: float = 0.5  # knob: [0, 1]\n"
        "cfg.c = 64  # knob: [8, 512] int log\n"
        "D = -0.2  # knob: [-1, 1]\n"
        "E = 'x'  # knob: {'x', 'y'}\n"
        "F = 2  # knob: [1, 3] cubic\n"  # unknown flag
        "G = 2  # knob: [3, 1]\n"  # empty range
        "H = 2  # knob: [0, 3] log\n"  # log needs a positive lower bound
        "I = 2  # knob: [0.5, 3] int\n"  # int bounds must be integers
        "J = 2.5  # knob: [1, 3] int\n"  # a float value cannot be an int knob
        "K = 2  # knob: {1, x}\n"  # not literals
        "L, M = 1, 2  # knob: [0, 3]\n"  # not a single target
        "# EVOLVE-BLOCK-END\n"
    )
    found = {k.name: k for k in knobs(code)}
    assert sorted(found) == ["B", "D", "E", "cfg.c"]
    assert found["B"].domain == KnobDomain(low=0.0, high=1.0)
    assert found["cfg.c"].domain == KnobDomain(low=8, high=512, integer=True, log=True)
    assert (found["D"].value, found["D"].text, found["D"].line) == (-0.2, "-0.2", 5)
    assert found["E"].domain.choices == ("x", "y")
    assert str(found["cfg.c"].domain) == "[8, 512] int log"
    assert str(found["E"].domain) == '{"x", "y"}'
    assert knobs("no markers = 1  # knob: [0, 1]\n") == []


def test_knob_domain_contains():
    ints = KnobDomain(low=1, high=12, integer=True)
    assert ints.contains(12) and not ints.contains(13) and not ints.contains(2.0)
    assert not ints.contains(True)
    choices = KnobDomain(choices=(1, "a"))
    assert choices.contains(1) and choices.contains("a")
    assert not choices.contains(True) and not choices.contains(1.0)


def test_negative_knobs_and_single_quoted_choices_are_rewritten_in_style():
    code = (
        "# EVOLVE-BLOCK-START\nD = -0.2  # knob: [-1, 1]\n"
        "E = 'x'  # knob: {'x', 'y'}\n# EVOLVE-BLOCK-END\n"
    )
    values = set()
    for seed in range(100):
        new = apply_reply(code, ask(seed=seed, code=code).text).code
        assert "E = 'x'" in new or "E = 'y'" in new
        [knob_d] = [k for k in knobs(new) if k.name == "D"]
        assert -1 <= knob_d.value <= 1
        values.add(knob_d.value)
    assert any(v < 0 for v in values) and len(values) > 10


def test_diff_of_a_reply_touches_only_the_changed_values():
    text = ask(seed=8).text
    new = apply_reply(PARENT, text).code
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, PARENT, new).get_opcodes():
        if tag != "equal":
            # Only numbers or quoted choice values differ, never names or operators.
            assert re.fullmatch(r"[\w.\-\"]*", PARENT[i1:i2] + new[j1:j2]), (
                PARENT[i1:i2],
                new[j1:j2],
            )


def test_fix_of_a_failed_idea_restates_the_idea_it_implements_instead():
    from progressbench.run.edits import restated_idea

    error = 'Traceback (most recent call last):\n  File "program.py", line 12, in <module>\n'
    for seed in range(20):
        idea = ask("idea", seed=seed).text
        text = ask("fix", seed=seed, error=error, idea=idea).text
        stated = restated_idea(text)
        assert stated.startswith("Idea: ") and stated != idea.splitlines()[0]
        [line] = changed_lines(PARENT, apply_reply(PARENT, text).code)
        assert f"line {line})" in stated or f"on line {line} " in stated
    # Without an idea (a template child's fix) there is nothing to restate.
    assert restated_idea(ask("fix", seed=0, error=error).text) == ""
