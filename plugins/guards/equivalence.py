"""The ``equivalence`` guard: a program may replace a protected function with its own
implementation (a fused cross-entropy, a faster kernel) only if it computes the same thing.

The environment declares which functions may be replaced, with a reference implementation
and an input generator (``guard_rules(variant)["equivalence"]``, see ``rules.py``). When a
candidate defines one of them differently from the reference program, the guard runs two
``call`` jobs through the run's own evaluator, so candidate code only ever runs in the
sandbox:

1. ``role="reference"``: a fresh child that never loads the candidate generates the inputs
   (seeded by the candidate's code hash) and runs the reference implementation;
2. ``role="candidate"``: a second fresh child generates the same inputs *before* loading the
   candidate, then calls the candidate's function on them.

Both return their outputs as JSON; the comparison happens here, in the platform, so the
candidate cannot influence the reference numbers or the verdict. It passes when every output
element is within ``atol + rtol * |reference|``; otherwise the rejection reports the largest
deviation found (and the trial it came from).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from progressbench import (
    Environment,
    EvalJob,
    Guard,
    Limits,
    Sandbox,
    SandboxContext,
    Verdict,
    hookimpl,
    parse_program,
)
from progressbench_plugins.guards.rules import EquivalenceSpec, rules_for

ENTRY = f"{__name__}:probe"
MARK = "equivalence-probe"


# --- sandbox side ------------------------------------------------------------------------
def resolve(path: str) -> Callable[..., Any]:
    """``module:attribute`` -> the object (harness code the environment names)."""
    module, _, attr = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    return target


def encode(value: Any) -> Any:
    """An output as JSON: arrays and tensors as {"shape", "values"}, containers recursively."""
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().double().numpy()
    if isinstance(value, (list, tuple)):
        return {"items": [encode(v) for v in value]}
    if value is None:
        return {"none": True}
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"outputs must be numbers, arrays or tensors, not {type(value).__name__}")
    return {"shape": list(array.shape), "values": array.astype(np.float64).ravel().tolist()}


def probe(program: Path, ctx: SandboxContext) -> dict[str, Any]:
    """Runs in the sandbox child: the outputs of one implementation on every trial."""
    import numpy as np

    opts = ctx.options
    make_inputs = resolve(opts["inputs"])
    seed = int(opts["seed"])
    trials = [make_inputs(np.random.default_rng([seed, t])) for t in range(int(opts["trials"]))]
    if opts["role"] == "reference":
        function = resolve(opts["reference"])
    else:
        from progressbench import load_program

        function = getattr(load_program(program), opts["function"], None)
        if not callable(function):
            return {"mark": MARK, "error": f"the program's {opts['function']} is not callable"}
    outputs = []
    for args in trials:
        try:
            outputs.append({"value": encode(function(*args))})
        except Exception as exc:  # reported per trial: a crash is a difference too
            outputs.append({"error": f"{type(exc).__name__}: {exc}"})
    return {"mark": MARK, "outputs": outputs}


# --- platform side -----------------------------------------------------------------------
def compare(candidate: Any, reference: Any, spec: EquivalenceSpec) -> tuple[bool, float, str]:
    """(within tolerance, largest absolute deviation, what differs) for two encoded outputs."""
    import numpy as np

    if "items" in reference or "items" in candidate:
        c_items, r_items = candidate.get("items"), reference.get("items")
        if c_items is None or r_items is None or len(c_items) != len(r_items):
            return False, math.inf, "returns a different structure (number of outputs)"
        results = [compare(c, r, spec) for c, r in zip(c_items, r_items, strict=True)]
        worst = max(results, key=lambda x: (not x[0], x[1]), default=(True, 0.0, ""))
        return all(r[0] for r in results), max((r[1] for r in results), default=0.0), worst[2]
    if "none" in reference or "none" in candidate:
        same = "none" in reference and "none" in candidate
        return (
            same,
            0.0 if same else math.inf,
            "" if same else "returns None where the reference does not",
        )
    if candidate["shape"] != reference["shape"]:
        return False, math.inf, f"shape {candidate['shape']} instead of {reference['shape']}"
    c = np.asarray(candidate["values"], dtype=np.float64)
    r = np.asarray(reference["values"], dtype=np.float64)
    if c.size == 0:
        return True, 0.0, ""
    both_nan = np.isnan(c) & np.isnan(r)
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan, 0.0, np.abs(c - r))
    diff = np.where(np.isnan(diff), np.inf, diff)  # NaN on one side, or inf - inf
    allowed = spec.atol + spec.rtol * np.abs(np.nan_to_num(r, nan=0.0, posinf=0.0, neginf=0.0))
    i = int(np.argmax(diff - allowed))
    ok = bool(np.all(diff <= allowed))
    return ok, float(diff.max()), f"element {i}: {c[i]:.6g} instead of {r[i]:.6g}"


def _module_definitions(code: str) -> dict[str, str]:
    """Top-level names a program binds, each with a dump of the statements that bind it."""
    found: dict[str, list[str]] = {}
    for node in parse_program(code).body:
        names: list[str] = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.asname or a.name.split(".")[0] for a in node.names]
        for name in names:
            found.setdefault(name, []).append(ast.dump(node))
    return {name: "\n".join(dumps) for name, dumps in found.items()}


class EquivalenceGuard(Guard):
    name: ClassVar[str] = "equivalence"
    stage: ClassVar[str] = "static"
    uses_sandbox: ClassVar[bool] = True
    description: ClassVar[str] = (
        "a replaced protected function must match the environment's reference on random inputs"
    )

    def applies(self, env: Environment, variant: str) -> bool:
        return bool(rules_for(env, variant).equivalence)

    def check_program(
        self,
        code: str,
        reference: str,
        env: Environment,
        variant: str,
        sandbox: Sandbox | None = None,
    ) -> Verdict:
        specs = rules_for(env, variant).equivalence
        try:
            ours, theirs = _module_definitions(code), _module_definitions(reference)
        except SyntaxError:
            return self.ok()  # the syntax guard reports it
        replaced = [n for n in specs if n in ours and ours[n] != theirs.get(n)]
        if not replaced:
            return self.ok()
        if sandbox is None:
            raise RuntimeError("the equivalence guard needs the run's evaluator")
        seed = int(hashlib.sha256(code.encode()).hexdigest()[:8], 16)
        resources = env.resources(variant)
        limits = Limits(seconds=resources.smoke_seconds, memory_mb=resources.memory_mb)
        checked = {}
        for name in replaced:
            spec = specs[name]

            def outputs(role: str, name: str = name, spec: EquivalenceSpec = spec) -> Any:
                options = {
                    "entry": ENTRY,
                    "role": role,
                    "function": name,
                    "seed": seed,
                    **spec.model_dump(include={"reference", "inputs", "trials"}),
                }
                job = EvalJob(program=code, phase="call", seed=seed, limits=limits, options=options)
                out = sandbox(job)
                return out, (out.raw or {}) if out.ok else {}

            ref_out, ref = outputs("reference")
            if ref.get("mark") != MARK or "outputs" not in ref:
                raise RuntimeError(
                    f"the reference {spec.reference} could not be run in the sandbox "
                    f"({ref_out.status}: {ref_out.error or ref.get('error') or 'no call support'})"
                )
            cand_out, cand = outputs("candidate")
            if not cand_out.ok or cand.get("mark") != MARK or "outputs" not in cand:
                why = cand.get("error") or f"{cand_out.status}: {cand_out.error}".strip()
                return self.reject(
                    f"your {name} replaces the harness's implementation, but it could not be "
                    f"checked against it: {why}",
                    rule="equivalence",
                    function=name,
                )
            verdict = self._judge(name, spec, cand["outputs"], ref["outputs"])
            if not verdict.passed:
                return verdict
            checked[name] = verdict.details
        return Verdict(guard=self.name, passed=True, details={"checked": checked})

    def _judge(self, name: str, spec: EquivalenceSpec, cand: list[Any], ref: list[Any]) -> Verdict:
        largest = 0.0
        for trial, (c, r) in enumerate(zip(cand, ref, strict=True)):
            if "error" in r:
                raise RuntimeError(f"the reference {spec.reference} failed: {r['error']}")
            if "error" in c:
                return self.reject(
                    f"your {name} raised {c['error']} on random inputs (trial {trial}) where the "
                    f"reference implementation works",
                    rule="equivalence",
                    function=name,
                    trial=trial,
                )
            ok, deviation, what = compare(c["value"], r["value"], spec)
            largest = max(largest, deviation)
            if not ok:
                return self.reject(
                    f"your {name} is not equivalent to the reference implementation: on random "
                    f"inputs (trial {trial}) it returns {what}; largest deviation {deviation:.3g} "
                    f"(tolerance atol {spec.atol:g} + rtol {spec.rtol:g} x |reference|). The "
                    f"harness only accepts replacements that compute the same function.",
                    rule="equivalence",
                    function=name,
                    trial=trial,
                    deviation=deviation,
                )
        return Verdict(
            guard=self.name,
            passed=True,
            details={"trials": len(ref), "max_deviation": largest},
        )


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_guards(register: Any) -> None:
    register(EquivalenceGuard())
