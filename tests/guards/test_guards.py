"""The integrity guards, one by one: what each rejects, with which rule and line, and what
legitimate programs it must leave alone."""

from __future__ import annotations

import json
import math
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import integrity_env
import pytest

from progressbench import plugins
from progressbench.contracts.environment import Assessment
from progressbench.contracts.evaluator import EvalOutcome
from progressbench.contracts.program import join_files, split_files
from progressbench.errors import PluginError
from progressbench.run.config import RunConfig
from progressbench.run.loop import RunLoop
from progressbench.run.source import read_user_program
from progressbench.run.stages import pick_guards
from progressbench.store.database import LLMCallRecord, Store
from progressbench_environments.circle_packing.plugin import CirclePacking
from progressbench_plugins.evaluators.local import LocalEvaluator
from progressbench_plugins.guards.core import EditScopeGuard
from progressbench_plugins.guards.equivalence import EquivalenceGuard
from progressbench_plugins.guards.judge import JudgeGuard, suspicious_lines
from progressbench_plugins.guards.static import StaticGuard
from progressbench_plugins.guards.verification import VerificationGuard

CP = CirclePacking()
CP_REFERENCE = CP.baseline("n26")
PROGRAMS = Path(__file__).resolve().parents[1] / "programs"
ANCHOR = "RING1_COUNT = 8  # knob: [5, 11] int\n"


@pytest.fixture(scope="module", autouse=True)
def registered(module_plugin) -> None:
    module_plugin(integrity_env)


def in_block(body: str, reference: str = CP_REFERENCE) -> str:
    """``reference`` with ``body`` at the top of its (first) EVOLVE block."""
    return reference.replace(ANCHOR, textwrap.dedent(body).strip("\n") + "\n" + ANCHOR, 1)


def static(body: str, env=None, reference: str = CP_REFERENCE):
    # The generic rules by default: circle-packing without its declared packages (numpy,
    # scipy: tests/test_packages.py), so that torch code can be judged too.
    env = env or RulesEnv({})
    return StaticGuard().check_program(in_block(body, reference), reference, env, "n26")


# --- static ---------------------------------------------------------------------------------
def test_reference_programs_pass():
    assert StaticGuard().check_program(CP_REFERENCE, CP_REFERENCE, CP, "n26").passed
    nanogpt = plugins.get_environment("nanogpt")
    tiny = nanogpt.baseline("tiny")
    # Judged on its own (the empty program as reference), not just relative to itself.
    assert StaticGuard().check_program(tiny, "", nanogpt, "tiny").passed


@pytest.mark.parametrize(
    "body",
    [
        "import torch\nimport torch.nn.functional as F\nm = torch.nn.Linear(2, 2)\nm.eval()\n"
        "m = torch.compile(m)\ntorch.backends.cudnn.benchmark = True\n"
        "torch._inductor.config.coordinate_descent_tuning = True\ntorch.save(m, 'ckpt.pt')",
        "import os, sys, time, threading, dataclasses, functools, itertools, random\n"
        "P = os.path.join('a', 'b')\nsys.stdout.write('hi')\nT0 = time.perf_counter()\n"
        "N = os.cpu_count()",
        "with open('notes.txt', 'w') as f:\n    f.write(f'{3:.1f} tokens/s')",
        '"""A docstring may mention __dict__ and /etc/passwd."""\nX = 1',
        "class M:\n    def __init__(self):\n        super().__init__()\n        self.name = type(self).__name__",
        "def evaluate(model):\n    return model.eval()",
    ],
)
def test_legitimate_code_passes(body):
    verdict = static(body)
    assert verdict.passed, verdict.reason


@pytest.mark.parametrize(
    ("body", "rule", "fragment"),
    [
        ("import urllib.request", "forbidden-module", "network access"),
        ("from multiprocessing import Pool", "forbidden-module", "starting processes"),
        ("import _posixsubprocess", "forbidden-module", "private interpreter internal"),
        ("import torch.utils.cpp_extension", "forbidden-module", "native code"),
        ("from numpy import *", "star-import", "hides what is used"),
        ("import os\nos.system('id')", "forbidden-attribute", "os.system"),
        ("from os import environ", "forbidden-attribute", "os.environ"),
        ("import sys\nsys.modules['torch'] = None", "forbidden-attribute", "sys.modules"),
        ("import io\nio.open('x')", "forbidden-attribute", "io.open"),
        ("f = eval", "dynamic-code", "eval()"),
        ("x = compile('1', 'f', 'eval')", "dynamic-code", "compile()"),
        ("import math\ng = getattr(math, NAME)", "dynamic-attribute", "computed attribute"),
        ("g = globals()", "reflection", "globals()"),
        ("x = f.__code__", "reflection", "__code__"),
        ("x = e.__traceback__.tb_frame", "reflection", "tb_frame"),
        ("k = 'cell_contents' and 'f_back'", "reflection", "reflective attribute"),
        ("open('/etc/passwd')", "file-access", "outside the scratch directory"),
        ("open('../../pb.db')", "file-access", "outside the scratch directory"),
        ("import numpy as np\nnp.load(PATH)", "file-access", "not a string literal"),
        ("DATA = '~/.cache/data.bin'", "file-access", "absolute path"),
        ("import time\ntime.time = lambda: 0", "module-patch", "changes time.time"),
        ("import time as t\nt.sleep = None", "module-patch", "changes time.sleep"),
        ("import numpy\nsetattr(numpy, 'sum', len)", "module-patch", "setattr() on numpy"),
        ("import torch\ntorch.backends.cuda.matmul.allow_tf32 = 'sh -c id'", "module-patch", ""),
        ("import math\nprint(math)", "module-escape", "module math used as a value"),
    ],
)
def test_rules(body, rule, fragment):
    verdict = static(body)
    assert not verdict.passed and verdict.rule == rule, verdict.reason
    assert fragment in verdict.reason
    # The line is the program's, where the agent's edit put the construct.
    assert in_block(body).splitlines()[verdict.line - 1].strip() in textwrap.dedent(body)


def test_rejection_reads_well_and_lists_every_finding():
    body = "import socket\nimport os\nos.kill(1, 9)\nx = eval('1')"
    verdict = static(body)
    first = in_block(body).splitlines().index("import socket") + 1
    assert verdict.rule == "forbidden-module" and verdict.line == first
    lines = verdict.reason.splitlines()
    assert lines[0] == "3 forbidden construct(s):"
    assert lines[1] == (
        f"- line {first}: `import socket`: module socket is forbidden (network access) "
        "[forbidden-module]"
    )
    assert any("os.kill" in line and "[forbidden-attribute]" in line for line in lines)
    assert any(line.startswith("Why [dynamic-code]:") for line in lines)
    assert [v["rule"] for v in verdict.details["violations"]] == [
        "forbidden-module", "forbidden-attribute", "dynamic-code",
    ]  # fmt: skip


def test_findings_of_the_reference_are_not_the_candidates():
    reference = in_block("import os\nKEY = os.environ.get('RANK')")
    # The reference's own use, outside what the agent changed, is the environment's business.
    assert static("X = 1", reference=reference).passed
    verdict = static("Y = os.environ.get('OTHER')", reference=reference)
    assert not verdict.passed and verdict.rule == "forbidden-attribute"
    assert (
        verdict.line
        == in_block("Y = os.environ.get('OTHER')", reference)
        .splitlines()
        .index("Y = os.environ.get('OTHER')")
        + 1
    )


class RulesEnv(CirclePacking):
    packages = ()

    def __init__(self, rules):
        self.rules = rules

    def guard_rules(self, variant):
        return self.rules


@pytest.mark.parametrize(
    "body",
    [
        "def harness_value():\n    return 1",
        "harness_value = 3",
        "def f(harness_value):\n    pass",
        "obj.harness_value = 2",
        "setattr(obj, 'harness_value', 2)",
        "for harness_value in range(3):\n    pass",
        "from math import pi as harness_value",
        "import time\ntime.perf_counter = lambda: 0",
    ],
)
def test_protected_names(body):
    env = RulesEnv({"protected_names": ["harness_value", "time.perf_counter"]})
    verdict = static(body, env=env)
    assert not verdict.passed and verdict.rule == "protected-name", verdict.reason
    assert "protected" in verdict.reason


def test_environment_module_and_attribute_rules():
    allow = RulesEnv({"allowed_modules": ["math", "numpy"]})
    assert static("import math\nimport numpy.linalg", env=allow).passed
    verdict = static("import random", env=allow)
    assert verdict.rule == "module-not-allowed" and "math, numpy" in verdict.reason
    # Allowing numpy does not allow its forbidden part.
    assert static("import numpy.ctypeslib", env=allow).rule == "forbidden-module"
    seeded = RulesEnv(
        {"forbidden_attributes": ["torch.manual_seed"], "forbidden_modules": ["scipy"]}
    )
    assert static("import torch\ntorch.manual_seed(1)", env=seeded).rule == "forbidden-attribute"
    assert static("import scipy.optimize", env=seeded).rule == "forbidden-module"
    exempt = RulesEnv({"allowed_attributes": ["os.environ"]})
    assert static("import os\nR = os.environ.get('RANK')", env=exempt).passed


def test_the_allow_list_never_lifts_the_deny_list():
    """Field trial: an author who allowed the whole standard library allowed subprocess and
    socket with it. Only a ban lifted by name is lifted."""
    stdlib = RulesEnv({"allowed_modules": ["math", "socket", "subprocess", "json"]})
    assert static("import json", env=stdlib).passed
    for module in ("socket", "subprocess"):
        assert static(f"import {module}", env=stdlib).rule == "forbidden-module"
    lifted = RulesEnv(
        {"allowed_modules": ["math", "socket"], "allowed_forbidden_modules": ["socket"]}
    )
    assert static("import socket", env=lifted).passed
    assert static("import subprocess", env=lifted).rule == "forbidden-module"


def test_a_multi_file_program_imports_its_own_files_and_nothing_else_more():
    """Under circle-packing's declared packages (numpy, scipy), the two-file fixture's entry
    imports its second file; in `eval` it is judged against the environment's one-file
    reference, so nothing of its own is subtracted."""
    program = read_user_program(str(PROGRAMS / "two_file_packing"))
    assert StaticGuard().check_program(program, CP_REFERENCE, CP, "n26").passed
    files = split_files(program)
    for line in (
        "from pack_kernels import max_radii",
        "import sub.util\nfrom sub import util",
        "from sub.util import helper",
    ):
        main = files["main.py"].replace("import pack_kernels\n", f"import pack_kernels\n{line}\n")
        candidate = join_files({**files, "main.py": main, "sub/util.py": "X = 1\n"})
        verdict = StaticGuard().check_program(candidate, program, CP, "n26")
        assert verdict.passed, (line, verdict.reason)
    # Its own files lift no other rule: undeclared and forbidden modules, and patching its
    # own module, are refused as in a one-file program.
    for line, rule in (
        ("import sympy", "module-not-allowed"),
        ("import subprocess", "forbidden-module"),
        ("pack_kernels.SHRINK = 0.5", "module-patch"),
    ):
        main = files["main.py"].replace("import pack_kernels\n", f"import pack_kernels\n{line}\n")
        verdict = StaticGuard().check_program(
            join_files({**files, "main.py": main}), program, CP, "n26"
        )
        assert verdict.rule == rule, (line, verdict.reason)
    # A one-file program has no files of its own to import.
    assert static("import pack_kernels", env=CP).rule == "module-not-allowed"


def test_invalid_guard_rules_fail_loudly():
    with pytest.raises(PluginError, match="protected_name"):
        static("X = 1", env=RulesEnv({"protected_name": ["x"]}))


# --- edit scope -----------------------------------------------------------------------------
def test_edit_scope_rejects_changes_outside_evolve_blocks():
    guard = EditScopeGuard()
    assert guard.check_program(in_block("X = 2"), CP_REFERENCE, CP, "n26").passed
    outside = CP_REFERENCE.replace("def run_packing():", "def run_packing():\n    return [], []")
    verdict = guard.check_program(outside, CP_REFERENCE, CP, "n26")
    assert not verdict.passed and verdict.rule == "outside-evolve-block"
    # The reported line is the reference's first changed line: the one after the def.
    line = CP_REFERENCE.splitlines().index("def run_packing():") + 2
    assert verdict.line == line and f"line {line}" in verdict.reason


# --- verification ---------------------------------------------------------------------------
ENV = integrity_env.IntegrityTestEnv()
VALID = Assessment(valid=True, score=1.0, metrics={"value": 1.0})


def check(raw, verified, assessment=VALID, env=ENV, status="ok"):
    outcome = EvalOutcome(status=status, raw=raw, verified=verified)
    return VerificationGuard().check_result("", outcome, assessment, env, "default")


def test_verification_applies_where_results_are_reverified():
    assert VerificationGuard().applies(ENV, "default")
    assert not VerificationGuard().applies(CP, "n26")


def test_verification_agreement():
    assert check({"value": 1.0}, {"value": 1.0 + 1e-7}).passed
    verdict = check({"value": 1.0}, {"value": 1.5})
    assert not verdict.passed and verdict.rule == "mismatch"
    assert verdict.details["reported"] == 1.0 and verdict.details["verified"] == 1.5
    assert "1.0" in verdict.reason and "1.5" in verdict.reason
    assert check({"value": [1.0, 2.0]}, {"value": [1.0, 2.5]}).details["name"] == "value"
    assert check({"value": math.nan}, {"value": 1.0}).rule == "mismatch"
    assert check({"value": math.nan}, {"value": math.nan}).passed
    assert check({"value": [1.0]}, {"value": [1.0, 1.0]}).rule == "mismatch"
    assert check({}, {"value": 1.0}).rule == "verification-missing"
    assert check({"value": 1.0}, None).rule == "verification-missing"
    assert check({"value": 1.0}, None, status="timeout").passed  # failed anyway


def test_verification_reads_the_environments_own_comparison():
    pairs = {
        "agreement": [{"name": "probe_loss", "reported": 1.61, "verified": 1.75, "tolerance": 0.01}]
    }
    verdict = check({"value": 1.0}, {"value": 1.0}, VALID.model_copy(update={"telemetry": pairs}))
    assert not verdict.passed and verdict.rule == "mismatch"
    assert verdict.details["reported"] == 1.61 and verdict.details["verified"] == 1.75
    pairs["agreement"][0]["verified"] = 1.615
    assert check(
        {"value": 1.0}, {"value": 1.0}, VALID.model_copy(update={"telemetry": pairs})
    ).passed


# --- equivalence (runs candidate code in the sandbox) ----------------------------------------
STABLE = """
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
"""


@pytest.fixture(scope="module")
def sandbox(registered: None) -> Iterator[LocalEvaluator]:
    ev = LocalEvaluator(ENV, "default", 1, {"plugin_modules": ["integrity_env"]})
    ev.start()
    yield ev
    ev.close()


def equivalent(body: str, sandbox: LocalEvaluator):
    reference = integrity_env.BASELINE
    code = reference.replace("SCALE = 1.0", textwrap.dedent(body).strip() + "\n\n\nSCALE = 1.0")
    return EquivalenceGuard().check_program(
        code, reference, ENV, "default", sandbox=sandbox.evaluate
    )


def test_equivalence_accepts_a_faithful_replacement(sandbox):
    verdict = equivalent(STABLE, sandbox)
    assert verdict.passed, verdict.reason
    assert verdict.details["checked"]["softmax"]["trials"] == 8


def test_programs_that_replace_nothing_need_no_sandbox():
    assert (
        EquivalenceGuard()
        .check_program(
            integrity_env.BASELINE.replace("1.0", "1.5"), integrity_env.BASELINE, ENV, "default"
        )
        .passed
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("def softmax(x):\n    return np.exp(x) / np.exp(x).sum()", "largest deviation"),
        ("def softmax(x):\n    return np.exp(x - x.max()) / 2", "largest deviation"),
        ("def softmax(x):\n    return x[:, :1]", "shape"),
        ("def softmax(x):\n    raise ValueError('not today')", "ValueError: not today"),
        ("softmax = 3", "not callable"),
    ],
)
def test_equivalence_rejects_with_the_largest_deviation(body, fragment, sandbox):
    verdict = equivalent(body, sandbox)
    assert not verdict.passed and verdict.rule == "equivalence", verdict.reason
    assert fragment in verdict.reason


@pytest.mark.skipif(os.geteuid() != 0, reason="tells sandbox from platform by the uid")
def test_equivalence_runs_the_candidate_in_the_sandbox_not_the_platform(sandbox):
    # Correct only where it does not run as root: in the platform it would fail the check.
    body = STABLE.replace(
        "def softmax(x):\n",
        "def softmax(x):\n    import os\n    if os.getuid() == 0:\n        return x\n",
    )
    assert equivalent(body, sandbox).passed


def test_equivalence_guard_in_a_run_rejects_and_feeds_back(tmp_path):
    store = Store(str(tmp_path / "pb.db"))
    source = store.create_run(
        env=ENV.name,
        variant="default",
        strategy="best-of-n",
        agent="test",
        budget=1,
        config_json="{}",
    )
    wrong = integrity_env.BASELINE.replace(
        "SCALE = 1.0", "def softmax(x):\n    return np.exp(x) / 3\n\n\nSCALE = 1.0"
    )
    reply = f"```python\n{wrong}```"
    store.add(
        LLMCallRecord(
            run_id=source.id,
            request_key="1:edit:1",
            agent="test",
            model="t",
            purpose="edit",
            response=reply,
        )
    )
    config = RunConfig(
        env=ENV.name,
        strategy="best-of-n",
        agents=[f"replay:{source.id}"],
        budget=1,
        workers=1,
        n_fast=0,
        evaluator_options={"plugin_modules": ["integrity_env"]},
    )
    run = RunLoop(store, config, say=lambda _: None).execute()
    (child,) = [p for p in store.programs(run.id) if not p.is_reference]
    assert child.status == "rejected" and "[equivalence]" in child.error
    verdicts = {v.guard: v for v in store.verdicts(child.id)}
    assert (
        not verdicts["equivalence"].passed
        and json.loads(verdicts["equivalence"].details_json)["deviation"] > 0
    )
    assert verdicts["static"].passed  # defining softmax is allowed; only its value was wrong


# --- judge ----------------------------------------------------------------------------------
def test_judge_is_off_unless_named():
    assert "judge" not in [g.name for g in pick_guards(CP, "n26", None)]
    assert {"static", "syntax", "edit-scope"} <= {g.name for g in pick_guards(CP, "n26", None)}
    assert [g.name for g in pick_guards(CP, "n26", ["judge"])] == ["judge"]


def test_judge_reviews_suspicious_diffs_only():
    benign = in_block("X = 2")
    assert suspicious_lines(benign, CP_REFERENCE) == []
    quiet = JudgeGuard(mock_response='{"verdict": "reject", "reason": "never asked"}')
    verdict = quiet.check_program(benign, CP_REFERENCE, CP, "n26")
    assert verdict.passed and verdict.details == {"reviewed": False}
    shady = in_block("TARGET_SCORE = 2.7\ndef place_centers():\n    global SEED\n    return None")
    flagged = dict(suspicious_lines(shady, CP_REFERENCE))
    assert (
        "touches TARGET_SCORE" in flagged.values() and "rebinds an outer name" in flagged.values()
    )


def test_judge_verdicts_are_stored_with_the_models_reason():
    shady = in_block("TARGET_SCORE = 2.7")
    reject = JudgeGuard(
        mock_response='Sure: {"verdict": "reject", "reason": "hard-codes the score"}'
    )
    verdict = reject.check_program(shady, CP_REFERENCE, CP, "n26")
    assert (
        not verdict.passed and verdict.rule == "judge" and "hard-codes the score" in verdict.reason
    )
    assert verdict.details["reviewed"] and verdict.details["completion_tokens"] > 0
    accept = JudgeGuard(mock_response='{"verdict": "accept", "reason": "a constant"}')
    verdict = accept.check_program(shady, CP_REFERENCE, CP, "n26")
    assert verdict.passed and verdict.reason == "a constant"


def test_judge_outage_passes_with_the_failure_recorded():
    verdict = JudgeGuard(model="no-such-provider/model").check_program(
        in_block("TARGET_SCORE = 2.7"), CP_REFERENCE, CP, "n26"
    )
    assert verdict.passed and verdict.reason.startswith("judge unavailable")


def test_guards_are_registered_by_name():
    names = set(plugins.registry("guards"))
    assert {"static", "verification", "equivalence", "judge", "syntax", "edit-scope"} <= names


def test_modules_reached_as_attributes_of_other_modules_are_forbidden():
    for body in (
        "import numpy\nm = numpy.core.sys.modules",
        'import numpy\nm = getattr(numpy, "os")',
        "import math\nf = math.builtins",
    ):
        verdict = static(body)
        assert verdict.rule == "forbidden-module", body
        assert "as an attribute of another object" in verdict.reason
    # Ordinary attributes that merely resemble module names stay allowed.
    assert static("import numpy\nx = numpy.zeros(3)\ny = x.sum()\nz = numpy.random.rand(2)").passed
