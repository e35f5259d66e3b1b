"""The tiny variant's corpus: text from a small probabilistic grammar with a computable floor.

Structure at three scales, so that longer context really helps a model:
- characters: words are fixed spellings, so most characters inside a word are predictable;
- sentences: a Markov chain over word classes (determiner, noun, verb, ...) and a grammatical
  number drawn per sentence that nouns, verbs, determiners and pronouns agree with;
- documents: a topic drawn per document that reshapes the distribution of content words, and
  burstiness: a content word is often a repeat of one used earlier in the same document (a
  Polya-urn copy), which rewards models that can look words up in their context.

Everything a sample depends on is integer arithmetic (a counter-based splitmix64 generator and
integer weights), so the bytes are identical on every machine and numpy version. Because every
latent variable (topic, number, word class) is finite and every surface form belongs to exactly
one word class, the Bayes-optimal next-character probability given the whole document so far is
computable exactly; ``entropy_floor`` averages its log loss over a token sequence. No model can
beat that number in expectation, whatever its context length.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

ALPHABET = "\n .,abcdefghijklmnopqrstuvwxyz"
VOCAB_SIZE = 32  # 30 symbols, padded to a multiple of 8 for matmul-friendly shapes
NEWLINE, SPACE, COMMA_CH, PERIOD = 0, 1, 2, 3

# Word classes; START is only a row of the transition table (a sentence begins).
DET, ADJ, NOUN, VERB, ADV, PREP, CONJ, PRON, COMMA, END, START = range(11)
WORD_CLASSES = (DET, ADJ, NOUN, VERB, ADV, PREP, CONJ, PRON)
CONTENT_CLASSES = (ADJ, NOUN, VERB, ADV)
N_TOPICS = 16
SG, PL = 0, 1
NUMBER_WEIGHTS = (5, 3)  # P(singular) = 5/8
EOD_WEIGHTS = (11, 1)  # after a full stop: another sentence 11/12, end of document 1/12
# A content word repeats an earlier one of its class in the document (chosen in proportion to
# how often each was used) with probability COPY_NUM / COPY_DEN, once there is one.
COPY_NUM, COPY_DEN = 1, 3
MAX_WORDS_PER_DOC = 1000  # a hard stop that keeps generation bounded; never reached in practice
DRAWS = 6  # random draws per word slot: number, class, lemma, end of document, copy?, which copy

# Class transitions (integer weights). Rows: from-class; columns: DET..END.
_T = {
    START: {DET: 6, ADJ: 1, NOUN: 2, PRON: 3},
    DET: {ADJ: 3, NOUN: 7},
    ADJ: {ADJ: 2, NOUN: 8},
    NOUN: {VERB: 6, PREP: 2, COMMA: 1, CONJ: 1, END: 2},
    VERB: {DET: 4, ADV: 2, PREP: 2, PRON: 1, END: 3},
    ADV: {PREP: 1, COMMA: 1, CONJ: 1, END: 3},
    PREP: {DET: 4, NOUN: 1, PRON: 1},
    CONJ: {DET: 3, PRON: 2, NOUN: 1},
    PRON: {VERB: 5, ADV: 1},
    COMMA: {CONJ: 2, DET: 2, PRON: 1},
}
TRANSITIONS = np.zeros((11, 10), dtype=np.int64)
for _row, _cols in _T.items():
    for _col, _w in _cols.items():
        TRANSITIONS[_row, _col] = _w

# Function words: English, so samples stay readable. (word, weight if singular, if plural).
DETERMINERS = [
    ("the", 6, 6), ("a", 5, 0), ("this", 2, 0), ("each", 1, 0), ("one", 1, 0),
    ("some", 0, 3), ("these", 0, 2), ("many", 0, 2), ("two", 0, 1),
]  # fmt: skip
PRONOUNS = [("he", 3, 0), ("she", 3, 0), ("it", 2, 0), ("they", 0, 4), ("we", 0, 2)]
PREPOSITIONS = ["in", "on", "at", "with", "from", "by", "near", "under", "over", "into"]
CONJUNCTIONS = [("and", 6), ("but", 2), ("or", 2), ("so", 1), ("yet", 1)]
# Content classes: pseudo-words whose frequencies depend on the document's topic.
CONTENT_SIZES = {ADJ: 120, NOUN: 400, VERB: 240, ADV: 40}
GRAMMAR_SEED = 20240520
ZIPF_SCALE = 27720  # divisible by 1..12, so the heads of the Zipf laws are exact


# --- the counter-based generator -------------------------------------------------------------
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 with good avalanche."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _random(key: int, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """64 random bits for each (a, b) pair under ``key``; pure integer arithmetic."""
    with np.errstate(over="ignore"):
        k = _mix(np.asarray(key & (2**64 - 1), dtype=np.uint64) * _GOLDEN)
        x = _mix(k ^ (np.asarray(a, dtype=np.uint64) * _GOLDEN))
        return _mix(x ^ (np.asarray(b, dtype=np.uint64) + _GOLDEN))


def _draw(cdf: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """Categorical draws: ``cdf`` holds integer cumulative weights per row ([..., n])."""
    total = cdf[..., -1]
    u = (bits % total.astype(np.uint64)).astype(np.int64)
    return (cdf <= u[..., None]).sum(axis=-1)


# --- the grammar -----------------------------------------------------------------------------
@dataclass
class Entry:
    """One surface form: a word of one class in one grammatical form."""

    surface: str
    cls: int
    lemma: int
    form: int  # SG, PL, or -1 when the class does not inflect


@dataclass
class Grammar:
    entries: list[Entry]
    # For every word class: lemma weights per condition (topic or number) and the entry that
    # each (form, lemma) produces. Conditions: topic for content classes, number for DET/PRON,
    # a single row for PREP/CONJ.
    lemma_weights: dict[int, np.ndarray]
    entry_of: dict[int, np.ndarray]  # [2 forms, lemmas] -> entry index
    index_of: dict[str, int] = field(default_factory=dict)


def _pseudo_words(n: int, salt: int, taken: set[str]) -> list[str]:
    consonants, vowels = "bcdfghjklmnprtvwz", "aeiouy"
    words: list[str] = []
    i = 0
    while len(words) < n:
        bits = [int(v) for v in _random(GRAMMAR_SEED, salt, np.arange(i * 16, i * 16 + 16))]
        i += 1
        syllables = 2 + bits[0] % 3
        word = ""
        for s in range(syllables):
            onset = consonants[bits[1 + 3 * s] % 17] if bits[1 + 3 * s] % 5 else ""
            coda = consonants[bits[3 + 3 * s] % 17] if bits[3 + 3 * s] % 4 == 0 else ""
            word += onset + vowels[bits[2 + 3 * s] % 6] + coda
        # Stems never end in "s" and never collide with another form, so every surface form
        # names exactly one (class, lemma, number): the floor computation relies on that.
        if word in taken or word + "s" in taken or word.endswith("s"):
            continue
        taken.update((word, word + "s"))
        words.append(word)
    return words


def _zipf(order: np.ndarray, scale: int) -> np.ndarray:
    """Integer Zipf weights scale // (rank + 1) for lemmas ranked by ``order``."""
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return scale // (ranks + 1)


def _permutation(n: int, salt: int) -> np.ndarray:
    return np.argsort(_random(GRAMMAR_SEED, salt, np.arange(n)), kind="stable")


@cache
def grammar() -> Grammar:
    entries: list[Entry] = []
    lemma_weights: dict[int, np.ndarray] = {}
    entry_of: dict[int, np.ndarray] = {}

    def add(cls: int, lemma: int, surface: str, form: int) -> int:
        entries.append(Entry(surface, cls, lemma, form))
        return len(entries) - 1

    for cls, table in ((DET, DETERMINERS), (PRON, PRONOUNS)):
        lemma_weights[cls] = np.array([[sg for _, sg, _ in table], [pl for _, _, pl in table]])
        ids = [add(cls, i, word, -1) for i, (word, _, _) in enumerate(table)]
        entry_of[cls] = np.array([ids, ids])
    lemma_weights[PREP] = _zipf(np.arange(len(PREPOSITIONS)), ZIPF_SCALE)[None, :]
    ids = [add(PREP, i, word, -1) for i, word in enumerate(PREPOSITIONS)]
    entry_of[PREP] = np.array([ids, ids])
    lemma_weights[CONJ] = np.array([[w for _, w in CONJUNCTIONS]])
    ids = [add(CONJ, i, word, -1) for i, (word, _) in enumerate(CONJUNCTIONS)]
    entry_of[CONJ] = np.array([ids, ids])

    taken = {e.surface for e in entries} | {e.surface + "s" for e in entries}
    for cls, size in CONTENT_SIZES.items():
        stems = _pseudo_words(size, salt=cls, taken=taken)
        # A shared Zipf law plus a topic-specific one: frequent words are frequent everywhere,
        # but each topic has its own favourites, so the topic can be inferred from a few words.
        shared = _zipf(_permutation(size, 100 + cls), ZIPF_SCALE // 3)
        lemma_weights[cls] = np.stack(
            [
                shared + _zipf(_permutation(size, 1000 * (k + 1) + cls), ZIPF_SCALE)
                for k in range(N_TOPICS)
            ]
        )
        if cls == NOUN:
            forms = [
                [add(cls, i, s, SG) for i, s in enumerate(stems)],
                [add(cls, i, s + "s", PL) for i, s in enumerate(stems)],
            ]
        elif cls == VERB:
            forms = [
                [add(cls, i, s + "s", SG) for i, s in enumerate(stems)],
                [add(cls, i, s, PL) for i, s in enumerate(stems)],
            ]
        else:
            ids = [add(cls, i, s, -1) for i, s in enumerate(stems)]
            forms = [ids, ids]
        entry_of[cls] = np.array(forms)
    g = Grammar(entries, lemma_weights, entry_of)
    g.index_of = {e.surface: i for i, e in enumerate(entries)}
    assert len(g.index_of) == len(entries), "surface forms must be unique"
    return g


# --- sampling --------------------------------------------------------------------------------
# Entry ids past the words: punctuation pieces.
def _piece_tables(g: Grammar) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """Flat character table and (offset, length) per piece. Pieces: every entry with a leading
    space, every entry without one (first word of a document), ",", "." and ".\\n"."""
    strings = (
        [" " + e.surface for e in g.entries] + [e.surface for e in g.entries] + [",", ".", ".\n"]
    )
    codes = [ALPHABET.index(c) for s in strings for c in s]
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = len(g.entries)
    return np.array(codes, dtype=np.uint8), offsets, lengths, 2 * n, 2 * n + 1, 2 * n + 2


@cache
def _tables() -> dict:
    g = grammar()
    chars, offsets, lengths, p_comma, p_end, p_eod = _piece_tables(g)
    return {
        "g": g,
        "chars": chars,
        "offsets": offsets,
        "lengths": lengths,
        "p_comma": p_comma,
        "p_end": p_end,
        "p_eod": p_eod,
        "trans_cdf": np.cumsum(TRANSITIONS, axis=1),
        "lemma_cdf": {c: np.cumsum(w, axis=1) for c, w in g.lemma_weights.items()},
        "number_cdf": np.cumsum(NUMBER_WEIGHTS),
        "eod_cdf": np.cumsum(EOD_WEIGHTS),
        "topic_cdf": np.arange(1, N_TOPICS + 1),
    }


def _split_key(split: str | int) -> int:
    """Seeds for the named splits; an int is a caller's own seed (fresh held-out samples)."""
    named = {"train": 1, "probe": 2, "val": 3}
    return named[split] if isinstance(split, str) else 1_000_003 + int(split)


def sample_documents(split: str | int, first_doc: int, n_docs: int) -> np.ndarray:
    """The characters (uint8 codes) of documents ``first_doc .. first_doc + n_docs - 1`` of
    ``split``, concatenated. Documents are independent, so any chunking gives the same bytes."""
    t = _tables()
    g: Grammar = t["g"]
    key = _split_key(split)
    docs = np.arange(first_doc, first_doc + n_docs, dtype=np.int64)
    # Slot MAX_WORDS_PER_DOC is reserved for per-document draws (the topic).
    topic = _draw(t["topic_cdf"], _random(key, docs, MAX_WORDS_PER_DOC * DRAWS))
    prev = np.full(n_docs, START)
    number = np.zeros(n_docs, dtype=np.int64)
    first = np.ones(n_docs, dtype=bool)
    alive = np.ones(n_docs, dtype=bool)
    pieces = np.full((n_docs, MAX_WORDS_PER_DOC), -1, dtype=np.int64)
    # Lemmas used so far in each document, per content class (the copy process draws from them).
    used = {c: np.zeros((n_docs, MAX_WORDS_PER_DOC), dtype=np.int64) for c in CONTENT_CLASSES}
    n_used = {c: np.zeros(n_docs, dtype=np.int64) for c in CONTENT_CLASSES}
    n_entries = len(g.entries)
    for slot in range(MAX_WORDS_PER_DOC):
        idx = np.flatnonzero(alive)
        if idx.size == 0:
            break
        bits = [_random(key, docs[idx], slot * DRAWS + j) for j in range(DRAWS)]
        p = prev[idx]
        starting = p == START
        number[idx[starting]] = _draw(t["number_cdf"], bits[0][starting])
        if slot == MAX_WORDS_PER_DOC - 1:
            cls = np.full(idx.size, END)
        else:
            cls = _draw(t["trans_cdf"][p], bits[1])
        piece = np.empty(idx.size, dtype=np.int64)
        for c in WORD_CLASSES:
            sel = cls == c
            if not sel.any():
                continue
            d = idx[sel]
            cdf = t["lemma_cdf"][c]
            cond = topic[d] if cdf.shape[0] == N_TOPICS else (number[d] if cdf.shape[0] == 2 else 0)
            lemma = _draw(cdf[cond], bits[2][sel])
            if c in CONTENT_CLASSES:
                have = n_used[c][d]
                copy = (have > 0) & (bits[4][sel] % np.uint64(COPY_DEN) < np.uint64(COPY_NUM))
                pick = (bits[5][sel] % np.maximum(have, 1).astype(np.uint64)).astype(np.int64)
                lemma = np.where(copy, used[c][d, pick], lemma)
                used[c][d, have] = lemma
                n_used[c][d] = have + 1
            entry = g.entry_of[c][number[d], lemma]
            piece[sel] = np.where(first[d], entry + n_entries, entry)
        piece[cls == COMMA] = t["p_comma"]
        ends = cls == END
        eod = ends & (_draw(t["eod_cdf"], bits[3]) == 1)
        if slot == MAX_WORDS_PER_DOC - 1:
            eod = ends
        piece[ends] = t["p_end"]
        piece[eod] = t["p_eod"]
        pieces[idx, slot] = piece
        first[idx] = False
        prev[idx] = np.where(ends, START, cls)
        alive[idx[eod]] = False
    flat = pieces[pieces >= 0]  # row-major: document by document, in order
    lengths = t["lengths"][flat]
    starts = t["offsets"][flat]
    # Gather every piece's characters without a Python loop: position i of the output reads
    # chars[start_of_its_piece + (i - first_output_position_of_its_piece)].
    out_start = np.cumsum(lengths) - lengths
    gather = np.repeat(starts - out_start, lengths) + np.arange(lengths.sum())
    return t["chars"][gather]


class CorpusStream:
    """An endless character stream of one split, generated lazily in chunks of documents."""

    def __init__(self, split: str | int, docs_per_chunk: int = 512):
        self.split = split
        self.docs_per_chunk = docs_per_chunk
        self._next_doc = 0
        self._buffer = np.zeros(0, dtype=np.uint8)

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` characters."""
        parts = [self._buffer]
        have = self._buffer.size
        while have < n:
            chunk = sample_documents(self.split, self._next_doc, self.docs_per_chunk)
            self._next_doc += self.docs_per_chunk
            parts.append(chunk)
            have += chunk.size
        data = np.concatenate(parts)
        self._buffer = data[n:]
        return data[:n]


def split_tokens(split: str | int, n: int) -> np.ndarray:
    """The first ``n`` characters of a split."""
    return CorpusStream(split).take(n)


def decode(tokens: np.ndarray) -> str:
    return "".join(ALPHABET[int(t)] for t in tokens)


# --- the entropy floor -----------------------------------------------------------------------
def entropy_floor(tokens: np.ndarray) -> float:
    """Mean Bayes-optimal log loss (nats per character) of predicting ``tokens[1:]``, where
    ``tokens`` is a split's prefix (as in validation, the first token is never a target).

    The predictor conditions on everything since the start of the current document: the
    posterior over (topic, number) and the copy counts are exact, and so is the prediction of
    the next word class. A model that sees only a window of context cannot do better.
    """
    t = _tables()
    g: Grammar = t["g"]
    n = len(g.entries)
    surfaces = [e.surface for e in g.entries]
    order = sorted(range(n), key=surfaces.__getitem__)
    sorted_surfaces = [surfaces[i] for i in order]
    # Per entry: class, P(lemma | class, topic) as a row over topics, P(form | number).
    cls = np.array([e.cls for e in g.entries])
    lemma_of = np.array([e.lemma for e in g.entries])
    content = np.isin(cls, CONTENT_CLASSES)
    copy_p = COPY_NUM / COPY_DEN
    lemma_given_topic = np.zeros((n, N_TOPICS))
    form_given_number = np.zeros((n, 2))
    for i, e in enumerate(g.entries):
        w = g.lemma_weights[e.cls].astype(np.float64)
        p = w / w.sum(axis=1, keepdims=True)
        if p.shape[0] == N_TOPICS:
            lemma_given_topic[i] = p[:, e.lemma]
            form_given_number[i] = [e.form in (SG, -1), e.form in (PL, -1)]
        else:
            lemma_given_topic[i] = p[0, e.lemma] if p.shape[0] == 1 else 1.0
            if p.shape[0] == 2:  # determiners and pronouns: the number picks the word
                form_given_number[i] = p[:, e.lemma]
            else:
                form_given_number[i] = 1.0
    trans = TRANSITIONS / np.maximum(TRANSITIONS.sum(axis=1, keepdims=True), 1)
    word_cls = list(WORD_CLASSES)
    p_word_next = trans[:, word_cls].sum(axis=1)  # P(next piece is a word | class)
    number_prior = np.array(NUMBER_WEIGHTS, dtype=np.float64) / sum(NUMBER_WEIGHTS)
    p_eod = EOD_WEIGHTS[1] / sum(EOD_WEIGHTS)

    text = decode(tokens)
    # The first character (a document's first letter) is scored as -log P(its word starts
    # with it); dropping it afterwards keeps the loop simple.
    first_loss: float | None = None
    total = 0.0
    count = 0
    pos = 0
    joint = prev = None  # set at the first document start
    used = np.zeros((len(TRANSITIONS), max(CONTENT_SIZES.values())))  # lemma counts this document
    while pos < len(text):
        if prev is None:  # a document starts: topic uniform, a fresh sentence, nothing used
            joint = np.full((N_TOPICS, 2), 1.0 / N_TOPICS) * number_prior
            prev = START
            used[:] = 0.0
        # P(lemma | topic) of every entry, mixed with the document's copy distribution.
        n_class = used.sum(axis=1)[cls]
        mix = np.where(content & (n_class > 0), copy_p, 0.0)
        cache = np.where(n_class > 0, used[cls, lemma_of] / np.maximum(n_class, 1), 0.0)
        lemma_p = (1 - mix)[:, None] * lemma_given_topic + (mix * cache)[:, None]
        # The next word, given that a word follows (its separator was scored already).
        weights = (lemma_p @ joint * form_given_number).sum(axis=1)
        p_entry = trans[prev][cls] * weights
        end = pos
        while end < len(text) and text[end] not in " ,.\n":
            end += 1
        word = text[pos:end]
        lo, hi = 0, n
        for k in range(len(word) + 1):
            # P(next char | prefix) = mass(prefix + char) / mass(prefix), over surface forms.
            lo = bisect.bisect_left(sorted_surfaces, word[:k], lo, hi)
            hi = bisect.bisect_left(sorted_surfaces, word[:k] + "\x7f", lo, hi)
            mass = p_entry[order[lo:hi]].sum()
            if k < len(word):
                lo2 = bisect.bisect_left(sorted_surfaces, word[: k + 1], lo, hi)
                hi2 = bisect.bisect_left(sorted_surfaces, word[: k + 1] + "\x7f", lo2, hi)
                loss = -math.log(p_entry[order[lo2:hi2]].sum() / mass)
                if first_loss is None:
                    first_loss = loss
                total += loss
                count += 1
        if end >= len(text):
            break  # the sequence ends inside a word
        entry = g.index_of[word]
        c = g.entries[entry].cls
        # The character after the word: P(the word ends here) * P(separator | its class).
        sep = text[end]
        p_sep = {" ": p_word_next[c], ",": trans[c, COMMA], ".": trans[c, END]}[sep]
        total -= math.log(p_entry[entry] / mass * p_sep)
        count += 1
        # Bayes update of (topic, number) on the word just seen, then of the copy counts.
        joint = joint * np.outer(lemma_p[entry], form_given_number[entry])
        joint /= joint.sum()
        if content[entry]:
            used[c, lemma_of[entry]] += 1.0
        pos = end + 1
        if sep == ",":
            prev = COMMA
            if pos < len(text):  # "," is always followed by a space: zero loss
                pos += 1
                count += 1
        elif sep == ".":
            if pos >= len(text):
                break
            total -= math.log(p_eod if text[pos] == "\n" else 1 - p_eod)
            count += 1
            pos += 1
            if text[pos - 1] == "\n":
                prev = None
            else:  # a new sentence draws a new number; the topic stays
                prev = START
                joint = np.outer(joint.sum(axis=1), number_prior)
        else:
            prev = c
    return (total - (first_loss or 0.0)) / max(count - 1, 1)
