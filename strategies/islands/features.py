"""Behavioural descriptors: where a program falls on an island's MAP-Elites grid."""

from __future__ import annotations

import math
from dataclasses import dataclass
from difflib import SequenceMatcher

from progressbench import Feature, ProgramView

Cell = tuple[int, ...]

# Default axes when the environment declares none. Both are relative to the reference so that
# the grid means the same thing in every environment and needs no per-environment ranges:
# log2 of the code length ratio (0.7x to 1.4x; about 7% per bin with 10 bins) and the square
# root of the changed share of lines (the root spreads the small, local edits that dominate in
# practice over several bins).
LENGTH_AXIS = "code_length"
CHANGE_AXIS = "change"


@dataclass(frozen=True)
class Axis:
    name: str
    low: float
    high: float
    bins: int

    def bin(self, value: float | None) -> int:
        # Missing or out-of-range values land in the edge bins rather than being dropped, so
        # every valid program still gets a cell.
        if value is None or not math.isfinite(value) or self.high <= self.low:
            return 0
        index = math.floor((value - self.low) / (self.high - self.low) * self.bins)
        return min(max(index, 0), self.bins - 1)


class Descriptor:
    """Maps a program to its cell, using the environment's features or the default axes."""

    def __init__(self, features: list[Feature], default_bins: int):
        self.relative = not features
        if features:
            self.axes = [Axis(f.name, f.low, f.high, max(1, f.bins)) for f in features]
        else:
            self.axes = [
                Axis(LENGTH_AXIS, -0.5, 0.5, default_bins),
                Axis(CHANGE_AXIS, 0.0, 1.0, default_bins),
            ]

    def values(self, program: ProgramView, reference_code: str) -> dict[str, float]:
        if not self.relative:
            return program.features
        ref_lines = reference_code.splitlines()
        lines = program.code.splitlines()
        similarity = SequenceMatcher(None, ref_lines, lines, autojunk=False).ratio()
        return {
            LENGTH_AXIS: math.log2(max(len(program.code), 1) / max(len(reference_code), 1)),
            CHANGE_AXIS: math.sqrt(max(0.0, 1.0 - similarity)),
        }

    def cell(self, program: ProgramView, reference_code: str) -> Cell:
        values = self.values(program, reference_code)
        return tuple(axis.bin(values.get(axis.name)) for axis in self.axes)

    def size(self) -> int:
        return math.prod(axis.bins for axis in self.axes)

    def label(self) -> str:
        return " x ".join(f"{axis.name}[{axis.bins}]" for axis in self.axes)


def distance(a: Cell, b: Cell) -> int:
    """Chebyshev distance: cells that touch, diagonals included, are at distance 1."""
    return max((abs(x - y) for x, y in zip(a, b, strict=True)), default=0)
