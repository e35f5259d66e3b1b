"""Hostile programs against the nanogpt harness, each with its expected verdict.

Every file in tests/nanogpt_hostile/ states what it tries and ``expect: valid|invalid|error:
<text>`` (``valid: val_loss > X`` checks the loss is the honest one). One more is generated
here: a program carrying its own copy of the corpus generator, which trains on the validation
split it regenerates (nothing imports the harness, so only the verifier's fresh-sample check
can catch it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_nanogpt_data import write_fineweb
from test_nanogpt_runs import evaluate

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ROOT / "tests" / "hostile" / "nanogpt_hostile"
CORPUS = ROOT / "environments" / "nanogpt" / "corpus.py"
# Bounded in steps, not seconds: the machine may be shared, and a loaded one only runs slower.
OPTIONS = {
    "max_steps": 30,
    "time_budget_s": 300,
    "ckpt_every_s": 0.2,
    "val_tokens": 8192,
    "probe_tokens": 4096,
    "threads": 1,
}

MEMORIZER = """

# ---- a model that memorises the validation split it regenerated above ----
import torch
import torch.nn.functional as F
from torch import nn


class Memorizer(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.register_buffer("memory", torch.zeros(65537, dtype=torch.long))

    def forward(self, idx):
        logits = self.table(idx)
        t = idx.size(1)
        windows = self.memory[: (self.memory.numel() - 1) // t * t].view(-1, t)
        # A window is recognised by its first 32 tokens; the memory then gives every target.
        match = (idx[:, None, :32] == windows[None, :, :32]).all(-1)
        found = match.any(-1)
        row = match.float().argmax(-1)
        where = (row[:, None] * t + torch.arange(1, t + 1)).clamp(max=self.memory.numel() - 1)
        nxt = self.memory[where]
        boost = F.one_hot(nxt, logits.size(-1)).float() * 30.0
        return logits + boost * found[:, None, None]


def build_model(vocab_size):
    return Memorizer(vocab_size)


def train(model, h):
    model.memory.copy_(torch.from_numpy(split_tokens("val", 65537).astype("int64")))
    opt = torch.optim.Adam(model.table.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model.table(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
"""


def expectation(path: Path) -> tuple[str, str, str]:
    """(variant, verdict, detail) from the file's docstring."""
    text = path.read_text()
    variant = re.search(r"^variant: (\w+)", text, re.MULTILINE)
    verdict, detail = re.search(
        r"^expect: (valid|invalid|error): (.+)$", text, re.MULTILINE
    ).groups()
    return (variant.group(1) if variant else "tiny"), verdict, detail.strip()


def programs(variant: str) -> list[Path]:
    return [p for p in sorted(HOSTILE.glob("*.py")) if expectation(p)[0] == variant]


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    regenerated = tmp / "regenerate_val.py"
    header = (
        '"""Carries its own copy of the corpus generator and memorises the validation split.\n\n'
        'expect: invalid: fitted to the validation tokens\n"""\n'
    )
    regenerated.write_text(header + CORPUS.read_text().split('"""', 2)[2] + MEMORIZER)
    results = evaluate(programs("tiny") + [regenerated], options=OPTIONS, smoke=False)
    data = tmp / "data"
    write_fineweb(data, [40_000], 4_000)
    speedrun = {
        "data_dir": str(data),
        "val_tokens": 1024,
        "probe_tokens": 1024,
        "eval_batch": 1,
        **OPTIONS,
    }
    results += evaluate(
        programs("speedrun"),
        variant="speedrun",
        options=speedrun,
        smoke=False,
        env={"NANOGPT_TEST_DATA": str(data)},
    )
    return {Path(r["program"]).name: r for r in results}


def check(result: dict[str, Any], verdict: str, detail: str) -> None:
    a = result["assessment"]
    if verdict == "valid":
        assert a["valid"], a["reason"]
        metric, op, value = detail.split()
        assert op == ">" and a["metrics"][metric] > float(value), a["metrics"]
    elif verdict == "invalid":
        assert not a["valid"] and a["score"] is None
        assert detail in a["reason"], a["reason"]
    else:
        assert "full_error" in result and detail in result["full_error"], result.get("full_error")


@pytest.mark.parametrize("name", [p.name for p in sorted(HOSTILE.glob("*.py"))])
def test_hostile_program(verdicts: dict[str, dict[str, Any]], name: str) -> None:
    _, verdict, detail = expectation(HOSTILE / name)
    check(verdicts[name], verdict, detail)


def test_regenerated_validation_split_is_caught(verdicts: dict[str, dict[str, Any]]) -> None:
    result = verdicts["regenerate_val.py"]
    check(result, "invalid", "fitted to the validation tokens")
    fresh = result["verified"]["fresh"]
    assert fresh["val_loss"] < 1.0 < fresh["fresh_loss"]  # it really had memorised them
