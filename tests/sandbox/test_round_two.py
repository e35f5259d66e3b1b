"""Issue 16, the sandbox's side: the world outside scratch and the private tmpfs is read-only,
every job has its own IPC namespace, the disk limit is the kernel's (a tmpfs per job), and
every string a child sends back is storable and clipped (its storage failing fails the child,
not the run)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import round_two_env
import sandbox_env

from progressbench import plugins
from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Limits
from progressbench.sandbox import filesystem
from progressbench.sandbox.protocol import MAX_TEXT_CHARS, clean_text, clean_value
from progressbench_plugins.evaluators.local import LocalEvaluator

ROOT = sys.platform == "linux" and os.geteuid() == 0
pytestmark = [
    pytest.mark.skipif(not ROOT, reason="the mount and IPC namespaces need root on Linux"),
    pytest.mark.timeout(180),
]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def registered(module_plugin) -> None:
    module_plugin(sandbox_env)
    module_plugin(round_two_env)


@contextlib.contextmanager
def evaluator(env: str = "sandbox-test", **options: object) -> Iterator[LocalEvaluator]:
    modules = ["sandbox_env", "round_two_env"]
    ev = LocalEvaluator(
        plugins.get_environment(env), "default", 1, {"plugin_modules": modules, **options}
    )
    ev.start()
    try:
        yield ev
    finally:
        ev.close()


@pytest.fixture(scope="module")
def ev(registered: None) -> Iterator[LocalEvaluator]:
    with evaluator() as shared:
        yield shared


def run(ev: LocalEvaluator, body: str, **limits: object) -> EvalOutcome:
    settings: dict[str, object] = {"seconds": 20.0, "memory_mb": 512, **limits}
    return ev.evaluate(
        EvalJob(program=textwrap.dedent(body), phase="full", limits=Limits(**settings))
    )


@pytest.fixture
def world_writable() -> Iterator[Path]:
    """A world-writable directory on the host's disk (like /run/lock), outside /tmp."""
    where = REPO / "tests" / f".world-writable-{os.getpid()}"
    where.mkdir()
    where.chmod(0o1777)
    try:
        yield where
    finally:
        for leftover in where.iterdir():
            leftover.unlink()
        where.rmdir()


# --- class 1: the world is read-only -----------------------------------------------------------
def test_world_writable_host_directories_are_read_only(
    ev: LocalEvaluator, world_writable: Path
) -> None:
    targets = [str(world_writable), *(p for p in ("/run/lock", "/var/lock") if os.path.isdir(p))]
    out = run(ev, f"""
        def main():
            refused = {{}}
            for where in {targets!r}:
                try:
                    open(where + "/left-behind", "wb").write(b"x" * 1000)
                except OSError as exc:
                    refused[where] = exc.strerror
            return refused
        """)  # fmt: skip
    assert out.status == "ok", out.error
    assert out.raw["value"] == dict.fromkeys(targets, "Read-only file system")
    assert list(world_writable.iterdir()) == []


def test_scratch_and_tmp_are_noexec(ev: LocalEvaluator) -> None:
    out = run(ev, """
        import os, shutil, subprocess
        def main():
            refused = {}
            for where in (os.getcwd(), "/tmp", "/dev/shm"):
                tool = os.path.join(where, "tool")
                shutil.copy("/bin/true", tool)
                os.chmod(tool, 0o755)
                try:
                    subprocess.run([tool], check=True)
                except PermissionError as exc:
                    refused[where] = exc.strerror
            return len(refused)
        """)  # fmt: skip
    assert out.status == "ok", out.error
    assert out.raw["value"] == 3


# --- class 2: limits the kernel enforces ---------------------------------------------------------
def test_scratch_is_a_tmpfs_capped_at_the_disk_limit(ev: LocalEvaluator) -> None:
    out = run(ev, """
        import os
        def main():
            st = os.statvfs(".")
            return [st.f_blocks * st.f_frsize, st.f_files]
        """, disk_mb=24)  # fmt: skip
    assert out.status == "ok", out.error
    size, files = out.raw["value"]
    assert size == 24 << 20 and files == filesystem.MAX_FILES + 1


@pytest.mark.parametrize(
    "flood",
    [
        # A file unlinked while open: no walk of the directory finds it.
        "f = open('hidden', 'wb', buffering=0)\nos.unlink('hidden')\n",
        # Deeper than PATH_MAX: no walk by path reaches it.
        "for _ in range(40):\n    os.mkdir('d' * 200)\n    os.chdir('d' * 200)\n"
        "f = open('deep', 'wb', buffering=0)\n",
    ],
    ids=["unlinked", "deep"],
)
def test_disk_limit_holds_for_what_no_walk_sees(ev: LocalEvaluator, flood: str) -> None:
    body = (
        "import os\ndef main():\n"
        + textwrap.indent(flood, "    ")
        + textwrap.indent(
            "written = 0\ntry:\n    for _ in range(64):\n        written += f.write(b'x' * (1 << 20))\n"
            "except OSError as exc:\n    return [written, exc.strerror]\nreturn [written, '']\n",
            "    ",
        )
    )
    out = run(ev, body, disk_mb=16)
    assert out.status == "ok", out.error
    written, why = out.raw["value"]
    assert written <= 16 << 20 and why == "No space left on device"


def test_filling_scratch_is_the_candidates_output_limit(ev: LocalEvaluator) -> None:
    out = run(ev, "def main():\n    open('big', 'wb').write(b'x' * (40 << 20))\n", disk_mb=16)
    assert out.status == "output-limit", out.error
    assert "wrote more than 16 MB into its scratch directory" in out.error
    assert run(ev, "def main():\n    return 2\n", disk_mb=16).raw == {"value": 2}


def test_sysv_shared_memory_dies_with_its_candidate(ev: LocalEvaluator) -> None:
    key = 0x5EED42
    made = run(ev, f"""
        from round_two_env import shm_segment
        def main():
            return shm_segment({key}, True)
        """)  # fmt: skip
    assert made.status == "ok" and made.raw["value"] >= 0, made.error
    host = Path("/proc/sysvipc/shm").read_text().split("\n")[1:]
    assert not [line for line in host if line.split() and int(line.split()[0]) == key]
    seen = run(ev, f"""
        from round_two_env import shm_segment
        def main():
            return shm_segment({key}, False)
        """)  # fmt: skip
    assert seen.raw == {"value": -1}


def test_verify_phase_gets_fresh_tmp_and_ipc() -> None:
    with evaluator("sandbox-test-leftovers") as ev:
        out = run(ev, "def main():\n    return 3\n")
    assert out.status == "ok", out.error
    assert out.raw["shm"] >= 0  # the run made both
    assert out.verified == {"tmp_file": False, "shm": -1}


# --- class 3: what crosses back is storable and clipped ------------------------------------------
def test_strings_from_the_child_are_storable_and_clipped(ev: LocalEvaluator) -> None:
    out = run(ev, """
        def main():
            return {"key \\udc80": ["value \\udc81 \\x00"]}
        """)  # fmt: skip
    assert out.status == "ok", out.error
    assert out.raw == {"value": {"key \ufffd": ["value \ufffd \ufffd"]}}
    huge = run(ev, "def main():\n    raise ValueError('\\udc80' + 'x' * 11_000_000 + 'END')\n")
    assert huge.status == "error" and huge.error.endswith("END")
    assert len(huge.error) <= MAX_TEXT_CHARS and "characters truncated" in huge.error
    huge.error.encode("utf-8")  # storable


def test_clean_text_and_value() -> None:
    assert clean_text("a\udc80b\x00c") == "a\ufffdb\ufffdc"
    clipped = clean_text("x" * 100_000 + "tail", 1000)
    assert (
        len(clipped) <= 1000 and clipped.endswith("tail") and clean_text(clipped, 1000) == clipped
    )
    assert clean_value({"k\ud800": [1, "v\x00", {"n": None}]}) == {
        "k\ufffd": [1, "v\ufffd", {"n": None}]
    }


# --- doctor ---------------------------------------------------------------------------------------
def test_doctor_reports_writable_paths_ipc_and_the_disk_quota(world_writable: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "progressbench.cli", "doctor"], capture_output=True, text=True
    )
    lines = dict(line.strip().split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert out.returncode == 0
    assert lines["writable_paths"] == "none"
    assert lines["ipc_namespace"] == "yes"
    assert (
        "tmpfs per job" in lines["disk_limit"] and "enforced by the kernel" in lines["disk_limit"]
    )


PROBE_KEEPING = """
import json, os, sys
from progressbench.sandbox import doctor, filesystem
from progressbench.sandbox.syscalls import MS_NODEV, MS_NOSUID, mount
real = filesystem.read_only_world
where = sys.argv[1]
def leaky(writable):
    mount("tmpfs", where, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=1m")
    return real([*writable, where])  # the world read-only, but for one writable mount
filesystem.read_only_world = leaky
print(json.dumps(doctor._isolation_here()["writable"]))
"""


def test_doctor_finds_a_writable_place_outside_scratch(world_writable: Path) -> None:
    """The probe behind ``writable_paths`` does find a world-writable place the read-only
    remount left out (so its "none" above means something)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE_KEEPING, str(world_writable)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [str(world_writable)]
