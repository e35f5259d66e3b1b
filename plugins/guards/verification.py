"""The ``verification`` guard: a result is valid only if the environment's independent
re-evaluation (``Environment.verify``, a fresh process working from ``run``'s artifacts)
agrees with what the run reported.

Two conventions feed it; an environment may use either or both (docs/integrity.md):

- declarative, ``guard_rules(variant)["agreement"] = {key: {"atol": .., "rtol": ..}}``: the
  guard compares ``outcome.raw[key]`` (what the run reported) with ``outcome.verified[key]``
  (what the verifier recomputed): numbers, or equally long lists of numbers;
- computed, for environments whose ``assess`` pairs the numbers itself: entries
  ``{"name", "reported", "verified", "tolerance"}`` in ``Assessment.telemetry["agreement"]``.

Every mismatch is stored with both numbers. A verifying environment whose outcome carries no
verification at all is rejected too: an evaluator that skipped the second process must not
produce valid results.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from progressbench import Assessment, Environment, EvalOutcome, Guard, Verdict, hookimpl
from progressbench_plugins.guards.rules import rules_for

TELEMETRY_KEY = "agreement"


def _numbers(value: Any) -> list[float] | None:
    """A number or a flat list of numbers as floats; None for anything else."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in items):
        return None
    return [float(x) for x in items]


def _deviation(reported: list[float], verified: list[float]) -> tuple[float, int]:
    """Largest |reported - verified| and where; a NaN on one side only is infinitely far."""
    worst, at = 0.0, 0
    for i, (r, v) in enumerate(zip(reported, verified, strict=True)):
        if math.isnan(r) and math.isnan(v):
            continue
        d = abs(r - v) if math.isfinite(r) and math.isfinite(v) else (0.0 if r == v else math.inf)
        if d > worst:
            worst, at = d, i
    return worst, at


class VerificationGuard(Guard):
    name: ClassVar[str] = "verification"
    stage: ClassVar[str] = "result"
    description: ClassVar[str] = (
        "the environment's fresh-process re-evaluation agrees with what the run reported"
    )

    def applies(self, env: Environment, variant: str) -> bool:
        return env.verifies or bool(rules_for(env, variant).agreement)

    def check_result(
        self,
        code: str,
        outcome: EvalOutcome,
        assessment: Assessment,
        env: Environment,
        variant: str,
    ) -> Verdict:
        if not outcome.ok:
            return self.ok()
        specs = rules_for(env, variant).agreement
        if outcome.verified is None:
            if env.verifies or specs:
                return self.reject(
                    "the environment re-evaluates every result in a fresh process, but this "
                    "evaluation came back without that verification",
                    rule="verification-missing",
                )
            return self.ok()
        raw = outcome.raw or {}
        for key, spec in specs.items():
            reported, verified = _numbers(raw.get(key)), _numbers(outcome.verified.get(key))
            if reported is None or verified is None:
                side = "run" if reported is None else "verification"
                return self.reject(
                    f"the {side} did not return {key!r} as a number or a list of numbers",
                    rule="verification-missing",
                    name=key,
                )
            if len(reported) != len(verified):
                return self.reject(
                    f"the run reported {len(reported)} values of {key!r}, the verification "
                    f"recomputed {len(verified)}",
                    rule="mismatch",
                    name=key,
                )
            worst, at = _deviation(reported, verified)
            tolerance = spec.atol + spec.rtol * abs(verified[at])
            if worst > tolerance:
                item = at if len(reported) > 1 else None
                return self._mismatch(key, reported[at], verified[at], tolerance, worst, item)
        for entry in assessment.telemetry.get(TELEMETRY_KEY) or []:
            name = str(entry.get("name", "?"))
            reported, verified = entry.get("reported"), entry.get("verified")
            tolerance = float(entry.get("tolerance", 0.0))
            pair = _numbers([reported, verified])
            worst = _deviation(pair[:1], pair[1:])[0] if pair else math.inf
            if worst > tolerance:
                return self._mismatch(name, reported, verified, tolerance, worst, None)
        return self.ok()

    def _mismatch(
        self,
        name: str,
        reported: Any,
        verified: Any,
        tolerance: float,
        worst: float,
        at: int | None,
    ) -> Verdict:
        where = f" (item {at})" if at is not None else ""
        return self.reject(
            f"the run reported {name} = {reported}{where}, but the independent re-evaluation "
            f"in a fresh process gives {verified} (|difference| {worst:.3g} > tolerance "
            f"{tolerance:.3g}); the result is not the one the program's training earned",
            rule="mismatch",
            name=name,
            reported=reported,
            verified=verified,
            tolerance=tolerance,
        )


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_guards(register: Any) -> None:
    register(VerificationGuard())
