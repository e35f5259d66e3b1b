"""Static scans run in threads of the run loop: parsing must be safe there (issue 16, class
7). CPython 3.11's AST constructor counts its recursion in state all threads share; with a
thread switch in the middle of a conversion (a collection running a finaliser is enough), two
parses at once failed with "AST constructor recursion depth mismatch" and the static guard,
failing closed, rejected a valid program."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from progressbench import parse_program, plugins
from progressbench_plugins.guards.core import SyntaxGuard
from progressbench_plugins.guards.static import StaticGuard

DEEP = (
    "x = " + "[" * 120 + "1" + "]" * 120 + "\n"
    "def f():\n" + "".join("    " * (i + 1) + "if x:\n" for i in range(70)) + "    " * 71 + "pass\n"
)


class _Finaliser:
    """Garbage whose collection runs Python code, so threads switch mid-parse."""

    def __del__(self) -> None:
        sum(range(50))


@pytest.fixture
def switching() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def hammer(work: Callable[[], object], threads: int = 8, rounds: int = 40) -> list[str]:
    """Run ``work`` from many threads at once amid cyclic garbage; the errors it raised."""
    errors: list[str] = []

    def loop() -> None:
        for _ in range(rounds):
            cycle = _Finaliser()
            cycle.me = cycle  # type: ignore[attr-defined]
            del cycle
            try:
                work()
            except Exception as exc:
                errors.append(repr(exc))
                return

    pool = [threading.Thread(target=loop) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return errors


def test_parse_program_is_safe_from_many_threads(switching: None) -> None:
    assert hammer(lambda: parse_program(DEEP)) == []


def test_static_guards_scan_deep_programs_concurrently(switching: None) -> None:
    env = plugins.get_environment("circle-packing")
    variant = env.pick_variant(None)
    reference = env.baseline(variant)
    program = reference.replace("# EVOLVE-BLOCK-END", DEEP + "# EVOLVE-BLOCK-END")
    rejected: list[str] = []

    def scan() -> None:
        for guard in (SyntaxGuard(), StaticGuard()):
            verdict = guard.check_program(program, reference, env, variant)
            if not verdict.passed:
                rejected.append(verdict.reason)

    assert hammer(scan, rounds=10) == [] and rejected == []
