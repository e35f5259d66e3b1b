"""``progressbench new-env NAME``: a new environment plugin package that works as written.

The package holds a small objective (numbers in [0, 1] whose squares sum to at most 1, their
sum maximised: the optimum is sqrt(N)), its reference program with an EVOLVE block and offline
knobs, a harness whose ``assess`` re-checks everything the program returned, the entry point,
and a test that runs the reference through the real sandbox with ``progressbench.testing``.
Replace the objective with yours and keep the shape.
"""

from __future__ import annotations

import re
from pathlib import Path

from progressbench.errors import UserError

NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

PYPROJECT = """\
[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "progressbench-{name}"
version = "0.1.0"
description = "The {name} environment for progressbench."
requires-python = ">=3.11"
dependencies = ["progressbench"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points.progressbench]
{module} = "{package}.plugin"

[tool.setuptools]
packages = ["{package}"]
"""

README = """\
# progressbench-{name}

A progressbench environment. Install it beside progressbench and it is `--env {name}`:

```bash
pip install -e '.[test]'
pytest                                   # the reference through the real sandbox
progressbench run --env {name} --budget 20
```

`{package}/env.py` holds the objective, the reference program and the harness;
`{package}/plugin.py` registers it (the entry point in `pyproject.toml`).
"""

ENV = '''\
"""The {name} environment: N numbers in [0, 1] whose squares sum to at most 1, with their sum
maximised (the optimum is sqrt(N)). Replace the objective with yours and keep the shape: the
program returns plain data, ``assess`` re-checks all of it and never trusts a claim."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

from progressbench import Assessment, Environment, Objective, SandboxContext, load_program

N = 8
BASELINE = """\\
# EVOLVE-BLOCK-START
VALUE = 0.1  # knob: [0.0, 1.0]


def solve(n):
    return [VALUE] * n
# EVOLVE-BLOCK-END
"""


class {cls}(Environment):
    name: ClassVar[str] = "{name}"
    description: ClassVar[str] = (
        f"Write solve(n) returning n numbers in [0, 1] whose squares sum to at most 1; the "
        f"score is their sum (n = {{N}}), to maximise."
    )

    def objective(self, variant: str) -> Objective:
        return Objective(metric="total", direction="maximize", records={{"optimum": math.sqrt(N)}})

    def baseline(self, variant: str) -> str:
        return BASELINE

    # --- sandbox side: runs next to the candidate, returns JSON data ---------------------
    def run(self, program: Path, ctx: SandboxContext) -> dict[str, Any]:
        values = load_program(program).solve(N)
        return {{"values": [float(v) for v in values]}}

    # --- platform side: the only source of metrics --------------------------------------
    def assess(
        self, raw: dict[str, Any], verified: dict[str, Any] | None, variant: str
    ) -> Assessment:
        values = raw.get("values")
        if not isinstance(values, list) or len(values) != N:
            return Assessment(valid=False, reason=f"solve must return {{N}} numbers")
        if not all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values):
            return Assessment(valid=False, reason="every number must lie in [0, 1]")
        if math.fsum(v * v for v in values) > 1.0:
            return Assessment(valid=False, reason="the squares sum to more than 1")
        total = math.fsum(values)
        return Assessment(valid=True, score=total, metrics={{"total": total}})
'''

PLUGIN = '''\
"""The entry point: registers the {name} environment."""

from progressbench import hookimpl

from .env import {cls}


# --- registration ------------------------------------------------------------------------
@hookimpl
def register_environments(register):
    register({cls}())
'''

TEST = '''\
"""The reference program through every stage of a run, in the real sandbox."""

from progressbench.testing import check_program
from {package}.env import BASELINE, N


def test_the_reference_is_valid():
    checked = check_program("{name}", BASELINE)
    assert checked.valid, checked.reason
    assert abs(checked.metrics["total"] - 0.1 * N) < 1e-9


def test_a_program_that_breaks_the_constraint_is_invalid():
    checked = check_program("{name}", BASELINE.replace("VALUE = 0.1", "VALUE = 0.9"))
    assert not checked.valid and "more than 1" in checked.reason
'''


def new_environment(name: str, parent: Path) -> Path:
    """Write the package for environment ``name`` under ``parent``; returns its folder."""
    if not NAME.match(name):
        raise UserError(
            f"environment name {name!r}: use lower-case letters, digits and single dashes "
            "(e.g. my-env)"
        )
    if not parent.is_dir():
        raise UserError(f"folder {str(parent)!r} does not exist")
    module = name.replace("-", "_")
    package = f"progressbench_{module}"
    root = parent / f"progressbench-{name}"
    if root.exists():
        raise UserError(f"{root} exists already: choose another name or folder")
    fields = {
        "name": name,
        "module": module,
        "package": package,
        "cls": "".join(part.capitalize() for part in name.split("-")) + "Env",
    }
    files = {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        f"{package}/__init__.py": '"""The {name} environment for progressbench."""\n',
        f"{package}/env.py": ENV,
        f"{package}/plugin.py": PLUGIN,
        "tests/test_env.py": TEST,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**fields))
    return root
