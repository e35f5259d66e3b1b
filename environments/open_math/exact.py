"""Exact arithmetic for record-grade verification, shared by every open-math problem.

Every number a candidate returns is a binary float or an integer, so it *is* a rational
number: ``Fraction(x)`` is exact. The verifiers compare squares instead of taking square
roots, bound the few irrational quantities (``sqrt(3)``) from both sides with integer square
roots, and round a certified value outward only once, at the very end, into the float that is
stored (down for a lower bound, up for an upper bound). Nothing here trusts the raw data: it
arrives as JSON from a sandbox that ran hostile code, so shapes, types, sizes and finiteness
are checked before any arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any


class Infeasible(Exception):
    """The construction is not certified; the message is the one-line reason an agent sees."""


def number(value: Any, where: str) -> Fraction:
    """``value`` as an exact rational: an int or a finite float (never a bool, a string, ...)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Infeasible(f"{where} is not a number (got {type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise Infeasible(f"{where} is not finite ({value})")
    return Fraction(value)


def vector(raw: Any, length: int | None, where: str, limit: int) -> list[Any]:
    """``raw`` checked to be a list of at most ``limit`` plain numbers (exactly ``length`` of
    them when given), returned as is (ints and finite floats)."""
    if not isinstance(raw, list):
        raise Infeasible(f"{where} must be a list of numbers")
    if length is not None and len(raw) != length:
        raise Infeasible(f"{where} must have {length} entries, got {len(raw)}")
    if not raw or len(raw) > limit:
        raise Infeasible(f"{where} must have between 1 and {limit} entries, got {len(raw)}")
    for i, value in enumerate(raw):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise Infeasible(f"{where}[{i}] is not a number (got {type(value).__name__})")
        if isinstance(value, float) and not math.isfinite(value):
            raise Infeasible(f"{where}[{i}] is not finite ({value})")
    return raw


def matrix(raw: Any, rows: int | None, cols: int, where: str, limit: int) -> list[list[Fraction]]:
    """``raw`` as ``rows`` x ``cols`` exact rationals (``rows`` None: 1 to ``limit`` rows)."""
    if not isinstance(raw, list):
        raise Infeasible(f"{where} must be a list of {cols}-number rows")
    if rows is not None and len(raw) != rows:
        raise Infeasible(f"{where} must have {rows} rows, got {len(raw)}")
    if not raw or len(raw) > limit:
        raise Infeasible(f"{where} must have between 1 and {limit} rows, got {len(raw)}")
    return [
        [Fraction(v) for v in vector(row, cols, f"{where}[{i}]", cols)] for i, row in enumerate(raw)
    ]


def isqrt_bounds(value: Fraction, bits: int = 96) -> tuple[Fraction, Fraction]:
    """Rationals ``lo <= sqrt(value) <= hi`` with ``hi - lo <= 2**-bits`` (value >= 0)."""
    if value < 0:
        raise ValueError("square root of a negative number")
    scale = 1 << (2 * bits)
    # floor(sqrt(p * scale / q)) / 2**bits is a lower bound; +1 ulp is an upper bound.
    root = math.isqrt(value.numerator * scale // value.denominator)
    lo = Fraction(root, 1 << bits)
    hi = lo if lo * lo == value else Fraction(root + 1, 1 << bits)
    return lo, hi


def outward(value: Fraction, up: bool) -> float:
    """The nearest float on the safe side of ``value``: never below it when ``up`` (an upper
    bound stays an upper bound), never above it otherwise."""
    approx = float(value)
    if up and Fraction(approx) < value:
        approx = math.nextafter(approx, math.inf)
    elif not up and Fraction(approx) > value:
        approx = math.nextafter(approx, -math.inf)
    return approx


def to_integers(values: Sequence[Fraction]) -> tuple[list[int], int]:
    """Integers ``m`` and one denominator ``d`` with ``values[i] == m[i] / d`` exactly."""
    denominator = 1
    for v in values:
        denominator = math.lcm(denominator, v.denominator)
    return [v.numerator * (denominator // v.denominator) for v in values], denominator


def quantize(values: Sequence[int | float], bits: int, relative: bool) -> list[int]:
    """``floor(v * 2**bits / top)`` for each non-negative value ``v``, exactly, where ``top``
    is the largest value (``relative``) or 1. The step functions certified are these
    integers: a fixed, documented rounding *down* of what the program returned."""
    ratios = [float(v).as_integer_ratio() for v in values]
    top_num, top_den = max(ratios, key=lambda r: Fraction(*r)) if relative else (1, 1)
    if top_num == 0:
        return [0] * len(values)
    return [(num * top_den << bits) // (den * top_num) for num, den in ratios]


def _pack(ints: Sequence[int], width: int) -> int:
    return int.from_bytes(b"".join(i.to_bytes(width, "little") for i in ints), "little")


def convolve(a: Sequence[int], b: Sequence[int]) -> list[int]:
    """The exact full convolution of two non-negative integer sequences, by one big-integer
    multiplication (Kronecker substitution): each slot is wide enough that no coefficient
    spills into the next."""
    top = max(a) * max(b) * min(len(a), len(b))
    width = max(1, (top.bit_length() + 8) // 8)
    product = (_pack(a, width) * _pack(b, width)).to_bytes(width * (len(a) + len(b)), "little")
    return [
        int.from_bytes(product[k * width : (k + 1) * width], "little")
        for k in range(len(a) + len(b) - 1)
    ]


def cross(o: Sequence[Fraction], a: Sequence[Fraction], b: Sequence[Fraction]) -> Fraction:
    """Twice the signed area of the triangle o, a, b (positive when counter-clockwise)."""
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def hull_area2(points: Sequence[Sequence[Fraction]]) -> Fraction:
    """Twice the area of the convex hull of ``points`` (Andrew's monotone chain, exact)."""
    pts = sorted(set((p[0], p[1]) for p in points))
    if len(pts) < 3:
        return Fraction(0)

    def chain(seq: Sequence[tuple[Fraction, Fraction]]) -> list[tuple[Fraction, Fraction]]:
        out: list[tuple[Fraction, Fraction]] = []
        for p in seq:
            while len(out) >= 2 and cross(out[-2], out[-1], p) <= 0:
                out.pop()
            out.append(p)
        return out[:-1]

    hull = chain(pts) + chain(pts[::-1])
    return sum(
        (
            hull[i][0] * hull[(i + 1) % len(hull)][1] - hull[(i + 1) % len(hull)][0] * hull[i][1]
            for i in range(len(hull))
        ),
        Fraction(0),
    )
