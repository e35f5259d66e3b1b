"""The tiny variant's corpus: byte-exact determinism, structure at several scales, and an
entropy floor that really is the Bayes-optimal loss."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from progressbench_environments.nanogpt import corpus
from progressbench_environments.nanogpt.config import TINY

# Pinned: a change here changes every tiny result, so it must be deliberate.
TRAIN_PREFIX_SHA256 = "5b10f56a2ab0ed9e9fc15243218f83b067e9db9fd433182c521be061f0654582"
VAL_SHA256 = "063d32af815af3047e87468e2e093e2e535c7cdc925871ab1565b605104661ea"
GRAMMAR_SHA256 = "4b83df9cefaff638b34263d66b44a6f8cc78959174f9c3c0be13a1561063cc32"


@pytest.fixture(scope="module")
def val() -> np.ndarray:
    return corpus.split_tokens("val", TINY.val_tokens + 1)


def test_checksums_are_pinned(val: np.ndarray) -> None:
    train = corpus.split_tokens("train", 1 << 20)
    assert hashlib.sha256(train.tobytes()).hexdigest() == TRAIN_PREFIX_SHA256
    assert hashlib.sha256(val.tobytes()).hexdigest() == VAL_SHA256
    entries = [(e.surface, e.cls, e.lemma, e.form) for e in corpus.grammar().entries]
    assert hashlib.sha256(repr(entries).encode()).hexdigest() == GRAMMAR_SHA256


def test_chunking_does_not_change_the_bytes() -> None:
    a = corpus.CorpusStream("train", docs_per_chunk=64).take(200_000)
    b = corpus.CorpusStream("train", docs_per_chunk=7)
    c = np.concatenate([b.take(12_345), b.take(1), b.take(200_000 - 12_346)])
    assert np.array_equal(a, c)


def test_splits_are_different_streams() -> None:
    n = 4096
    splits = [corpus.split_tokens(s, n) for s in ("train", "probe", "val", 12345)]
    for i, a in enumerate(splits):
        for b in splits[i + 1 :]:
            assert not np.array_equal(a, b)


def test_text_is_well_formed(val: np.ndarray) -> None:
    text = corpus.decode(val[:50_000])
    assert set(text) <= set(corpus.ALPHABET)
    assert val.max() < corpus.VOCAB_SIZE == TINY.vocab_size
    docs = text.split("\n")[:-1]
    assert len(docs) > 20
    for doc in docs:
        assert doc.endswith(".") and not doc.startswith(" ") and "  " not in doc


def _ngram_cross_entropy(train: np.ndarray, test: np.ndarray, order: int) -> float:
    """Held-out loss (nats) of an add-1/2 smoothed ``order``-gram model fitted on ``train``."""

    def codes(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ctx = np.zeros(tokens.size - order, dtype=np.int64)
        for k in range(order):
            ctx = ctx * 32 + tokens[k : tokens.size - order + k]
        return ctx, ctx * 32 + tokens[order:]

    train_ctx, train_joint = codes(train)
    test_ctx, test_joint = codes(test)
    joint = dict(zip(*np.unique(train_joint, return_counts=True), strict=True))
    context = dict(zip(*np.unique(train_ctx, return_counts=True), strict=True))
    p = [
        (joint.get(j, 0) + 0.5) / (context.get(c, 0) + 16)
        for c, j in zip(test_ctx, test_joint, strict=True)
    ]
    return float(-np.log(p).mean())


def test_structure_at_several_scales(val: np.ndarray) -> None:
    train = corpus.split_tokens("train", 1 << 20).astype(np.int64)
    test = val[:20_000].astype(np.int64)
    h = [_ngram_cross_entropy(train, test, k) for k in (0, 1, 2, 3)]
    # Each extra character of context helps a lot: not uniform noise, not a bigram source...
    assert all(shorter - longer > 0.4 for shorter, longer in zip(h, h[1:], strict=False))
    # ... and what a short context cannot see (topics, agreement, repeats) is worth more still.
    assert h[3] > TINY.entropy_floor + 0.4


def test_entropy_floor_is_pinned_and_sensible(val: np.ndarray) -> None:
    floor = corpus.entropy_floor(val)
    assert floor == pytest.approx(TINY.entropy_floor, abs=1e-6)
    assert 0.3 < floor < math.log(30)
    # The source is stationary: a fresh sample has nearly the same floor.
    fresh = corpus.entropy_floor(corpus.split_tokens(777, 32_769))
    assert fresh == pytest.approx(floor, abs=0.05)
