"""The harness's cross-entropy and the checks on what a program's model returns.

Everything here is bound at import, before any program runs, so a program that rebinds
``torch.logsumexp`` (or anything else) does not change the reported loss; ``PatchWatch``
reports the attempt.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

_logsumexp = torch.logsumexp
_gather = torch.gather
_no_grad = torch.no_grad
_module_train = torch.nn.Module.train
_is_tensor = torch.is_tensor
_no_torch_function = torch._C.DisableTorchFunction
_dispatch_modes = torch._C._len_torch_dispatch_stack
_no_python_dispatcher = torch._C._DisablePythonDispatcher  # where OpOverload.py_impl kernels run


class ProgramError(RuntimeError):
    """The program broke the harness's contract; the message is written for its author."""


@contextmanager
def harness_ops() -> Iterator[None]:
    """The harness's own tensor work (slicing the data, the loss, its sums, the checks).

    Rebinding Python names is not the only way into it: a TorchFunctionMode left on the stack
    (by module-level code or a forward) or a tensor subclass's ``__torch_function__`` sees every
    torch call, and could shrink the sums of the token losses. Both are switched off here; a
    TorchDispatchMode, which acts below them, is refused."""
    if _dispatch_modes():
        raise ProgramError(
            "a TorchDispatchMode is still active when the harness computes the loss; exit it "
            "before forward returns"
        )
    with _no_torch_function(), _no_python_dispatcher():
        yield


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
    if type(out) is not torch.Tensor:  # a subclass's __torch_function__ would see the loss
        raise ProgramError(
            f"model(idx) must return a plain torch.Tensor, got the subclass {type(out).__name__}"
        )
    with harness_ops():
        return _checked(out, x, vocab)


def _checked(out: torch.Tensor, x: torch.Tensor, vocab: int) -> torch.Tensor:
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
                with harness_ops():
                    chunk = data[i : i + batch]
                    # The model gets its own copy: x and y are views of one window, so writing
                    # into its input would rewrite the targets (and the data for later passes).
                    x, y = chunk[:, :-1].clone(), chunk[:, 1:]
                logits = logits_of(model, x, vocab)
                with harness_ops():
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
    with harness_ops():
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
            with harness_ops():  # copies: the model must not write into the data
                if data.shape[0] < 2:  # one window (a validation of one): its mirror is the other
                    data = torch.cat([data[:1], data[:1].flip(1)])
                x = data[:2, :-1].clone()
                other = (data[2:3, :-1] if data.shape[0] > 2 else data[:1, :-1].flip(1)).clone()
            base = logits_of(model, x.clone(), vocab)
            with harness_ops():
                scale = max(1.0, float(base.abs().max()))
            worst_prefix = worst_cross = 0.0
            seq_len = x.shape[1]
            for cut in (seq_len // 3, (2 * seq_len) // 3):
                with harness_ops():
                    changed = x.clone()
                    changed[0, cut:] = other[0, cut:]
                out = logits_of(model, changed, vocab)
                with harness_ops():
                    worst_prefix = max(
                        worst_prefix, float((out[0, :cut] - base[0, :cut]).abs().max()) / scale
                    )
                    worst_cross = max(worst_cross, float((out[1:] - base[1:]).abs().max()) / scale)
    finally:
        _module_train(model, was_training)
    return {"prefix_change": worst_prefix, "cross_change": worst_cross}
