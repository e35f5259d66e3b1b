"""The protected harness, verification side: a fresh process that trusts only the checkpoint
files (by digest) and the program's model definition.

For every checkpoint the run recorded, it loads the weights into ``build_model(vocab_size)``,
checks the model holds exactly those weights, scores the validation set (which only ever exists
in this process) with the harness's own cross-entropy, and rescores the probe set to compare
with the run's number. On the checkpoints that decide the result it also checks that the model
is causal, that its loss on never-seen samples of the validation source is not suspiciously
worse (tiny), and that torch's loss agrees with a numpy recomputation.

This process never runs program code: every pass (a checkpoint's screen, a checkpoint's full
scores, the final checks) runs in its own child, forked from here before the program is
loaded, so a model that memorises what one pass showed it has forgotten it in the next.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import secrets
import shutil
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import data, integrity, losses
from .config import BUDGET_SLACK, RunSpec
from .harness import CHECKPOINT_DIR, RUN_STARTED, _seed_everything, load_candidate
from .losses import ProgramError

_load = torch.load
_load_state_dict = torch.nn.Module.load_state_dict
QUARANTINE = ".quarantine"
SPOT_EVERY = 8  # one numpy-recomputed token per this many validation batches
# Every checkpoint is screened on the first 1/SCREEN_FRACTION of the validation windows; only
# the decisive ones are scored on all of them. A screened loss within CONFIRM_MARGIN of the
# target (its sampling noise is ~0.01 on tiny) makes a checkpoint a candidate.
SCREEN_FRACTION = 4
CONFIRM_MARGIN = 0.05
MAX_CANDIDATES = 6
# A gap is suspicious beyond this many standard errors of the honest sample's spread.
GAP_SIGMAS = 4.0
# Of what the run left in the temporary directories, at most this many entries are looked at
# (and named in the result).
MAX_TEMP_ENTRIES = 20_000
SHOWN_LEFTOVERS = 5


def _checkpoints(
    raw: dict[str, Any], directory: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The run's checkpoint records, shape-checked (``raw`` passed through program-reachable
    memory, so nothing in it is taken on faith), and the problems with the others."""
    found, problems = [], []
    for position, item in enumerate(raw.get("checkpoints") or []):
        try:
            name = str(item["file"])
            record = {
                "index": int(item["index"]),
                "file": name,
                "digest": str(item["digest"]),
                "train_time_s": float(item["train_time_s"]),
                "cost_s": float(item["cost_s"]),
                "steps": int(item["steps"]),
                "tokens": int(item["tokens"]),
                "probe_loss": float(item["probe_loss"]),
            }
        except (KeyError, TypeError, ValueError):
            problems.append({"index": position, "error": "its record is malformed"})
            continue
        if Path(name).name != name or not (directory / name).is_file():
            problems.append({"index": record["index"], "error": f"its file {name!r} is missing"})
            continue
        found.append(record)
    return found, problems


@contextmanager
def _quarantined(scratch: Path, keep: Path, program: Path) -> Iterator[None]:
    """Move everything the run left in scratch, except the checkpoints and the program itself,
    under ``keep`` (which the sentinel refuses to the program), and back afterwards: files
    written after a checkpoint must not reach the model while that checkpoint is scored."""
    jail = keep / QUARANTINE
    jail.mkdir(exist_ok=True)
    keep, program = keep.resolve(), program.resolve()
    moved: list[tuple[Path, Path]] = []

    def sweep(directory: Path) -> None:
        for entry in directory.iterdir():
            real = entry.resolve()
            if real == keep or real == program:
                continue
            if entry.is_dir() and not entry.is_symlink() and program.is_relative_to(real):
                sweep(entry)
                continue
            target = jail / f"{len(moved)}-{entry.name}"
            entry.rename(target)
            moved.append((target, entry))

    sweep(scratch)
    for entry in keep.iterdir():
        if entry.name != QUARANTINE and not entry.name.startswith("ckpt_"):
            entry.rename(jail / f"ckpt-dir-{entry.name}")
    try:
        yield
    finally:
        for target, entry in reversed(moved):
            if target.exists() and not entry.exists():
                target.rename(entry)
        shutil.rmtree(jail, ignore_errors=True)


def _disable_compilation() -> None:
    """Verification runs the model eagerly: compiled kernels would read caches the run wrote
    (a channel from the run's future into the scoring of its past checkpoints). Importing
    torch._dynamo costs ~2 s, so the switch goes through the environment when it is not
    loaded yet."""
    if "torch._dynamo" in sys.modules:
        sys.modules["torch._dynamo"].config.disable = True
    else:
        os.environ["TORCH_COMPILE_DISABLE"] = "1"


def _gap_limit(tolerance: float, std: float, n_sample: int, n_val: int) -> float | None:
    """The largest gap between a sample's loss and the validation loss that sampling noise
    explains: from the honest sample's own spread (a model that answers some validation windows
    from memory makes the validation losses bimodal, and their spread would widen the limit);
    None where a sample of one window has no spread to measure."""
    if n_sample < 2 or n_val < 1 or not np.isfinite(std):
        return None
    return max(tolerance, GAP_SIGMAS * std * float(np.sqrt(1 / n_sample + 1 / n_val)))


def temp_leftovers(roots: tuple[str, ...], since: float, keep: str) -> list[str]:
    """Entries of the temporary directories this user created or changed since ``since`` (the
    run's start), except ``keep`` (the scratch directory), its ancestors and what is in it."""
    uid, found, seen = os.geteuid(), [], 0
    keep = os.path.join(os.path.realpath(keep), "")
    for root in roots:
        for directory, dirs, files in os.walk(root):
            for name in list(dirs) + files:
                seen += 1
                path = os.path.join(directory, name)
                inside = os.path.join(os.path.realpath(path), "")
                if keep.startswith(inside) or inside.startswith(keep):
                    if inside.startswith(keep) and name in dirs:
                        dirs.remove(name)
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if st.st_uid == uid and st.st_ctime >= since:
                    found.append(path)
                    if name in dirs:
                        dirs.remove(name)  # the whole tree goes with it
            if seen > MAX_TEMP_ENTRIES:
                return found
    return found


class _Verifier:
    def __init__(self, program: Path, raw: dict[str, Any], spec: RunSpec):
        self.program = program
        self.raw = raw
        self.spec = spec
        self.v = spec.variant_spec
        self.scratch = Path(spec.scratch)
        self.ckpt_dir = self.scratch / CHECKPOINT_DIR
        # The NVML check: this process forks a child per pass, and one that initialised CUDA
        # could not (each child initialises it for itself).
        os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = "1"
        cuda = spec.variant != "tiny" and torch.cuda.is_available()
        self.device = torch.device("cuda", 0) if cuda else torch.device("cpu")
        self.sentinel = integrity.Sentinel(program, data.protected_paths(spec), self.ckpt_dir)
        self.sentinel.deny_reads = True
        # The program's bytecode cache, which the import system looks for; a copy the run
        # left is removed in ``clear_temp`` (it would run instead of the source).
        self.bytecode = importlib.util.cache_from_source(str(program))
        self.sentinel.temp_allowed = (
            str(self.scratch),
            *self.sentinel.program_paths,  # the program, its bytecode, a multi-file one's folder
            self.bytecode,
            *integrity.TRUSTED_CODE,
            *integrity.NATIVE_DIRS,
        )
        self.violations: list[str] = []
        self.tampered: set[str] = set()
        self.watch: integrity.PatchWatch | None = None

    # --- children ---------------------------------------------------------------------------
    def child(self, work: Callable[[torch.nn.Module], dict[str, Any]]) -> dict[str, Any]:
        """``work(model)`` in a fresh child with a fresh ``build_model``; raises its error."""

        def inside() -> dict[str, Any]:
            if self.device.type == "cpu":
                torch.set_num_threads(max(1, self.spec.threads))
            try:
                with self.sentinel.active():
                    module = load_candidate(self.program)
                    build = getattr(module, "build_model", None)
                    if not callable(build):
                        raise ProgramError("the program must define build_model(vocab_size)")
                    _seed_everything(self.spec.seed)
                    out = work(build(self.v.vocab_size).to(self.device))
            except Exception as exc:
                lines = traceback.format_exception_only(type(exc), exc)
                out = {"error": "".join(lines).strip()[-2000:]}
            assert self.watch is not None
            out["violations"] = list(self.sentinel.violations)
            out["tampered"] = self.watch.changes()
            return out

        result = integrity.forked(inside)
        self.violations += [v for v in result.pop("violations", []) if v not in self.violations]
        self.tampered.update(result.pop("tampered", []))
        if "error" in result:
            raise RuntimeError(result["error"])
        return result

    def on_device(self, windows: torch.Tensor) -> torch.Tensor:
        return windows.to(self.device)

    # --- the whole verification -------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        records, problems = _checkpoints(self.raw, self.ckpt_dir)
        if not records:
            return {"ok": False, "error": "the run left no checkpoint to verify"}
        leftovers = self.clear_temp()
        by_index = {r["index"]: r for r in records}
        val = _windows(data.validation_tokens(self.spec), self.v.eval_seq_len)
        probe = _windows(
            data.TrainStream(self.spec).probe(self.spec.probe_tokens), self.v.eval_seq_len
        )
        fresh_seed = secrets.randbits(31)
        fresh = _windows(data.fresh_tokens(self.spec, fresh_seed), self.v.eval_seq_len)
        assert val is not None and probe is not None
        self.watch = integrity.PatchWatch()
        _disable_compilation()
        results: list[dict[str, Any]] = list(problems)
        checks: dict[str, Any] = {}
        with _quarantined(self.scratch, self.ckpt_dir, self.program):
            screen = val[: max(2, val.shape[0] // SCREEN_FRACTION)]
            entries = {r["index"]: self.screen(r, screen) for r in records}
            first, others = self.decisive(records, entries)
            for index in first:  # in time order, until one reaches the target
                self.confirm(by_index[index], entries[index], val, probe=None)
                if entries[index].get("val_loss", float("inf")) <= self.v.target:
                    others.add(index)
                    break
            confirmed = [e for e in entries.values() if "val_loss" in e]
            if confirmed and not any(e["val_loss"] <= self.v.target for e in confirmed):
                others.add(min(confirmed, key=lambda e: e["val_loss"])["index"])
            for index in sorted(others, key=lambda i: entries[i]["steps"]):
                self.confirm(by_index[index], entries[index], val, probe=probe)
            results += list(entries.values())
            confirmed = [e for e in entries.values() if "val_loss" in e]
            if confirmed:
                best = min(confirmed, key=lambda e: e["val_loss"])
                checks = self.final_checks(by_index, best, confirmed[-1], val, fresh)
                if "fresh" in checks:
                    checks["fresh"]["seed"] = fresh_seed
        return {
            "ok": True,
            "device": str(self.device),
            "val_tokens": int(val.shape[0] * self.v.eval_seq_len),
            "eval_seq_len": self.v.eval_seq_len,
            "checkpoints": results,
            **checks,
            **leftovers,
            "tampered": sorted(self.tampered),
            "violations": list(self.violations),
        }

    def clear_temp(self) -> dict[str, Any]:
        """What the run left in the temporary directories (the sandbox gives verification a
        fresh /tmp where it can; this is the check behind it): named in the result, removed
        when this process runs as a sandbox uid (leased for one job, so whatever it owns there
        is the run's; never a real user's files), and unreadable to the program either way
        (the sentinel). Libraries' temporary files of this
        process go to the scratch directory."""
        os.environ["TMPDIR"] = str(self.scratch)
        tempfile.tempdir = None
        sys.dont_write_bytecode = True
        with contextlib.suppress(OSError):
            os.unlink(self.bytecode)
        marker = self.ckpt_dir / RUN_STARTED
        if not marker.exists():
            return {}
        found = temp_leftovers(integrity.TEMP_ROOTS, marker.stat().st_mtime, str(self.scratch))
        removed = bool(found) and _leased_uid()
        if removed:
            for path in found:
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(path)
        return {
            "temp_leftovers": len(found),
            "temp_leftovers_shown": found[:SHOWN_LEFTOVERS],
            "temp_leftovers_removed": removed,
        }

    def load(self, model: torch.nn.Module, record: dict[str, Any]) -> str | None:
        """Load a checkpoint; the reason it cannot be trusted, or None."""
        with self.sentinel.suspended():
            state = _load(
                self.ckpt_dir / record["file"], map_location=self.device, weights_only=True
            )
        if integrity.state_digest(state) != record["digest"]:
            return "its file is not the one the harness saved (digest mismatch)"
        try:
            _load_state_dict(model, state, strict=True, assign=True)
        except RuntimeError as exc:
            raise ProgramError(
                f"checkpoint {record['index']} does not fit build_model(): {exc}"
            ) from None
        # Read from the tensors themselves: a state_dict hook could show the saved weights
        # while the model computes with others.
        if integrity.state_digest(integrity.plain_state(model)) != record["digest"]:
            return "after loading, the model does not hold the checkpoint's weights"
        return None

    def screen(self, record: dict[str, Any], screen: torch.Tensor) -> dict[str, Any]:
        """Digest checks and the loss on the first part of the validation set."""
        entry: dict[str, Any] = {
            "index": record["index"],
            "train_time_s": record["train_time_s"],
            "cost_s": record["cost_s"],
            "steps": record["steps"],
            "tokens": record["tokens"],
            "reported_probe_loss": record["probe_loss"],
        }

        def work(model: torch.nn.Module) -> dict[str, Any]:
            problem = self.load(model, record)
            if problem:
                return {"error_in_checkpoint": problem}
            ev = losses.evaluate(
                model, self.on_device(screen), self.v.vocab_size, self.spec.eval_batch
            )
            return {"screen_loss": ev.mean}

        found = self.child(work)
        if "error_in_checkpoint" in found:
            entry["error"] = found["error_in_checkpoint"]
        else:
            entry["screen_loss"] = found["screen_loss"]
        return entry

    def decisive(
        self, records: list[dict[str, Any]], entries: dict[int, dict[str, Any]]
    ) -> tuple[list[int], set[int]]:
        """The checkpoints the metrics depend on, among those within the budget: candidates
        for the first to reach the target (a screened loss within a margin of it, for the
        screen's sampling noise), and the best and the last by the screen. The budget is in
        the primary clock's seconds (``cost_s``: the estimate on tiny, wall time otherwise)."""
        limit = min(self.spec.budget_s, self.v.budget_s) * (1 + BUDGET_SLACK)
        ordered = sorted(
            (r for r in records if "screen_loss" in entries[r["index"]] and r["cost_s"] <= limit),
            key=lambda r: r["steps"],
        )
        if not ordered:
            return [], set()
        screened = {r["index"]: entries[r["index"]]["screen_loss"] for r in ordered}
        candidates = [i for i in screened if screened[i] <= self.v.target + CONFIRM_MARGIN]
        return candidates[:MAX_CANDIDATES], {
            ordered[-1]["index"],
            min(screened, key=lambda i: screened[i]),
        }

    def confirm(
        self,
        record: dict[str, Any],
        entry: dict[str, Any],
        val: torch.Tensor,
        probe: torch.Tensor | None,
    ) -> None:
        """The full validation loss (with the numpy spot check), and the probe recomputation
        for the checkpoints whose numbers are reported, with the gap between the two."""
        need_val = "val_loss" not in entry

        def work(model: torch.nn.Module) -> dict[str, Any]:
            problem = self.load(model, record)
            if problem:
                return {"error_in_checkpoint": problem}
            out: dict[str, Any] = {}
            if need_val:
                ev = losses.evaluate(
                    model,
                    self.on_device(val),
                    self.v.vocab_size,
                    self.spec.eval_batch,
                    sample_every=SPOT_EVERY,
                )
                out.update(
                    val_loss=ev.mean,
                    val_stderr=ev.stderr(),
                    spot_error=losses.spot_check(ev.sample),
                )
            if probe is not None:
                ev = losses.evaluate(
                    model, self.on_device(probe), self.v.vocab_size, self.spec.eval_batch
                )
                out.update(probe_loss=ev.mean, probe_std=_std(ev.per_window))
            return out

        found = self.child(work)
        if "error_in_checkpoint" in found:
            entry["error"] = found["error_in_checkpoint"]
            return
        probe_std = found.pop("probe_std", None)
        entry.update(found)
        if probe is not None and probe_std is not None:
            entry["probe_gap"] = entry["probe_loss"] - entry["val_loss"]
            limit = _gap_limit(self.v.probe_gap_limit, probe_std, probe.shape[0], val.shape[0])
            if limit is not None:
                entry["probe_gap_limit"] = limit

    def final_checks(
        self,
        by_index: dict[int, dict[str, Any]],
        best: dict[str, Any],
        final: dict[str, Any],
        val: torch.Tensor,
        fresh: torch.Tensor | None,
    ) -> dict[str, Any]:
        """Causality of the best and the final checkpoints and of the architecture, and the
        loss of the best on fresh samples (tiny), in one child."""

        def work(model: torch.nn.Module) -> dict[str, Any]:
            checks: dict[str, Any] = {}
            on = self.on_device(val[:3])
            for name, entry in (("best", best), ("final", final)):
                if name == "final" and final is best:
                    break
                self.load(model, by_index[entry["index"]])
                checks[f"causality_{name}"] = losses.causality(model, on, self.v.vocab_size)
            checks["causality_architecture"] = losses.causality(
                model, on, self.v.vocab_size, perturb=True
            )
            if fresh is not None:
                self.load(model, by_index[best["index"]])
                ev = losses.evaluate(
                    model, self.on_device(fresh), self.v.vocab_size, self.spec.eval_batch
                )
                checks["fresh"] = {"fresh_loss": ev.mean, "std": _std(ev.per_window)}
            return checks

        checks = self.child(work)
        if "fresh" in checks and fresh is not None:
            f, tolerance = checks["fresh"], self.v.fresh_gap_limit or 0.0
            checks["fresh"] = {
                "checkpoint": best["index"],
                "val_loss": best["val_loss"],
                "fresh_loss": f["fresh_loss"],
                "gap": f["fresh_loss"] - best["val_loss"],
                "limit": _gap_limit(tolerance, f["std"], fresh.shape[0], val.shape[0]) or tolerance,
            }
        return checks


def _leased_uid() -> bool:
    """A sandbox uid: not root, and without an entry in the password database (the sandbox
    leases numbers no account has)."""
    uid = os.geteuid()
    if uid == 0:
        return False
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return True
    return False


def _std(per_window: np.ndarray) -> float:
    return float(per_window.std(ddof=1)) if per_window.size > 1 else float("nan")


def _windows(tokens: np.ndarray | None, seq_len: int) -> torch.Tensor | None:
    return None if tokens is None else losses.windows(tokens, seq_len)


def verify_run(program: Path, raw: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """Recompute the run's results from its checkpoints; never raises (the reason is data)."""
    if not raw or not raw.get("ok"):
        return {"ok": False, "error": "the run reported no result to verify"}
    verifier = _Verifier(Path(program), raw, spec)
    try:
        return verifier.run()
    except Exception as exc:
        lines = traceback.format_exception_only(type(exc), exc)
        return {
            "ok": False,
            "error": "".join(lines).strip()[-2000:],
            "violations": list(verifier.violations),
            "tampered": sorted(verifier.tampered),
        }
