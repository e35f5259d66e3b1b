"""Run page time of `progressbench serve` over a 10,000-program run (target: < 1 s).

Fills a fresh SQLite database with one nanogpt-like run of PROGRAMS programs (3 KB of code
each, 10% failures with tracebacks, ideas on a third, an evaluation with frontier metrics per
valid program, a 4-island strategy state with a 10x10 grid and migrations), starts the real
`progressbench serve` on a free loopback port, and times:

- the server: GET /run/ID until the last byte (first request, then the median of REPEATS);
- the browser: headless Chromium's navigation to the page's load event (median of REPEATS),
  when Debian's chromium and chromium-driver and selenium are installed.

    python bench/viewer.py [PROGRAMS] [REPEATS]
"""

from __future__ import annotations

import http.client
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from progressbench.contracts.environment import Objective
from progressbench.store import Evaluation, Program, Store, code_hash

OBJECTIVE = Objective(metric="val_loss", direction="minimize", target=1.0).model_dump_json()
CODE = "# a training script\n" + "x = torch.zeros(4)  # padding to a realistic size\n" * 60
TRACEBACK = "Traceback (most recent call last):\n" + '  File "program.py", line 9\n' * 20


def fill(db: Path, programs: int) -> str:
    store = Store(str(db))
    rng = random.Random(0)
    run = store.create_run(env="nanogpt", variant="tiny", strategy="islands", agent="offline",
                           budget=programs, config_json="{}", objective_json=OBJECTIVE)  # fmt: skip
    ref = store.add(Program(run_id=run.id, code=CODE, code_hash="ref", is_reference=True,
                            status="valid", score=-2.0, metric=2.0))  # fmt: skip
    rows = []
    for i in range(programs):
        ok = rng.random() > 0.1
        loss = 1.0 + rng.random()
        rows.append(
            Program(
                run_id=run.id,
                parent_ids_json=json.dumps([ref.id + rng.randint(0, i)]),
                code=CODE + f"# {i}\n",
                code_hash=code_hash(str(i)),
                status="valid" if ok else "failed",
                score=-loss if ok else None,
                metric=loss if ok else None,
                island=i % 4,
                generation=i // 10,
                idea="raise the learning rate a little " * 8 if i % 3 == 0 else "",
                error="" if ok else TRACEBACK,
            )  # fmt: skip
        )
    store.add_all(rows)
    stored = store.programs(run.id, status="valid")
    store.add_all(
        [
            Evaluation(
                run_id=run.id,
                program_id=p.id,
                status="ok",
                valid=True,
                score=p.score,
                metrics_json=json.dumps(
                    {"val_loss": p.metric, "train_time_s": 30 + 30 * rng.random()}
                ),
            )
            for p in stored
        ]  # fmt: skip
    )
    ids = [p.id for p in stored]
    islands = [
        {"archive": rng.sample(ids, 20),
         "grid": [[[x, y], rng.choice(ids)] for x in range(10) for y in range(10)
                  if rng.random() < 0.6]}
        for _ in range(4)
    ]  # fmt: skip
    migrations = [
        {"generation": g, "program": rng.choice(ids), "source": s, "target": (s + 1) % 4,
         "accepted": rng.random() < 0.5}
        for g in range(0, programs // 10, 5) for s in range(4)
    ]  # fmt: skip
    best = min(stored, key=lambda p: p.metric or 9.0)
    store.update_run(run.id, status="finished", n_children=programs, n_valid=len(stored),
                     n_failed=programs - len(stored), reference_id=ref.id,
                     reference_score=-2.0, reference_metric=2.0, best_program_id=best.id,
                     best_score=best.score, best_metric=best.metric,
                     strategy_state_json=json.dumps({"islands": islands,
                                                     "migrations": migrations}))  # fmt: skip
    store.close()
    return run.id


def get(url: str, path: str) -> tuple[float, int]:
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=60)
    start = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    assert response.status == 200, response.status
    return elapsed, len(body)


def browser_times(url: str, repeats: int) -> list[float] | None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        return None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        times = []
        for _ in range(repeats):
            driver.get(url)
            timing = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [n.startTime, n.responseEnd, n.loadEventEnd];"
            )
            times.append((timing[2] - timing[0]) / 1000)
        return times
    finally:
        driver.quit()


def main(programs: int = 10_000, repeats: int = 5) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pb-viewer-bench-"))
    db = folder / "pb.db"
    start = time.perf_counter()
    run_id = fill(db, programs)
    print(f"filled {programs} programs in {time.perf_counter() - start:.1f}s ({db})")
    cmd = [sys.executable, "-m", "progressbench.cli", "serve", "--db", str(db), "--port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROGRESSBENCH_")}
    proc = subprocess.Popen([*cmd, "--quiet"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().rsplit(" at ", 1)[1].strip()
        path = f"/run/{run_id}"
        first, size = get(url, path)
        server = [get(url, path)[0] for _ in range(repeats)]
        print(f"server: first {first:.3f}s, median {statistics.median(server):.3f}s "
              f"(min {min(server):.3f}s, max {max(server):.3f}s) for {size / 1e6:.2f} MB of HTML")  # fmt: skip
        shown = browser_times(url.rstrip("/") + path, repeats)
        if shown is None:
            print("browser: skipped (needs chromium, chromium-driver and selenium)")
        else:
            print(f"browser (headless Chromium, navigation to load event): median "
                  f"{statistics.median(shown):.3f}s (min {min(shown):.3f}s, max {max(shown):.3f}s)")  # fmt: skip
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
