"""The protected harness, verification side: a fresh process that trusts only the checkpoint
files (by digest) and the program's model definition.

For every checkpoint the run recorded, it loads the weights into ``build_model(vocab_size)``,
checks the model holds exactly those weights, scores the validation set (which only ever exists
in this process) with the harness's own cross-entropy, and rescores the probe set to compare
with the run's number. On the checkpoints that decide the result it also checks that the model
is causal, that its loss on never-seen samples of the validation source is not suspiciously
worse (tiny), and that torch's loss agrees with a numpy recomputation.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from progressbench import load_program

from . import data, integrity, losses
from .config import BUDGET_SLACK, RunSpec
from .harness import CHECKPOINT_DIR, _seed_everything
from .losses import ProgramError

_load = torch.load
_state_dict = torch.nn.Module.state_dict
_load_state_dict = torch.nn.Module.load_state_dict
QUARANTINE = ".quarantine"
SPOT_EVERY = 8  # one numpy-recomputed token per this many validation batches
# Every checkpoint is screened on the first 1/SCREEN_FRACTION of the validation windows; only
# the decisive ones are scored on all of them. A screened loss within CONFIRM_MARGIN of the
# target (its sampling noise is ~0.01 on tiny) makes a checkpoint a candidate.
SCREEN_FRACTION = 4
CONFIRM_MARGIN = 0.05
MAX_CANDIDATES = 6


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


class _Verifier:
    def __init__(self, program: Path, raw: dict[str, Any], spec: RunSpec):
        self.program = program
        self.raw = raw
        self.spec = spec
        self.v = spec.variant_spec
        self.scratch = Path(spec.scratch)
        self.ckpt_dir = self.scratch / CHECKPOINT_DIR
        cuda = spec.variant != "tiny" and torch.cuda.is_available()
        self.device = torch.device("cuda", 0) if cuda else torch.device("cpu")
        self.sentinel = integrity.Sentinel(program, data.protected_paths(spec), self.ckpt_dir)
        self.sentinel.deny_reads = True

    def windows(self, tokens: np.ndarray | None) -> torch.Tensor | None:
        if tokens is None:
            return None
        return losses.windows(tokens, self.v.eval_seq_len).to(self.device)

    def run(self) -> dict[str, Any]:
        if self.device.type == "cpu":
            torch.set_num_threads(max(1, self.spec.threads))
        records, problems = _checkpoints(self.raw, self.ckpt_dir)
        if not records:
            return {"ok": False, "error": "the run left no checkpoint to verify"}
        by_index = {r["index"]: r for r in records}
        val = self.windows(data.validation_tokens(self.spec))
        probe = self.windows(data.TrainStream(self.spec).probe(self.spec.probe_tokens))
        fresh_seed = secrets.randbits(31)
        fresh = self.windows(data.fresh_tokens(self.spec, fresh_seed))
        assert val is not None and probe is not None
        watch = integrity.PatchWatch()
        _disable_compilation()
        results: list[dict[str, Any]] = list(problems)
        checks: dict[str, Any] = {}
        with _quarantined(self.scratch, self.ckpt_dir, self.program), self.sentinel.active():
            module = load_program(self.program)
            build = getattr(module, "build_model", None)
            if not callable(build):
                raise ProgramError("the program must define build_model(vocab_size)")
            _seed_everything(self.spec.seed)
            model = build(self.v.vocab_size).to(self.device)
            screen = val[: max(2, val.shape[0] // SCREEN_FRACTION)]
            entries = {r["index"]: self.screen(model, r, screen) for r in records}
            first, others = self.decisive(records, entries)
            for index in first:  # in time order, until one reaches the target
                self.confirm(model, by_index[index], entries[index], val, probe=None)
                if entries[index].get("val_loss", float("inf")) <= self.v.target:
                    others.add(index)
                    break
            confirmed = [e for e in entries.values() if "val_loss" in e]
            if confirmed and not any(e["val_loss"] <= self.v.target for e in confirmed):
                others.add(min(confirmed, key=lambda e: e["val_loss"])["index"])
            for index in sorted(others, key=lambda i: entries[i]["train_time_s"]):
                self.confirm(model, by_index[index], entries[index], val, probe=probe)
            results += list(entries.values())
            confirmed = [e for e in entries.values() if "val_loss" in e]
            if confirmed:
                best = min(confirmed, key=lambda e: e["val_loss"])
                final = confirmed[-1]
                for name, entry in (("best", best), ("final", final)):
                    if name == "final" and final is best:
                        break
                    self.load(model, by_index[entry["index"]])
                    checks[f"causality_{name}"] = losses.causality(model, val, self.v.vocab_size)
                checks["causality_architecture"] = losses.causality(
                    model, val, self.v.vocab_size, perturb=True
                )
                if fresh is not None:
                    self.load(model, by_index[best["index"]])
                    ev = losses.evaluate(model, fresh, self.v.vocab_size, self.spec.eval_batch)
                    gap = ev.mean - best["val_loss"]
                    stderr = float(np.hypot(ev.stderr(), best["val_stderr"]))
                    checks["fresh"] = {
                        "checkpoint": best["index"],
                        "val_loss": best["val_loss"],
                        "fresh_loss": ev.mean,
                        "gap": gap,
                        "limit": max(self.v.fresh_gap_limit or 0.0, 4 * stderr),
                        "seed": fresh_seed,
                    }
        checks["tampered"] = watch.changes()
        return {
            "ok": True,
            "device": str(self.device),
            "val_tokens": int(val.shape[0] * self.v.eval_seq_len),
            "eval_seq_len": self.v.eval_seq_len,
            "checkpoints": results,
            **checks,
            "violations": list(self.sentinel.violations),
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
        if integrity.state_digest(_state_dict(model)) != record["digest"]:
            return "after loading, the model does not hold the checkpoint's weights"
        return None

    def screen(
        self, model: torch.nn.Module, record: dict[str, Any], screen: torch.Tensor
    ) -> dict[str, Any]:
        """Digest checks and the loss on the first part of the validation set."""
        entry: dict[str, Any] = {
            "index": record["index"],
            "train_time_s": record["train_time_s"],
            "tokens": record["tokens"],
            "reported_probe_loss": record["probe_loss"],
        }
        problem = self.load(model, record)
        if problem:
            entry["error"] = problem
        else:
            entry["screen_loss"] = losses.evaluate(
                model, screen, self.v.vocab_size, self.spec.eval_batch
            ).mean
        return entry

    def decisive(
        self, records: list[dict[str, Any]], entries: dict[int, dict[str, Any]]
    ) -> tuple[list[int], set[int]]:
        """The checkpoints the metrics depend on, among those within the budget: candidates
        for the first to reach the target (a screened loss within a margin of it, for the
        screen's sampling noise), and the best and the last by the screen."""
        limit = min(self.spec.budget_s, self.v.budget_s) * (1 + BUDGET_SLACK)
        ordered = sorted(
            (
                r
                for r in records
                if "screen_loss" in entries[r["index"]] and r["train_time_s"] <= limit
            ),
            key=lambda r: r["train_time_s"],
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
        model: torch.nn.Module,
        record: dict[str, Any],
        entry: dict[str, Any],
        val: torch.Tensor,
        probe: torch.Tensor | None,
    ) -> None:
        """The full validation loss (with the numpy spot check), and the probe recomputation
        for the checkpoints whose numbers are reported."""
        problem = self.load(model, record)
        if problem:
            entry["error"] = problem
            return
        if "val_loss" not in entry:
            ev = losses.evaluate(
                model, val, self.v.vocab_size, self.spec.eval_batch, sample_every=SPOT_EVERY
            )
            entry["val_loss"] = ev.mean
            entry["val_stderr"] = ev.stderr()
            entry["spot_error"] = losses.spot_check(ev.sample)
        if probe is not None:
            entry["probe_loss"] = losses.evaluate(
                model, probe, self.v.vocab_size, self.spec.eval_batch
            ).mean


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
            "violations": list(verifier.sentinel.violations),
        }
