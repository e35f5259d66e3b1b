"""The nanogpt harness's runtime protections on their own: weights read without program code,
the sentinel's attribution of code and its rules for native libraries, compiler caches and
temporary directories, and the verifier's look at what a run left in them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from progressbench_environments.nanogpt import integrity, verify
from progressbench_environments.nanogpt.losses import ProgramError


class Hooked(nn.Module):
    """Every way a module's own code could run when its weights are read."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
        self.register_buffer("kept", torch.ones(2))
        self.register_buffer("dropped", torch.zeros(2), persistent=False)
        self.tied = self.inner[0]  # one module under two names, as state_dict lists it
        self.register_state_dict_pre_hook(self.boom)
        self._register_state_dict_hook(self.boom)

    @staticmethod
    def boom(*args: object) -> None:
        raise AssertionError("program code ran while the weights were read")

    def _save_to_state_dict(self, *args: object) -> None:
        raise AssertionError("program code ran while the weights were read")

    def named_parameters(self, *args: object, **kwargs: object):  # type: ignore[override]
        raise AssertionError("program code ran while the weights were read")


def test_weights_are_read_without_running_program_code() -> None:
    model = Hooked()
    plain = nn.Module()
    plain.inner = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    plain.register_buffer("kept", torch.ones(2))
    plain.tied = plain.inner[0]
    state = integrity.plain_state(model)
    assert state.keys() == plain.state_dict().keys()
    assert all(type(t) is torch.Tensor for t in state.values())
    assert torch.equal(state["inner.0.weight"], model.inner[0].weight.detach())
    assert set(integrity.module_tensors(model, buffers=False)) == {
        k for k, _ in nn.Module.named_parameters(model, remove_duplicate=False)
    }


def test_odd_module_trees_and_dispatch_subclasses_are_refused() -> None:
    from torch.testing._internal.two_tensor import TwoTensor

    model = nn.Linear(2, 2)
    model._parameters = type("Sneaky", (dict,), {})(model._parameters)
    with pytest.raises(ProgramError, match="not a dict"):
        integrity.module_tensors(model)
    with pytest.raises(ProgramError, match="dispatch"):
        integrity.plain_copy(TwoTensor(torch.ones(2), torch.ones(2)))


SENTINEL_SCRIPT = r"""
import os, sys, timeit
from pathlib import Path
import numpy as np
import torch
from progressbench_environments.nanogpt import integrity

scratch = Path(sys.argv[1])
program = scratch / "program.py"
program.write_text("x = 1\n")
s = integrity.Sentinel(program, [], scratch / "ckpt")
inductor = os.path.dirname(torch.__file__) + "/_inductor/codecache.py"

def refused(fn):
    # Recorded, whatever the caller made of the error (torch rewraps it as an OSError).
    before = len(s.violations)
    try:
        fn()
    except OSError:
        pass
    return len(s.violations) > before

with s.active():
    # Code compiled from a string is the program's, not the library's that compiled it.
    print("string-gc", refused(lambda: timeit.timeit("import gc; gc.get_objects()", number=1)))
    print("torch-getframe", refused(lambda: torch.fx.symbolic_trace(torch.nn.Linear(2, 2))))
    # Native libraries by path, whoever loads them.
    print("scratch-lib", refused(lambda: torch.ops.load_library(str(scratch / "lib.so"))))
    print("system-lib", refused(lambda: np.ctypeslib.load_library("libm.so.6", "/lib/x86_64-linux-gnu")))
    # The compilers' caches: only their own code writes there.
    cache = Path(s.caches[0])
    cache.mkdir(parents=True, exist_ok=True)
    print("cache-numpy", refused(lambda: np.savetxt(cache / "k.so", [])))
    import torch._inductor.codecache as codecache
    print("cache-inductor", refused(lambda: codecache.write_atomic(str(cache / "k2.so"), b"")))
    forged = compile("open(p, 'wb').close()", inductor, "exec")
    print("cache-forged", refused(lambda: exec(forged, {"p": str(cache / "k3.so")})))
    # Temporary directories during verification only.
    outside = "/tmp/nanogpt-sentinel-test-" + str(os.getpid())
    print("tmp-run", refused(lambda: np.savetxt(outside, [])))
    s.temp_allowed = (str(scratch), str(program))
    print("tmp-verify", refused(lambda: np.loadtxt(outside)))
    print("scratch-verify", refused(lambda: np.savetxt(scratch / "ok.txt", [])))
os.unlink(outside)
print("violations", len(s.violations))
"""


def test_sentinel_attribution_native_code_caches_and_temp(tmp_path: Path) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", SENTINEL_SCRIPT, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = dict(line.split(" ", 1) for line in proc.stdout.splitlines())
    assert got == {
        "string-gc": "True",
        "torch-getframe": "False",
        "scratch-lib": "True",
        "system-lib": "False",
        "cache-numpy": "True",
        "cache-inductor": "False",
        "cache-forged": "True",
        "tmp-run": "False",
        "tmp-verify": "True",
        "scratch-verify": "False",
        "violations": "5",
    }, proc.stdout


def test_temp_leftovers_are_what_this_user_changed_since_the_run(tmp_path: Path) -> None:
    root = tmp_path / "tmp"
    scratch = root / "jobs" / "1" / "scratch"
    (scratch / "deep").mkdir(parents=True)
    old = root / "old"
    old.write_text("before the run")
    past = time.time() - 100
    os.utime(old, (past, past))
    since = time.time() - 1
    (root / "final.pt").write_text("weights")
    (root / "cache" / "x").mkdir(parents=True)
    (scratch / "deep" / "mine.txt").write_text("scratch is not a leftover")
    found = verify.temp_leftovers((str(root),), since, str(scratch))
    # ctime, which utime cannot set back: "old" counts only if it changed since.
    assert {Path(p).name for p in found} >= {"final.pt", "cache"}
    assert not any(Path(p).is_relative_to(scratch) or scratch.is_relative_to(p) for p in found)
    assert str(root / "cache" / "x") not in found  # its directory goes as a whole


def test_leftovers_are_removed_only_as_a_leased_sandbox_uid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Never a real user's files (a developer running the local evaluator as themselves)."""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert not verify._leased_uid()
    monkeypatch.setattr(os, "geteuid", lambda: os.getuid() if os.getuid() else 65533)
    import pwd

    try:
        pwd.getpwuid(os.geteuid())
        named = True
    except KeyError:
        named = False
    assert verify._leased_uid() is not named


def test_causality_is_checked_on_a_validation_of_one_window() -> None:
    """A speedrun validation of one 1024-token window (val_tokens=1024) left the cross-batch
    check with no other window: verification crashed on max() of nothing."""
    from progressbench_environments.nanogpt import losses

    class Prefix(torch.nn.Module):  # causal: each position sees the tokens up to it
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(16, 16)

        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return self.emb(idx).cumsum(1)

    class Peek(Prefix):  # reads the whole window: later tokens change earlier predictions
        def forward(self, idx: torch.Tensor) -> torch.Tensor:
            return self.emb(idx) + self.emb(idx).sum(1, keepdim=True)

    one = torch.randint(0, 16, (1, 65))
    honest = losses.causality(Prefix(), one, 16)
    assert honest == {"prefix_change": 0.0, "cross_change": 0.0}
    assert losses.causality(Peek(), one, 16)["prefix_change"] > 0.01
