"""The local evaluator against hostile candidates: each misbehaviour ends as a failed
evaluation with a clear status, nothing of the candidate survives it, and the run goes on."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sandbox_env

from progressbench import plugins
from progressbench.contracts.environment import Assessment
from progressbench.contracts.evaluator import EvalJob, EvalOutcome, Limits
from progressbench.errors import UserError
from progressbench.run import stages
from progressbench.run.config import RunConfig
from progressbench.sandbox import devices, doctor, filesystem, pool
from progressbench.sandbox.environ import scrubbed_environ
from progressbench.sandbox.handle import WorkerStartError
from progressbench_plugins.evaluators.local import LocalEvaluator

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the local sandbox needs Linux"),
    pytest.mark.timeout(180),
]

ROOT = os.geteuid() == 0
REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests"
NOT_ROOT = (
    "needs root: only then are candidates dropped to their own uid, without write access "
    "outside their scratch directory"
)

FORK_BOMB = """
import os, time
def main():
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(60)
"""
KILL_PARENT = """
import os, time
def main():
    os.kill(os.getppid(), 9)
    time.sleep(30)
"""
ESCAPE = """
import subprocess, time
def main():
    escapee = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    print(escapee.pid, flush=True)
    time.sleep(float(SLEEP))
    return escapee.pid
"""


@pytest.fixture(scope="module", autouse=True)
def registered(module_plugin) -> None:
    module_plugin(sandbox_env)


@contextlib.contextmanager
def evaluator(
    env: str = "sandbox-test", workers: int = 1, **options: object
) -> Iterator[LocalEvaluator]:
    environment = plugins.get_environment(env)
    ev = LocalEvaluator(
        environment, "default", workers, {"plugin_modules": ["sandbox_env"], **options}
    )
    ev.start()
    try:
        yield ev
    finally:
        ev.close()


@pytest.fixture(scope="module")
def ev(registered: None) -> Iterator[LocalEvaluator]:
    with evaluator(workers=2) as shared:
        yield shared


def run(ev: LocalEvaluator, body: str, mode: str = "full", **limits: object) -> EvalOutcome:
    settings: dict[str, object] = {"seconds": 20.0, "memory_mb": 512, **limits}
    job = EvalJob(program=textwrap.dedent(body), phase=mode, limits=Limits(**settings))
    return ev.evaluate(job)


def _status(pid: str) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}


def leftovers(ev: LocalEvaluator) -> list[int]:
    """Live processes below a worker or running as a sandbox uid, but each worker's spare
    child (forked ahead of the next job: a child of the worker still running as root)."""
    uids, workers = set(ev.sandbox_uids), set(ev.worker_pids)
    found, spares = [], set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError, KeyError, ValueError):
            st = _status(pid)
            if st["State"].startswith("Z"):
                continue
            uid, parent = int(st["Uid"].split()[0]), int(st["PPid"])
            if parent in workers and uid not in uids and parent not in spares:
                spares.add(parent)  # one per worker
            elif uid in uids or parent in workers:
                found.append(int(pid))
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def alive(pid: int) -> bool:
    try:
        return not _status(str(pid))["State"].startswith("Z")
    except OSError:
        return False


def _owned_by(pid: str, uid: int) -> bool:
    with contextlib.suppress(OSError, KeyError):
        st = _status(pid)
        return int(st["Uid"].split()[0]) == uid and not st["State"].startswith("Z")
    return False


def run_elsewhere(
    jobs: list[tuple[str, dict[str, object]]], environ: dict[str, str], platform_uid: int | None
) -> list[EvalOutcome]:
    """Evaluate (program, limits) pairs in a platform process of their own, started with
    ``environ`` added to its initial environment and, given ``platform_uid``, as that user."""
    platform = textwrap.dedent(
        f"""
        from progressbench import plugins
        from progressbench.contracts.evaluator import EvalJob, Limits
        from progressbench_plugins.evaluators.local import LocalEvaluator
        plugins.register_modules(["sandbox_env"])
        env = plugins.get_environment("sandbox-test")
        with LocalEvaluator(env, "default", 1, {{"plugin_modules": ["sandbox_env"]}}) as ev:
            for program, limits in {jobs!r}:
                job = EvalJob(program=program, phase="full", limits=Limits(**limits))
                print(ev.evaluate(job).model_dump_json(), flush=True)
        """
    )
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    command = [sys.executable, "-c", platform]
    if platform_uid is not None:
        command[1:1] = [str(TESTS / "sandbox_nonroot.py"), str(platform_uid)]
    done = subprocess.run(
        command,
        env={**os.environ, **environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return [EvalOutcome.model_validate_json(line) for line in done.stdout.splitlines()]


# --- the contract ------------------------------------------------------------------------
def test_registered_as_the_local_evaluator() -> None:
    assert plugins.get("evaluators", "local") is LocalEvaluator


def test_unknown_option_fails_loudly() -> None:
    with pytest.raises(UserError, match="unknown option"):
        LocalEvaluator(plugins.get_environment("sandbox-test"), "default", 1, {"wrokers": 2})


def test_worker_start_failure_is_explained() -> None:
    with pytest.raises(WorkerStartError, match="No module named 'progressbench_no_such_module'"):
        with evaluator("sandbox-test-broken", workers=2):
            pass


def test_capabilities_describe_the_machine() -> None:
    caps = doctor.capabilities()
    for key in ("rlimits", "subreaper", "pdeathsig", "uid_drop", "network_namespace", "pidfd",
                "mount_namespace", "private_tmp", "read_all", "can_signal_platform"):  # fmt: skip
        assert isinstance(caps[key], bool)
    assert caps["uid_drop"] is ROOT and caps["can_signal_platform"] is not ROOT
    assert isinstance(caps["candidate_user"], str)
    if caps["mount_namespace"]:  # the interpreter stays reachable without reading everything
        assert caps["read_all"] is False and "hidden" in caps["home_directory"]


def test_doctor_reports_what_an_evaluator_puts_in_place(ev: LocalEvaluator) -> None:
    caps, isolation = doctor.capabilities(), ev.isolation
    assert isolation["read_all"] == caps["read_all"]
    assert isolation["private_tmp"] == caps["private_tmp"]
    assert bool(isolation["hidden"]) == caps["home_directory"].endswith("remain)")
    out = subprocess.run(
        [sys.executable, "-m", "progressbench.cli", "doctor"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "mount_namespace" in out.stdout and "disk_limit" in out.stdout


def test_secret_names_are_scrubbed() -> None:
    env = scrubbed_environ(
        {"PATH": "/bin", "LC_ALL": "C", "OPENAI_API_KEY": "k", "GITHUB_TOKEN": "t",
         "AWS_REGION": "x", "CUDA_VISIBLE_DEVICES": "0", "NCCL_AUTH_KEY": "s", "MY_VAR": "v",
         "HOME": "/root"},
        extra=["MY_VAR", "DB_PASSWORD"],
    )  # fmt: skip
    assert env == {"PATH": "/bin", "LC_ALL": "C", "CUDA_VISIBLE_DEVICES": "0", "MY_VAR": "v"}


# --- normal programs ---------------------------------------------------------------------
def test_program_returns_its_value_from_a_private_scratch(ev: LocalEvaluator) -> None:
    out = run(
        ev,
        """
        import os, tempfile
        def main():
            print("hello from the candidate")
            open("note.txt", "w").write("x")
            return {"cwd": os.getcwd(), "home": os.environ["HOME"], "tmp": tempfile.gettempdir(),
                    "uid": os.getuid(), "keys": sorted(os.environ)}
        """,
    )
    assert out.status == "ok", out.error
    value = out.raw["value"]
    assert value["cwd"] == value["home"] == value["tmp"]
    assert not os.path.exists(value["cwd"]), "the scratch directory outlived the evaluation"
    assert out.stdout.strip() == "hello from the candidate"
    assert 0 < out.candidate_s <= out.total_s
    if ROOT:
        assert value["uid"] in ev.sandbox_uids


def test_exception_reports_the_traceback(ev: LocalEvaluator) -> None:
    out = run(ev, "def main():\n    raise ValueError('boom')\n")
    assert out.status == "error"
    assert "ValueError: boom" in out.error
    assert "line 2, in main" in out.error


def test_result_must_be_json(ev: LocalEvaluator) -> None:
    out = run(ev, "def main():\n    return object()\n")
    assert out.status == "error"
    assert "not JSON-serialisable" in out.error


def test_oversized_result_is_an_error() -> None:
    with evaluator(max_result_bytes=100_000) as small:
        out = run(small, "def main():\n    return 'x' * 200_000\n")
        assert out.status == "error"
        assert "exceeds" in out.error
        assert run(small, "def main():\n    return 'x' * 1000\n").ok


def test_smoke_mode_only_loads_the_program(ev: LocalEvaluator) -> None:
    out = run(ev, "def main():\n    while True:\n        pass\n", mode="smoke", seconds=5)
    assert out.status == "ok" and out.raw == {}
    broken = run(ev, "def main(:\n    pass\n", mode="smoke")
    assert broken.status == "error" and "SyntaxError" in broken.error


def test_verify_runs_in_a_fresh_process_and_sees_the_artifacts() -> None:
    with evaluator("sandbox-test-verify") as ev:
        out = run(ev, "def main():\n    open('artifact.txt', 'w').write('weights')\n    return 7\n")
    assert out.status == "ok", out.error
    assert out.verified is not None
    assert out.verified["pid"] != out.raw["pid"]
    assert out.verified == {"pid": out.verified["pid"], "mode": "verify", "artifact": "weights",
                            "raw_value": 7}  # fmt: skip


def test_two_workers_run_two_jobs_at_once(ev: LocalEvaluator) -> None:
    body = """
    import time
    def main():
        start = time.time()
        time.sleep(1.0)
        return [start, time.time()]
    """
    outcomes: list[EvalOutcome] = []
    threads = [threading.Thread(target=lambda: outcomes.append(run(ev, body))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [o.status for o in outcomes] == ["ok", "ok"]
    (a0, a1), (b0, b1) = (o.raw["value"] for o in outcomes)
    assert max(a0, b0) < min(a1, b1), "the two evaluations did not overlap"


def test_torch_program_in_a_preloaded_worker() -> None:
    pytest.importorskip("torch")
    with evaluator("sandbox-test-torch") as ev:
        out = run(
            ev,
            """
            import torch
            def main():
                a = torch.ones(64, 64)
                return [float((a @ a).sum()), torch.get_num_threads()]
            """,
        )
    assert out.status == "ok", out.error + out.stderr
    assert out.raw["value"] == [64.0 * 64 * 64, 1]


# --- hostile programs --------------------------------------------------------------------
def test_infinite_loop_times_out_and_leaves_no_process(ev: LocalEvaluator) -> None:
    out = run(
        ev,
        """
        import subprocess
        def main():
            escapee = subprocess.Popen(["sleep", "1000"], start_new_session=True)
            print(escapee.pid, flush=True)
            while True:
                pass
        """,
        seconds=2,
    )
    assert out.status == "timeout"
    assert "time limit" in out.error
    assert not alive(int(out.stdout.split()[0]))
    assert leftovers(ev) == []


def test_memory_hog_hits_the_memory_limit(ev: LocalEvaluator) -> None:
    out = run(ev, "def main():\n    return len(bytearray(8 * 2**30))\n", memory_mb=256)
    assert out.status == "memory"
    assert "MemoryError" in out.error


def test_resident_memory_watch_kills_a_hog() -> None:
    body = """
    import time
    def main():
        hoard = []
        while True:
            hoard.append(b"x" * 20_000_000)
            time.sleep(0.01)
    """
    with evaluator(memory_watch="rss") as ev:
        out = run(ev, body, memory_mb=200)
        assert out.status == "memory", out.error
        assert leftovers(ev) == []


def test_segfault_is_a_crash_naming_the_signal(ev: LocalEvaluator) -> None:
    out = run(ev, "import ctypes\ndef main():\n    ctypes.string_at(0)\n")
    assert out.status == "crashed"
    assert "SIGSEGV" in out.error
    assert "Fatal Python error" in out.stderr  # faulthandler's report of where


def test_abort_is_a_crash(ev: LocalEvaluator) -> None:
    out = run(ev, "import os\ndef main():\n    os.abort()\n")
    assert out.status == "crashed" and "SIGABRT" in out.error


def test_sys_exit_and_silent_exit(ev: LocalEvaluator) -> None:
    assert run(ev, "import sys\ndef main():\n    sys.exit(3)\n").status == "error"
    out = run(ev, "import os\ndef main():\n    os._exit(0)\n")
    assert out.status == "crashed" and "before returning a result" in out.error


def test_output_flood_hits_the_file_limit(ev: LocalEvaluator) -> None:
    flood = "import sys\ndef main():\n    while True:\n        sys.stdout.write('x' * 10_000)\n"
    out = run(ev, flood,
              file_mb=1, output_chars=500)  # fmt: skip
    assert out.status == "output-limit"
    assert "SIGXFSZ" in out.error
    assert len(out.stdout) < 700 and "truncated" in out.stdout


def test_long_output_keeps_the_tail(ev: LocalEvaluator) -> None:
    chatty = "def main():\n    for i in range(20000):\n        print('line', i)\n    return 1\n"
    out = run(ev, chatty,
              output_chars=300)  # fmt: skip
    assert out.ok
    assert "truncated" in out.stdout
    assert out.stdout.rstrip().endswith("line 19999")
    assert len(out.stdout) < 400


def test_fork_bomb_is_contained(ev: LocalEvaluator) -> None:
    out = run(ev, FORK_BOMB, seconds=3, processes=16)
    assert out.status in ("timeout", "error", "crashed")
    assert wait_until(lambda: leftovers(ev) == [])
    assert run(ev, "def main():\n    return 1\n").ok


@pytest.mark.parametrize(
    "platform_uid",
    [
        None,
        pytest.param(
            63999,
            marks=pytest.mark.skipif(not ROOT, reason="emulating a non-root platform needs root"),
        ),
    ],
)
def test_secrets_do_not_reach_the_candidate(platform_uid: int | None) -> None:
    """The platform runs in its own process so that the secrets sit in its initial environment,
    where /proc/PID/environ shows them; with ``platform_uid`` it runs as that ordinary user,
    and so does the candidate (no uid drop)."""
    secrets = {"FOO_API_KEY": "sk-pb-test-1", "GITHUB_TOKEN": "ghp-pb-test-2",
               "AWS_SECRET_ACCESS_KEY": "aws-pb-test-3", "MY_PASSWORD": "pw-pb-test-4"}  # fmt: skip
    program = textwrap.dedent(
        """
        import os
        def main():
            seen = {"environ": dict(os.environ), "uid": os.getuid()}
            pid = os.getppid()
            while pid > 1:  # the worker, the platform, and whatever started it
                try:
                    environ = open(f"/proc/{pid}/environ", "rb").read()
                    seen[str(pid)] = environ.decode(errors="replace")
                except OSError as exc:
                    seen[str(pid)] = f"denied: {exc}"
                pid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            return seen
        """
    )
    (out,) = run_elsewhere([(program, {})], secrets, platform_uid)
    assert out.status == "ok", out.error
    seen = json.dumps(out.raw)
    for name, value in secrets.items():
        assert name not in out.raw["value"]["environ"]
        assert value not in seen, f"{name} reached the candidate"
    assert len(out.raw["value"]) >= 4  # it did look at the worker's and the platform's environ
    if platform_uid is not None:
        assert out.raw["value"]["uid"] == platform_uid


@pytest.mark.skipif(not ROOT, reason="emulating a non-root platform needs root")
def test_non_root_platform_contains_hostile_candidates() -> None:
    uid = 63998
    escape = ESCAPE.replace("SLEEP", "0")
    bombed, escaped, lost, after = run_elsewhere(
        [(FORK_BOMB, {"seconds": 3, "processes": 16}), (escape, {}), (KILL_PARENT, {}),
         ("def main():\n    return 3\n", {})],
        {},
        uid,
    )  # fmt: skip
    assert bombed.status in ("timeout", "error", "crashed")
    assert escaped.ok and not alive(escaped.raw["value"])
    assert lost.status == "worker-lost"
    assert after.raw == {"value": 3}
    still = [p for p in filter(str.isdigit, os.listdir("/proc")) if _owned_by(p, uid)]
    assert still == []


def test_candidate_killing_its_worker(ev: LocalEvaluator) -> None:
    out = run(ev, KILL_PARENT)
    if ROOT:  # it runs as another uid: it may not signal the worker
        assert out.status == "error" and "PermissionError" in out.error
    else:
        assert out.status == "worker-lost"
    assert run(ev, "def main():\n    return 5\n").raw == {"value": 5}


def test_worker_lost_is_reported_and_the_worker_restarted() -> None:
    # drop_uid=False: the candidate shares the worker's uid (as it does when not root).
    with evaluator(drop_uid=False) as ev:
        before = ev.worker_pids
        out = run(ev, KILL_PARENT)
        assert out.status == "worker-lost"
        assert "SIGKILL" in out.error
        assert run(ev, "def main():\n    return 5\n").raw == {"value": 5}
        assert ev.worker_pids != before


def test_worker_killed_from_outside_mid_job() -> None:
    with evaluator() as ev:
        worker = ev.worker_pids[0]
        outcomes: list[EvalOutcome] = []
        job = threading.Thread(
            target=lambda: outcomes.append(
                run(ev, "import time\ndef main():\n    time.sleep(60)\n")
            )
        )
        job.start()
        children = Path(f"/proc/{worker}/task/{worker}/children")
        assert wait_until(lambda: children.read_text().split() != [])
        candidate = int(children.read_text().split()[0])
        os.kill(worker, signal.SIGKILL)
        job.join(60)
        assert outcomes[0].status == "worker-lost"
        assert wait_until(lambda: not alive(candidate))
        assert run(ev, "def main():\n    return 6\n").raw == {"value": 6}


def test_close_during_a_job_returns_worker_lost() -> None:
    ev = LocalEvaluator(
        plugins.get_environment("sandbox-test"), "default", 1, {"plugin_modules": ["sandbox_env"]}
    )
    ev.start()
    worker = ev.worker_pids[0]
    outcomes: list[EvalOutcome] = []
    job = threading.Thread(target=lambda: outcomes.append(run(ev, ESCAPE.replace("SLEEP", "60"))))
    job.start()
    children = Path(f"/proc/{worker}/task/{worker}/children")
    assert wait_until(lambda: children.read_text().split() != [])
    time.sleep(0.5)  # let it start its own subprocess
    ev.close()
    job.join(30)
    assert outcomes[0].status == "worker-lost"
    assert wait_until(lambda: leftovers(ev) == [])
    assert not alive(worker)
    assert run(ev, "def main():\n    return 1\n").status == "worker-lost"


@pytest.mark.skipif(not ROOT, reason=NOT_ROOT)
def test_writing_outside_scratch_fails(ev: LocalEvaluator, tmp_path: Path) -> None:
    target = REPO / "sandbox-escape-probe.txt"
    out = run(ev, f"def main():\n    open({str(target)!r}, 'w').write('escaped')\n")
    # Refused by permissions, or by the read-only bind of a checkout that lives under /tmp.
    assert out.status == "error"
    assert "PermissionError" in out.error or "Read-only file system" in out.error, out.error
    assert not target.exists()


def test_call_job_runs_the_named_entry_in_a_fresh_child(ev: LocalEvaluator) -> None:
    job = EvalJob(program="X = 1\n", phase="call",
                  options={"entry": "sandbox_env:probe", "args": [1, 2]})  # fmt: skip
    out = ev.evaluate(job)
    assert out.status == "ok", out.error
    assert out.raw == {"uid": out.raw["uid"], "mode": "call", "args": [1, 2], "program": "X = 1\n"}
    if ROOT:
        assert out.raw["uid"] in ev.sandbox_uids


def test_scratch_directory_has_a_disk_limit(ev: LocalEvaluator) -> None:
    flood = """
    def main():
        for i in range(1000):
            with open(f"f{i}", "wb") as f:
                f.write(b"x" * (16 << 20))
    """
    out = run(ev, flood, disk_mb=40)
    assert out.status == "output-limit" and "40 MB into its scratch directory" in out.error
    assert run(ev, "def main():\n    open('a', 'wb').write(b'x' * 1000)\n", disk_mb=40).ok


PRIVATE_FS = ROOT and doctor.capabilities()["mount_namespace"]
NO_PRIVATE_FS = "needs root and mount namespaces"


@pytest.mark.skipif(not PRIVATE_FS, reason=NO_PRIVATE_FS)
def test_home_directory_is_hidden(ev: LocalEvaluator) -> None:
    home = filesystem.home_dirs()[0]
    marker = Path(home) / f".progressbench-test-{os.getpid()}"
    marker.write_text("a credential")
    marker.chmod(0o644)  # even a world-readable file
    try:
        out = run(ev, f"""
            import os
            def main():
                return {{"listing": os.listdir({home!r}), "there": os.path.exists({str(marker)!r})}}
            """)  # fmt: skip
    finally:
        marker.unlink()
    assert out.status == "ok", out.error
    assert out.raw["value"]["there"] is False
    # Only what holds the interpreter and the imported packages remains.
    assert marker.name not in out.raw["value"]["listing"]
    assert all(
        any(p.startswith(os.path.join(home, n)) for p in (sys.prefix, sys.base_prefix))
        for n in out.raw["value"]["listing"]
    )


@pytest.mark.skipif(not PRIVATE_FS, reason=NO_PRIVATE_FS)
def test_private_files_are_out_of_reach(ev: LocalEvaluator) -> None:
    """A file only its owner may read (the store's database, mode 0600) stays unreadable: the
    candidate no longer keeps read access to everything."""
    secret = TESTS / f"private-{os.getpid()}.db"
    secret.write_text("rows")
    secret.chmod(0o600)
    try:
        out = run(ev, f"def main():\n    return open({str(secret)!r}).read()\n")
    finally:
        secret.unlink()
    assert out.status == "error" and "PermissionError" in out.error


@pytest.mark.skipif(not PRIVATE_FS, reason=NO_PRIVATE_FS)
def test_tmp_is_private_small_and_emptied_between_jobs(ev: LocalEvaluator) -> None:
    name = f"progressbench-test-{os.getpid()}"
    out = run(ev, f"def main():\n    open('/tmp/{name}', 'w').write('x')\n    return 1\n")
    assert out.ok and not Path("/tmp", name).exists()  # not the host's /tmp
    seen = run(ev, f"import os\ndef main():\n    return os.path.exists('/tmp/{name}')\n")
    assert seen.raw == {"value": False}
    flood = """
    def main():
        with open('/tmp/flood', 'wb') as f:
            for _ in range(64):
                f.write(b'x' * (16 << 20))
    """
    full = run(ev, flood)
    assert full.status == "error" and "No space left on device" in full.error


@pytest.mark.skipif(not (ROOT and doctor.capabilities()["network_namespace"]),
                    reason="network namespaces need root")  # fmt: skip
def test_network_is_loopback_only(ev: LocalEvaluator) -> None:
    out = run(
        ev,
        """
        import socket
        def main():
            server = socket.socket()
            server.bind(("127.0.0.1", 0))
            server.listen()
            socket.create_connection(server.getsockname(), timeout=2).close()
            try:
                socket.create_connection(("1.1.1.1", 80), timeout=2)
            except OSError as exc:
                return f"blocked: {exc}"
            return "reached the internet"
        """,
    )
    assert out.status == "ok", out.error
    assert out.raw["value"].startswith("blocked")


BUSY_ORPHAN = """
import os, time

def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def main():
    if os.fork() == 0:
        spin(1.0)
        os._exit(0)
    time.sleep(1.5)  # never waited for: the worker reaps it
    spin(0.2)
    return {"value": 1, "sandbox": {"cpu_s": 0.0}}
"""


def test_the_cpu_of_every_process_of_a_phase_is_counted_and_cannot_be_forged():
    env = plugins.get_environment("sandbox-test-raw")
    with evaluator("sandbox-test-raw") as ev:
        out = ev.evaluate(EvalJob(program=BUSY_ORPHAN, phase="full"))
    assert out.ok, out.error
    # The orphan's second and the candidate's own 0.2 s: what the kernel counted...
    assert 1.15 <= out.counted["cpu_s"] < 3.0

    def seen_by_assess(outcome: EvalOutcome) -> dict:
        seen: dict = {}

        def assess(raw, verified, variant):
            seen.update(raw)
            return Assessment(valid=True)

        env.assess = assess
        try:
            stages.assess_outcome(env, "default", [], BUSY_ORPHAN, outcome)
        finally:
            del env.assess
        return seen

    # ...is what assess sees under the sandbox's key, not the 0.0 the program put there;
    assert seen_by_assess(out) == {"value": 1, "sandbox": out.counted}
    # where nothing was counted (another evaluator), the program's claim is dropped.
    assert seen_by_assess(out.model_copy(update={"counted": {}})) == {"value": 1}


FORGE_WITNESS = """
import os

def main():
    forged = []
    try:
        os.write(4, b'{"by": "program"}')
        forged.append("fd 4")
    except OSError:
        pass
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if "progressbench-witness" in os.readlink(f"/proc/{pid}/fd/{fd}"):
                    with open(f"/proc/{pid}/fd/{fd}", "w") as f:
                        f.write('{"by": "program"}')
                    forged.append(f"{pid}/{fd}")
            except OSError:
                pass
    return len(forged)
"""


def test_a_witness_record_reaches_assess_and_verify_and_the_program_cannot_write_it():
    with evaluator("sandbox-test-witness") as ev:
        out = ev.evaluate(EvalJob(program=FORGE_WITNESS, phase="full"))
    assert out.ok, out.error
    assert out.raw is not None and out.raw["value"] == 0  # no way in: not fd 4, not /proc
    kept = {"by": "witness", "pid": out.raw["witness_pid"]}
    assert out.counted["witness"] == kept
    # The verifier sees what the worker vouches for, not what the program claimed.
    assert out.verified == {"seen": {"cpu_s": out.counted["cpu_s"], "witness": kept}}


TRIVIAL = """
def main():
    return 1
"""
SPINNING_ESCAPEE = """
import os, time

def spin(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def main():
    ready, tell = os.pipe()
    if os.fork() == 0:
        os.setsid()  # out of the candidate's process group: only the tree walk finds it
        spin(0.5)
        os.write(tell, str(os.getpid()).encode())
        while True:  # still running when the report is in
            pass
    pid = int(os.read(ready, 32))
    spin(0.2)
    return {"value": pid}
"""


def test_processes_running_when_the_report_is_in_are_killed_counted_and_charged_once(ev):
    out = run(ev, SPINNING_ESCAPEE)
    assert out.ok, out.error
    # The escapee's 0.5 s and more, and the candidate's 0.2 s, though neither had been reaped
    # when the phase ended...
    assert out.counted["cpu_s"] >= 0.65
    assert not alive(out.raw["value"])
    assert leftovers(ev) == []
    # ...and what they bring to the worker's count once reaped is not charged again.
    after = [run(ev, TRIVIAL) for _ in range(4)]
    assert all(o.ok for o in after), [o.error for o in after]
    assert max(o.counted["cpu_s"] for o in after) < 0.3


def test_a_spare_child_killed_from_outside_is_replaced():
    with evaluator() as own:
        worker = own.worker_pids[0]
        assert ev_run_ok(own)

        def spares() -> list[int]:
            return [
                int(pid)
                for pid in filter(str.isdigit, os.listdir("/proc"))
                if _ppid(pid) == worker and _uid(pid) == os.getuid()
            ]

        assert wait_until(lambda: len(spares()) == 1)  # forked once the job is answered
        spare = spares()[0]
        os.kill(spare, signal.SIGKILL)
        # Dead before its job comes (killed while it already had one, the job would fail as
        # any job whose process is killed from outside does).
        assert wait_until(lambda: not alive(spare))
        assert ev_run_ok(own)
        assert ev_run_ok(own)


def _ppid(pid: str) -> int:
    with contextlib.suppress(OSError, KeyError):
        return int(_status(pid)["PPid"])
    return -1


def _uid(pid: str) -> int:
    with contextlib.suppress(OSError, KeyError):
        return int(_status(pid)["Uid"].split()[0])
    return -1


def ev_run_ok(ev: LocalEvaluator) -> bool:
    return run(ev, TRIVIAL).ok


@pytest.mark.skipif(not ROOT, reason=NOT_ROOT)
def test_device_nodes_only_others_cannot_open_give_their_group_and_root_s_never(tmp_path):
    nodes = {}
    for name, mode, gid in [("open", 0o666, 44), ("video", 0o660, 44), ("render", 0o660, 109),
                            ("rootgroup", 0o660, 0), ("private", 0o600, 44)]:  # fmt: skip
        path = tmp_path / name
        path.touch()
        os.chown(path, 0, gid)
        path.chmod(mode)
        nodes[name] = str(path)
    groups, unreachable = devices.device_groups(list(nodes.values()))
    assert groups == [44, 109]
    assert [line.split(":")[0] for line in unreachable] == [nodes["rootgroup"], nodes["private"]]
    assert "owned by group root" in unreachable[0] and "no group access" in unreachable[1]


@pytest.mark.skipif(not ROOT, reason=NOT_ROOT)
def test_a_gpu_job_keeps_the_device_groups_and_its_declared_task_limit(monkeypatch):
    # A stand-in node outside the candidates' private /tmp, for its group only (a regular
    # file, opened for reading: writing would meet the read-only file system, which a real
    # node does not).
    folder = Path(tempfile.mkdtemp(dir="/var/lib"))
    folder.chmod(0o755)
    node = folder / "nvidia0"
    node.touch()
    os.chown(node, 0, 44)
    node.chmod(0o660)
    monkeypatch.setattr(pool, "gpu_device_nodes", lambda: [str(node)])
    env = plugins.get_environment("sandbox-test-gpu")
    limits = stages.limits_for(env.resources("default"), RunConfig(env="sandbox-test-gpu"), "full")
    assert limits.processes == 300
    body = """
        import os, resource
        def main():
            with open(NODE, "rb"):
                pass
            return [os.getgroups(), resource.getrlimit(resource.RLIMIT_NPROC)[0]]
    """.replace("NODE", repr(str(node)))
    with evaluator("sandbox-test-gpu") as ev:
        job = EvalJob(program=textwrap.dedent(body), phase="full", limits=limits)
        out = ev.evaluate(job)
    shutil.rmtree(folder)
    assert out.ok, out.error
    assert out.raw["value"] == [[44], 300]
    # Without a GPU the candidate keeps no group at all.
    with evaluator() as ev:
        out = run(ev, "import os\ndef main():\n    return os.getgroups()\n")
    assert out.raw["value"] == []


@pytest.mark.skipif(not ROOT, reason=NOT_ROOT)
def test_data_the_run_s_env_options_place_under_the_hidden_home_is_readable():
    home = Path(os.path.expanduser("~"))
    data = Path(tempfile.mkdtemp(prefix="pb-data-", dir=home))
    try:
        data.chmod(0o755)
        (data / "shard.bin").write_text("tokens")
        (data / "shard.bin").chmod(0o644)
        body = f"def main():\n    return open({str(data / 'shard.bin')!r}).read()\n"
        env = plugins.get_environment("sandbox-test-data")
        for env_options, expected in (({"data_dir": str(data)}, "tokens"), ({}, None)):
            ev = LocalEvaluator(env, "default", 1, {"plugin_modules": ["sandbox_env"]})
            ev.env_options = env_options
            with ev:
                out = run(ev, body)
            if expected is None:  # the home stays hidden without the option
                assert out.status == "error" and "No such file" in out.error
            else:
                assert out.ok and out.raw["value"] == expected, out.error
    finally:
        shutil.rmtree(data)
