"""The offline agent: seeded perturbations of knobs and numeric constants, as SEARCH/REPLACE edits.

It needs no network and no key. For each request it changes one to three values inside the
EVOLVE blocks of the parent program and replies exactly as an LLM would: a one-line
explanation, then SEARCH/REPLACE blocks whose SEARCH text matches the program exactly once.
The same request (same seed) always gives the same reply text, byte for byte.

What it changes, most preferred first:

* **Declared knobs.** A trailing ``# knob:`` comment on a one-line assignment inside an EVOLVE
  block declares the values the assignment may take::

      LR = 3e-3  # knob: [1e-4, 1e-1] log
      WARMUP = 0.1  # knob: [0, 0.5]
      N_LAYER = 4  # knob: [1, 12] int
      N_EMBD = 128  # knob: [32, 1024] int log
      ACT = "gelu"  # knob: {"relu", "gelu", "silu"}

  ``[low, high]`` is an inclusive float range, perturbed linearly; ``log`` perturbs it in log
  space (it needs ``low > 0``); ``int`` makes it an integer range (integer bounds, int value);
  ``{a, b, ...}`` is a set of Python literals, one of which is picked. Nothing else may follow
  the declaration on the line. The target may be a name or an attribute (``cfg.lr = ...``) and
  may carry an annotation; the value must be a literal. A new value always stays inside the
  declared range or set. A malformed declaration is ignored and its line left alone entirely,
  so a mangled comment never breaks a run.
* **Numeric literals** elsewhere in the EVOLVE blocks, found with ``tokenize`` (never inside
  strings or comments). Floats are scaled by a log-normal factor (values in (0.5, 1), such as
  momentum terms, have their distance to 1 scaled instead, so 0.999 becomes 0.9985 and not
  1.2); ints take small steps, powers of two from 8 up are halved or doubled, and an int never
  becomes 0 or changes sign. Literals that are almost always structural are skipped: ints
  inside subscripts (``x[0]``, ``t[:, -1]``), ``dim=``/``axis=`` arguments, hex/octal/binary and
  complex literals and ``0.0``; the ints 0 and 1 are rarely picked.

Purposes: ``edit`` and ``implement`` return edits; ``fix`` (the previous child failed) returns
one smaller change of the known-good parent, avoiding the lines the traceback names; ``idea``
returns prose only, naming one change and ending in an ``offline-idea:`` JSON line that a
later ``implement`` request parses back to make exactly that change.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import io
import json
import keyword
import math
import random
import re
import time
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from progressbench import (
    Agent,
    AgentReply,
    AgentRequest,
    EditError,
    LLMCall,
    compile_program,
    edits,
    hookimpl,
    parse_program,
)

_KNOB_COMMENT_RE = re.compile(r"#\s*knob:\s*(?P<spec>.*?)\s*$")
_RANGE_RE = re.compile(r"^\[\s*(?P<lo>[^,\]]+?)\s*,\s*(?P<hi>[^,\]]+?)\s*\]\s*(?P<flags>[\w\s]*)$")
_IDEA_TAIL_RE = re.compile(r"^offline-idea: (\{.*\})\s*$", re.MULTILINE)
_TRACEBACK_LINE_RE = re.compile(r"\bline (\d+)\b")
# Keyword arguments whose int values select axes: changing them breaks shapes, not science.
_STRUCTURAL_KWARGS = {"dim", "dims", "axis", "axes", "start_dim", "end_dim"}
_KNOB_WEIGHT = 4.0
_LITERAL_WEIGHT = 1.0
_RARE_WEIGHT = 0.1
_MAX_ATTEMPTS = 20
_MAX_WINDOW = 12
_RATIONALES = [
    (("lr", "learning_rate"), "the step size trades speed of progress against stability"),
    (("warmup",), "warmup trades early stability against time spent at a low learning rate"),
    (("decay", "wd"), "regularisation strength shapes how well the final model generalises"),
    (("batch",), "batch size trades gradient noise against steps per second"),
    (("beta", "momentum"), "momentum sets how much gradient history the optimizer keeps"),
    (("dropout",), "dropout trades regularisation against slower fitting"),
    (
        ("layer", "head", "embd", "width", "hidden", "dim"),
        "model size trades capacity against time per step",
    ),
]
_DEFAULT_RATIONALE = "a nearby value is an untested point of the search space and cheap to try"


@dataclass(frozen=True)
class KnobDomain:
    """The values a knob may take: an inclusive range (``low``..``high``, optionally integer
    and/or log-scaled) or, when ``choices`` is non-empty, a set of literals."""

    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    log: bool = False
    choices: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        """Whether ``value`` is allowed (type included: an int range takes ints only)."""
        if self.choices:
            return any(_same_literal(value, choice) for choice in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        return self.low <= value <= self.high

    def __str__(self) -> str:
        if self.choices:
            return "{" + ", ".join(_literal_text(c, '"') for c in self.choices) + "}"
        flags = " ".join(flag for flag, on in (("int", self.integer), ("log", self.log)) if on)
        return f"[{self.low:g}, {self.high:g}]" + (f" {flags}" if flags else "")


@dataclass(frozen=True)
class Knob:
    """A declared knob inside an EVOLVE block; ``line`` is 1-based, ``span`` the character
    columns of the value's source ``text`` on that line."""

    name: str
    line: int
    value: Any
    domain: KnobDomain
    span: tuple[int, int]
    text: str


@dataclass(frozen=True)
class _Site:
    """One value the agent may change: a knob's value or an anonymous numeric literal."""

    line: int
    start: int
    end: int
    text: str
    weight: float
    knob: Knob | None = None

    @property
    def label(self) -> str:
        return f"`{self.knob.name}`" if self.knob else "the constant"


@dataclass(frozen=True)
class _Change:
    site: _Site
    new: str

    def describe(self) -> str:
        return f"{self.site.label} {self.site.text} -> {self.new} (line {self.site.line})"


class _NothingToDo(Exception):
    """The parent offers nothing this agent can change; the message is the reply's error."""


def _same_literal(a: Any, b: Any) -> bool:
    # 1 == True == 1.0 in Python, but a knob set {1, True} means two different values.
    return type(a) is type(b) and a == b


def _lines(code: str) -> list[str]:
    """Lines split on newlines only (keeping them), as ``tokenize`` and ``ast`` number them."""
    parts = code.split("\n")
    return [part + "\n" for part in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _evolvable_lines(code: str) -> set[int]:
    """1-based numbers of the lines inside EVOLVE blocks (marker lines excluded)."""
    numbers: set[int] = set()
    for start, end in edits.evolve_regions(code):
        first = code.count("\n", 0, start) + 1
        numbers.update(range(first, first + code.count("\n", start, end)))
    return numbers


def _parse_domain(spec: str) -> KnobDomain | None:
    """The domain a ``# knob:`` comment declares, or None when it is malformed."""
    if spec.startswith("{"):
        try:
            node = ast.parse(spec, mode="eval").body
            if not isinstance(node, ast.Set):
                return None
            values = [ast.literal_eval(elt) for elt in node.elts]
        except (SyntaxError, ValueError):
            return None
        unique: list[Any] = []
        for value in values:
            if not any(_same_literal(value, seen) for seen in unique):
                unique.append(value)
        return KnobDomain(choices=tuple(unique))
    match = _RANGE_RE.match(spec)
    if not match:
        return None
    flags = set(match["flags"].split())
    if not flags <= {"int", "log"}:
        return None
    try:
        low, high = float(match["lo"]), float(match["hi"])
    except ValueError:
        return None
    integer, log = "int" in flags, "log" in flags
    if not low < high or (log and low <= 0):
        return None
    if integer:
        if not (low.is_integer() and high.is_integer()):
            return None
        return KnobDomain(low=int(low), high=int(high), integer=True, log=log)
    return KnobDomain(low=low, high=high, log=log)


def _char_col(line: str, byte_col: int) -> int:
    # ast reports UTF-8 byte offsets; lines are indexed by character.
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def knobs(code: str) -> list[Knob]:
    """The well-formed knobs declared inside the EVOLVE blocks of ``code``, in line order.

    See the module docstring for the syntax. Returns an empty list for a program without
    EVOLVE blocks or that is not valid Python.
    """
    try:
        evolvable = _evolvable_lines(code)
        tree = parse_program(code)
        comments = {
            tok.start[0]: tok.string
            for tok in tokenize.generate_tokens(io.StringIO(code).readline)
            if tok.type == tokenize.COMMENT
        }
    except (EditError, SyntaxError, tokenize.TokenError):
        return []
    assignments: dict[int, ast.Assign | ast.AnnAssign] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.lineno == node.end_lineno:
            assignments[node.lineno] = node
    lines = _lines(code)
    found: list[Knob] = []
    for number, comment in sorted(comments.items()):
        match = _KNOB_COMMENT_RE.match(comment)
        node = assignments.get(number)
        if not match or node is None or number not in evolvable or node.value is None:
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        if len(targets) != 1 or not isinstance(targets[0], (ast.Name, ast.Attribute)):
            continue
        domain = _parse_domain(match["spec"])
        try:
            value = ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError):
            continue
        if domain is None or not _fits_type(value, domain):
            continue
        line = lines[number - 1]
        start = _char_col(line, node.value.col_offset)
        end = _char_col(line, node.value.end_col_offset or node.value.col_offset)
        found.append(
            Knob(
                name=ast.unparse(targets[0]),
                line=number,
                value=value,
                domain=domain,
                span=(start, end),
                text=line[start:end],
            )
        )
    return found


def _fits_type(value: Any, domain: KnobDomain) -> bool:
    """Whether the current value has a type the domain can replace (its range may differ:
    an out-of-range value is pulled back in by the next change)."""
    if domain.choices:
        return True
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or not domain.integer


def _literal_sites(code: str, evolvable: set[int], skip_lines: set[int]) -> list[_Site]:
    """Anonymous numeric literals in evolvable lines, minus the structural ones."""
    tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    insignificant = {
        tokenize.NL,
        tokenize.NEWLINE,
        tokenize.COMMENT,
        tokenize.INDENT,
        tokenize.DEDENT,
    }
    significant = [tok for tok in tokens if tok.type not in insignificant]
    # Python 3.12+ tokenizes f-strings; numbers inside their fields are still string content.
    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    subscript_stack: list[bool] = []
    fstring_depth = 0
    sites: list[_Site] = []
    for i, tok in enumerate(significant):
        prev = significant[i - 1] if i else None
        if tok.type == fstring_start:
            fstring_depth += 1
        elif tok.type == fstring_end:
            fstring_depth -= 1
        elif tok.type == tokenize.OP and tok.string in "([{":
            subscript_stack.append(tok.string == "[" and _ends_operand(prev))
        elif tok.type == tokenize.OP and tok.string in ")]}":
            if subscript_stack:
                subscript_stack.pop()
        elif (
            tok.type == tokenize.NUMBER
            and not fstring_depth
            and tok.start[0] == tok.end[0]
            and tok.start[0] in evolvable
            and tok.start[0] not in skip_lines
        ):
            in_subscript = bool(subscript_stack) and subscript_stack[-1]
            weight = _literal_weight(tok.string, in_subscript, significant[max(0, i - 3) : i])
            if weight:
                sites.append(_Site(tok.start[0], tok.start[1], tok.end[1], tok.string, weight))
    return sites


def _ends_operand(tok: tokenize.TokenInfo | None) -> bool:
    """Whether a ``[`` after ``tok`` opens a subscript rather than a list display."""
    if tok is None:
        return False
    if tok.type == tokenize.NAME:
        return not keyword.iskeyword(tok.string)
    return tok.type == tokenize.STRING or tok.string in (")", "]")


def _literal_weight(text: str, in_subscript: bool, before: list[tokenize.TokenInfo]) -> float:
    """How likely a literal is to be picked; 0 for literals that are structural."""
    lowered = text.lower()
    if lowered.startswith(("0x", "0o", "0b")) or lowered.endswith("j"):
        return 0.0
    if _is_int_text(text):
        if in_subscript:
            return 0.0
        words = [tok.string for tok in before if tok.string != "-"]
        if len(words) >= 2 and words[-1] == "=" and words[-2] in _STRUCTURAL_KWARGS:
            return 0.0
        return _RARE_WEIGHT if int(text) in (0, 1) else _LITERAL_WEIGHT
    return 0.0 if float(text) == 0.0 else _LITERAL_WEIGHT


def _is_int_text(text: str) -> bool:
    return not any(c in text.lower() for c in ".ej")


def _is_number_token(text: str) -> bool:
    """Whether ``text`` is exactly one (unsigned) numeric literal token."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    return tokens[0].type == tokenize.NUMBER and tokens[0].string == text


@functools.lru_cache(maxsize=256)
def _sites(code: str) -> tuple[_Site, ...]:
    """Everything in ``code`` the agent may change, or ``_NothingToDo`` saying why not.

    Cached: a strategy asks for many children of one parent (greedy: of the best, every
    time), and locating the sites (tokenising, parsing, compiling) was the platform's
    largest cost per child."""
    try:
        evolvable = _evolvable_lines(code)
    except EditError as exc:
        raise _NothingToDo(
            f"offline agent: the parent program has no usable EVOLVE blocks ({exc})"
        ) from exc
    try:
        compile_program(code, "<parent>")
    except (SyntaxError, ValueError) as exc:
        raise _NothingToDo(
            f"offline agent: the parent program is not valid Python (line {exc.lineno}: "
            f"{exc.msg}), so its constants cannot be located"
        ) from exc
    declared = knobs(code)
    # A line with a knob comment belongs to the knob, even a malformed one; see the docstring.
    knob_lines = {
        number
        for number, line in enumerate(_lines(code), 1)
        if "#" in line and _KNOB_COMMENT_RE.search(line)
    }
    sites = [
        _Site(k.line, k.span[0], k.span[1], k.text, _KNOB_WEIGHT, knob=k)
        for k in declared
        if len(k.domain.choices) != 1
    ]
    sites += _literal_sites(code, evolvable, knob_lines)
    if not sites:
        raise _NothingToDo(
            "offline agent: nothing to perturb: the EVOLVE blocks of the parent program hold no "
            "declared knobs and no numeric constants it may change"
        )
    return tuple(sorted(sites, key=lambda s: (s.line, s.start)))


def _nonzero_gauss(rng: random.Random) -> float:
    # A draw near 0 would round back to the old value; keep every change visible.
    z = rng.gauss(0.0, 1.0)
    return z if abs(z) >= 0.25 else math.copysign(0.25, z)


def _format_float(value: float, template: str, accept: Callable[[float], bool]) -> str | None:
    """``value`` as compact float source text: the fewest significant digits (at least 3)
    whose value ``accept`` takes, in exponent notation if ``template`` uses it."""
    scientific = "e" in template.lower()
    for digits in range(3, 18):
        rounded = float(f"{value:.{digits}g}")
        text = f"{rounded:.{digits - 1}e}" if scientific else repr(rounded)
        if "e" in text:
            mantissa, exponent = text.split("e")
            if "." in mantissa:
                mantissa = mantissa.rstrip("0").rstrip(".")
            text = f"{mantissa}e{int(exponent)}"
        if accept(float(text)):
            return text
    return None


def _literal_text(value: Any, template: str) -> str:
    """Source text for a literal, keeping the template's quote style for strings."""
    if isinstance(value, str) and template.startswith('"'):
        return json.dumps(value)
    return repr(value)


def _perturb_float(value: float, template: str, rng: random.Random, sigma: float) -> str | None:
    factor = math.exp(sigma * _nonzero_gauss(rng))
    if 0.5 < value < 1.0:
        new = 1.0 - (1.0 - value) * factor
        if new <= 0.5:
            new = 1.0 - (1.0 - value) / factor
    else:
        new = value * factor
    return _format_float(new, template, lambda x: x != value and x > 0)


def _perturb_int(value: int, rng: random.Random, small: bool) -> int:
    """A nearby positive int (the caller keeps the sign); never 0, never ``value``."""
    if value <= 4 or small:
        step = 1 if value <= 4 else max(1, round(value * 0.1))
        return rng.choice([v for v in (value - step, value + step) if v >= 1])
    if value >= 8 and value & (value - 1) == 0:
        return rng.choice([value // 2, value * 2])
    new = max(1, round(value * math.exp(0.25 * _nonzero_gauss(rng))))
    return new if new != value else value + rng.choice([-1, 1])


def _perturb_literal(site: _Site, rng: random.Random, small: bool) -> str | None:
    if _is_int_text(site.text):
        value = int(site.text)
        new = 1 if value == 0 else _perturb_int(value, rng, small)
        return f"{new:_}" if "_" in site.text else str(new)
    return _perturb_float(float(site.text), site.text, rng, 0.08 if small else 0.25)


def _reflect(x: float, low: float, high: float) -> float:
    """``x`` folded back into [low, high] (keeps the step size, unlike clamping)."""
    if x > high:
        x = high - (x - high)
    if x < low:
        x = low + (low - x)
    return min(max(x, low), high)


def _perturb_knob(knob: Knob, rng: random.Random, small: bool) -> str | None:
    """New source text for the knob's value, inside its domain and different from now."""
    domain, value = knob.domain, knob.value
    if domain.choices:
        options = [c for c in domain.choices if not _same_literal(c, value)]
        return _literal_text(rng.choice(options), knob.text) if options else None
    low, high = domain.low, domain.high
    spread = (0.05 if small else 0.15) * _nonzero_gauss(rng)
    if domain.log:
        log_low, log_high = math.log(low), math.log(high)
        # Out-of-range or non-positive values have no log position to start from.
        here = math.log(value) if low <= value <= high else rng.uniform(log_low, log_high)
        target = math.exp(_reflect(here + spread * (log_high - log_low), log_low, log_high))
    else:
        here = min(max(value, low), high)
        target = _reflect(here + spread * (high - low), low, high)
    if domain.integer:
        new = int(round(target))
        if new == value:
            new = value + (1 if spread > 0 else -1)
            if not low <= new <= high:
                new = value - (new - value)
        return str(new) if domain.contains(new) and new != value else None
    return _format_float(target, knob.text, lambda x: x != value and domain.contains(x))


def _new_text(site: _Site, rng: random.Random, small: bool) -> str | None:
    if site.knob is not None:
        return _perturb_knob(site.knob, rng, small)
    return _perturb_literal(site, rng, small)


def _pick(sites: Sequence[_Site], count: int, rng: random.Random, avoid: set[int]) -> list[_Site]:
    """Up to ``count`` sites on distinct lines, by weight, avoiding ``avoid`` lines if possible."""
    pool = [s for s in sites if s.line not in avoid] or list(sites)
    chosen: list[_Site] = []
    while pool and len(chosen) < count:
        site = rng.choices(pool, weights=[s.weight for s in pool])[0]
        chosen.append(site)
        pool = [s for s in pool if s.line != site.line]
    return chosen


def _occurrences(keys: list[str], window: list[str]) -> int:
    n = len(window)
    return sum(1 for i in range(len(keys) - n + 1) if keys[i : i + n] == window)


def _window(keys: list[str], index: int, region: range) -> tuple[int, int] | None:
    """The smallest run of lines around ``index`` (within ``region``) whose text occurs once in
    the program, so the SEARCH is unambiguous; None if even the widest run repeats."""
    for size in range(1, min(_MAX_WINDOW, len(region)) + 1):
        for lo in range(index, index - size, -1):
            hi = lo + size
            if lo >= region.start and hi <= region.stop and _occurrences(keys, keys[lo:hi]) == 1:
                return lo, hi
    return None


def _render_blocks(code: str, changes: list[_Change]) -> str | None:
    """SEARCH/REPLACE blocks making ``changes`` to ``code``, or None if one cannot be placed."""
    lines = _lines(code)
    keys = [line.rstrip() for line in lines]
    regions = []
    for start, end in edits.evolve_regions(code):
        first = code.count("\n", 0, start)
        regions.append(range(first, first + code.count("\n", start, end)))
    spans: list[tuple[int, int, list[_Change]]] = []
    for change in sorted(changes, key=lambda c: c.site.line):
        index = change.site.line - 1
        region = next(r for r in regions if index in r)
        window = _window(keys, index, region)
        if window is None:
            return None
        lo, hi = window
        # Overlapping windows become one block: blocks apply in order, so a later SEARCH
        # must not include lines an earlier block already rewrote.
        if spans and lo < spans[-1][1]:
            last_lo, last_hi, merged = spans.pop()
            spans.append((min(lo, last_lo), max(hi, last_hi), [*merged, change]))
        else:
            spans.append((lo, hi, [change]))
    out = []
    for lo, hi, group in spans:
        replaced = list(lines[lo:hi])
        for change in group:
            k = change.site.line - 1 - lo
            line = replaced[k]
            replaced[k] = line[: change.site.start] + change.new + line[change.site.end :]
        out.append(
            "<<<<<<< SEARCH\n"
            + "".join(lines[lo:hi])
            + "=======\n"
            + "".join(replaced)
            + ">>>>>>> REPLACE\n"
        )
    return "\n".join(out)


def _valid_reply(code: str, text: str) -> bool:
    """Whether ``text`` applies cleanly to ``code`` and the result compiles."""
    try:
        applied = edits.apply_reply(code, text)
        compile_program(applied.code, "<child>")
    except (EditError, SyntaxError, ValueError):
        return False
    return True


def _edit_reply(code: str, changes: list[_Change], explanation: str) -> str | None:
    blocks = _render_blocks(code, changes)
    if blocks is None:
        return None
    text = f"{explanation}\n\n{blocks}"
    return text if _valid_reply(code, text) else None


def _perturbation(
    sites: Sequence[_Site], rng: random.Random, count: int, small: bool, avoid: set[int]
) -> list[_Change]:
    changes = []
    for site in _pick(sites, count, rng, avoid):
        new = _new_text(site, rng, small)
        if new is not None and new != site.text:
            changes.append(_Change(site, new))
    return changes


def _rationale(change: _Change) -> str:
    name = change.site.knob.name.lower() if change.site.knob else ""
    for words, why in _RATIONALES:
        if name and any(word in name for word in words):
            return why
    return _DEFAULT_RATIONALE


def _verb(change: _Change) -> str:
    try:
        old, new = float(change.site.text), float(change.new)
    except ValueError:
        return "change"
    return "raise" if new > old else "lower"


def _idea_text(change: _Change, code: str) -> str:
    site = change.site
    where = f"line {site.line}"
    if site.knob is None:
        source = _lines(code)[site.line - 1].strip()
        subject = f"the constant {site.text} on {where} (`{source}`)"
    else:
        subject = f"{site.label} ({where})"
    tail = {
        "name": site.knob.name if site.knob else None,
        "line": site.line,
        "col": site.start,
        "old": site.text,
        "new": change.new,
    }
    return (
        f"Idea: {_verb(change)} {subject} from {site.text} to {change.new} — "
        f"{_rationale(change)}.\n\noffline-idea: {json.dumps(tail)}\n"
    )


def _parse_idea(idea: str, sites: Sequence[_Site]) -> _Change | str:
    """The change an ``idea`` text names, or a sentence saying why it cannot be made."""
    match = _IDEA_TAIL_RE.search(idea)
    if not match:
        return "it has no offline-idea line"
    try:
        data = json.loads(match.group(1))
        name, line, col = data["name"], int(data["line"]), int(data["col"])
        old, new = str(data["old"]), str(data["new"])
    except (ValueError, KeyError, TypeError):
        return "its offline-idea line is not valid"
    if name is not None:
        # A knob is found by name, so the idea survives lines moving in the parent.
        site = next((s for s in sites if s.knob and s.knob.name == name), None)
        if site is None or site.knob is None:
            return f"the parent has no knob named {name}"
        try:
            value = ast.literal_eval(new)
        except (ValueError, SyntaxError):
            return f"{new} is not a literal"
        if not site.knob.domain.contains(value):
            return f"{new} is outside the domain {site.knob.domain} of `{name}`"
    else:
        site = next((s for s in sites if (s.line, s.start, s.text) == (line, col, old)), None)
        if site is None:
            return f"the parent has no constant {old} at line {line}, column {col}"
        if not _is_number_token(new) or _is_int_text(old) != _is_int_text(new):
            return f"{new} is not a numeric literal of the same kind as {old}"
    if new == site.text:
        return f"{site.label} already has the value {new}"
    return _Change(site, new)


def _explain(changes: list[_Change], lead: str) -> str:
    ordered = sorted(changes, key=lambda c: c.site.line)
    return f"{lead}: " + "; ".join(change.describe() for change in ordered) + "."


class OfflineAgent(Agent):
    """Seeded, network-free perturbations of knobs and constants inside EVOLVE blocks."""

    name = "offline"
    description = (
        "No network: seeded perturbations of declared knobs and numeric constants inside "
        "EVOLVE blocks, as SEARCH/REPLACE edits"
    )

    def reply(self, request: AgentRequest) -> AgentReply:
        started = time.perf_counter()
        try:
            text, error = self._respond(request), ""
        except _NothingToDo as exc:
            text, error = "", str(exc)
        call = LLMCall(
            agent=self.name,
            model="offline",
            purpose=request.purpose,
            messages=request.messages(),
            response=text,
            latency_s=time.perf_counter() - started,
            error=error,
        )
        return AgentReply(text=text, calls=[call], error=error)

    def _respond(self, request: AgentRequest) -> str:
        if edits.is_multi_file(request.parent_code):
            return _respond_in_one_file(self, request)
        code = request.parent_code
        sites = _sites(code)
        # A string seed hashes with SHA-512, identically in every process.
        rng = random.Random(f"offline:{request.seed}:{request.purpose}")
        if request.purpose == "idea":
            for _ in range(_MAX_ATTEMPTS):
                changes = _perturbation(sites, rng, 1, small=False, avoid=set())
                if changes and _edit_reply(code, changes, "") is not None:
                    return _idea_text(changes[0], code)
            raise _NothingToDo("offline agent: found no valid change to propose as an idea")
        lead = "Perturbation"
        if request.purpose == "implement":
            parsed = _parse_idea(request.idea or "", sites)
            if isinstance(parsed, _Change):
                text = _edit_reply(code, [parsed], _explain([parsed], "Implementing the idea"))
                if text is not None:
                    return text
                parsed = "the change does not apply cleanly"
            lead = f"Could not implement the idea as stated ({parsed}); a fresh perturbation"
        if request.purpose == "fix":
            # The parent is known good: one small change, away from the lines that failed.
            # This agent's edits never move lines, so the failed child's traceback line
            # numbers point into the parent too.
            avoid = {int(n) for n in _TRACEBACK_LINE_RE.findall(request.error or "")}
            count, small = 1, True
            lead = "The last change failed, so one smaller change to the working parent"
        else:
            avoid, count, small = set(), rng.randint(1, 3), False
        for _ in range(_MAX_ATTEMPTS):
            changes = _perturbation(sites, rng, count, small, avoid)
            explanation = _explain(changes, lead) if changes else ""
            if changes and request.purpose == "fix" and request.idea:
                # The idea itself failed and this change is another: say so, so that the
                # child's outcome is not credited to the idea it abandoned.
                restated = _idea_text(changes[0], code).splitlines()[0]
                explanation = f"{restated}\n\n{explanation}"
            text = _edit_reply(code, changes, explanation) if changes else None
            if text is not None:
                return text
        raise _NothingToDo(
            f"offline agent: no valid perturbation found in {_MAX_ATTEMPTS} attempts"
        )


def _respond_in_one_file(agent: OfflineAgent, request: AgentRequest) -> str:
    """A reply for a multi-file program: a change to one of its files (by the seed; an
    ``implement`` request's idea names its file), each block after that file's path line."""
    files = edits.split_files(request.parent_code)
    paths = [p for p, text in files.items() if edits.has_marker(text)]
    random.Random(f"offline-file:{request.seed}:{request.purpose}").shuffle(paths)
    named = _IDEA_TAIL_RE.search(request.idea or "") if request.purpose == "implement" else None
    with contextlib.suppress(ValueError, AttributeError):  # a mangled idea: any file
        wanted = json.loads(named.group(1)).get("file") if named else None
        paths.sort(key=lambda p: p != wanted)
    nothing = _NothingToDo("offline agent: no file of the program has EVOLVE blocks")
    for path in paths:
        try:
            text = agent._respond(request.model_copy(update={"parent_code": files[path]}))
        except _NothingToDo as exc:
            nothing = exc
            continue
        if request.purpose == "idea":
            return text.replace(
                "offline-idea: {", f'offline-idea: {{"file": {json.dumps(path)}, ', 1
            )
        return text.replace("<<<<<<< SEARCH\n", f"{path}\n<<<<<<< SEARCH\n")
    raise nothing


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_agents(register: Callable[[Any], None]) -> None:
    register(OfflineAgent)
