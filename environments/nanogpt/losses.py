"""The harness's cross-entropy and the checks on what a program's model returns.

Everything here is bound at import, before any program runs, so a program that rebinds
``torch.logsumexp`` (or anything else) does not change the reported loss; ``PatchWatch``
reports the attempt.
"""

from __future__ import annotations

import copy

import numpy as np
import torch

_logsumexp = torch.logsumexp
_gather = torch.gather
_no_grad = torch.no_grad
_module_train = torch.nn.Module.train
_is_tensor = torch.is_tensor


class ProgramError(RuntimeError):
    """The program broke the harness's contract; the message is written for its author."""


def windows(tokens: np.ndarray, seq_len: int) -> torch.Tensor:
    """Non-overlapping windows of ``seq_len + 1`` tokens (inputs plus shifted targets)."""
    n = (len(tokens) - 1) // seq_len
    index = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return torch.from_numpy(np.ascontiguousarray(tokens[index]))


def logits_of(model: torch.nn.Module, x: torch.Tensor, vocab: int) -> torch.Tensor:
    """``model(x)`` checked against the contract: float logits [B, T, >= vocab]."""
    out = model(x)
    if not _is_tensor(out):
        raise ProgramError(f"model(idx) must return a logits tensor, got {type(out).__name__}")
    if out.dim() != 3 or tuple(out.shape[:2]) != tuple(x.shape) or out.shape[2] < vocab:
        raise ProgramError(
            f"model(idx) with idx of shape {tuple(x.shape)} must return logits of shape "
            f"[{x.shape[0]}, {x.shape[1]}, >= {vocab}], got {tuple(out.shape)}"
        )
    if not out.is_floating_point():
        raise ProgramError(f"model(idx) returned {out.dtype} logits; they must be floating point")
    return out[..., :vocab].float()


def token_losses(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood (nats), from logits over the vocabulary."""
    picked = _gather(logits, -1, targets.unsqueeze(-1)).squeeze(-1)
    return _logsumexp(logits, dim=-1) - picked


class Evaluation:
    """Mean loss over windows, plus per-window means (for standard errors) and a sample of
    (logits row, target, loss) triples that ``spot_check`` recomputes in numpy."""

    def __init__(
        self, mean: float, per_window: np.ndarray, sample: list[tuple[np.ndarray, int, float]]
    ):
        self.mean = mean
        self.per_window = per_window
        self.sample = sample

    def stderr(self) -> float:
        n = len(self.per_window)
        return float(self.per_window.std(ddof=1) / np.sqrt(n)) if n > 1 else float("inf")


def evaluate(
    model: torch.nn.Module,
    data: torch.Tensor,
    vocab: int,
    batch: int,
    sample_every: int = 0,
) -> Evaluation:
    """The model's mean loss over ``data`` windows (on the model's device), in eval mode."""
    was_training = model.training
    _module_train(model, False)
    sums = []
    sample: list[tuple[np.ndarray, int, float]] = []
    try:
        with _no_grad():
            for i in range(0, data.shape[0], batch):
                chunk = data[i : i + batch]
                x, y = chunk[:, :-1], chunk[:, 1:]
                logits = logits_of(model, x, vocab)
                losses = token_losses(logits, y)
                sums.append(losses.double().sum(dim=1))
                if sample_every and (i // batch) % sample_every == 0:
                    row = (i * 7919) % x.shape[1]  # a spread of positions, deterministic
                    sample.append(
                        (
                            logits[0, row].double().cpu().numpy(),
                            int(y[0, row]),
                            float(losses[0, row]),
                        )
                    )
    finally:
        _module_train(model, was_training)
    per_window = (torch.cat(sums) / (data.shape[1] - 1)).cpu().numpy() if sums else np.zeros(0)
    return Evaluation(
        float(per_window.mean()) if per_window.size else float("nan"), per_window, sample
    )


def spot_check(sample: list[tuple[np.ndarray, int, float]]) -> float:
    """Largest |torch loss - numpy float64 loss| over the sample: a program that interferes
    with torch's kernels (rather than Python names) shows up here."""
    worst = 0.0
    for row, target, loss in sample:
        m = row.max()
        reference = float(m + np.log(np.exp(row - m).sum()) - row[target])
        worst = max(worst, abs(reference - loss))
    return worst


def causality(
    model: torch.nn.Module, data: torch.Tensor, vocab: int, perturb: bool = False
) -> dict[str, float]:
    """Change the tail of one window and see what moves: predictions before the change point,
    and those of the other windows in the batch, must not. A model that looks ahead (or
    across the batch) reads its own targets.

    ``perturb`` checks a copy with noise added to every weight instead: the architecture,
    not just these weights (zero-initialised layers would hide a leak at the start)."""
    if perturb:
        model = copy.deepcopy(model)
        with _no_grad():
            for p in model.parameters():
                if p.is_floating_point():
                    p.add_(torch.randn_like(p) * 0.05)
    was_training = model.training
    _module_train(model, False)
    try:
        with _no_grad():
            x = data[:2, :-1]
            other = data[2:3, :-1] if data.shape[0] > 2 else data[:1, :-1].flip(1)
            base = logits_of(model, x, vocab)
            scale = max(1.0, float(base.abs().max()))
            worst_prefix = worst_cross = 0.0
            seq_len = x.shape[1]
            for cut in (seq_len // 3, (2 * seq_len) // 3):
                changed = x.clone()
                changed[0, cut:] = other[0, cut:]
                out = logits_of(model, changed, vocab)
                worst_prefix = max(
                    worst_prefix, float((out[0, :cut] - base[0, :cut]).abs().max()) / scale
                )
                worst_cross = max(worst_cross, float((out[1:] - base[1:]).abs().max()) / scale)
    finally:
        _module_train(model, was_training)
    return {"prefix_change": worst_prefix, "cross_change": worst_cross}
