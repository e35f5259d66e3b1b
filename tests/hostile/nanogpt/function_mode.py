# threat: leaves a TorchFunctionMode on the stack that shrinks the harness's float64 loss sums
# run: harness
# expect: valid val_loss>2.0
"""Leaves a TorchFunctionMode on the stack from module level (in the run and in the verifier),
so every torch call the harness makes goes through it; it shrinks the float64 sums of the token
losses. The harness computes with torch functions modes switched off: the loss is the honest one.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode


class Rosy(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if (
            func is torch.Tensor.sum
            and isinstance(out, torch.Tensor)
            and out.dtype == torch.float64
        ):
            return out * 0.1
        return out


Rosy().__enter__()  # never exited


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
