"""Cascade evaluation: stage 1 checks that run_search() gives a number in range, stage 2
scores how close to the global minimum it is. Written in the OpenEvolve format."""

import importlib.util
import math

LOWEST = -0.38989  # min of (x - 1.3)**2 + 0.5 sin(5x) on [-5, 5], near x = 0.992


def _bumpy(x):
    return (x - 1.3) ** 2 + 0.5 * math.sin(5 * x)


def _run(program_path):
    spec = importlib.util.spec_from_file_location("candidate", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_search()


def evaluate_stage1(program_path):
    x = _run(program_path)
    if not isinstance(x, float) or not math.isfinite(x):
        return {"combined_score": 0.0, "error": f"run_search() returned {x!r}, not a number"}
    if not -5 <= x <= 5:
        return {"combined_score": 0.0, "error": f"x = {x:g} is outside [-5, 5]"}
    return {"combined_score": 0.5, "in_range": 1.0}


def evaluate_stage2(program_path):
    x = _run(program_path)
    value = _bumpy(x)
    return {
        "combined_score": 1.0 / (1.0 + max(0.0, value - LOWEST)),
        "x": x,
        "value": value,
        "summary": f"f({x:.4f}) = {value:.5f}; the lowest value is about {LOWEST}",
    }


def evaluate(program_path):
    first = evaluate_stage1(program_path)
    if first.get("error"):
        return first
    return {**first, **evaluate_stage2(program_path)}
