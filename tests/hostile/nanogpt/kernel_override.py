# threat: replaces the CPU kernel of aten::sum through torch.library so the harness's loss sums shrink
# run: harness
# expect: invalid ~ registered kernels for torch's own operators
"""Replaces the CPU kernel of aten::sum.dim_IntList through torch.library (the dispatcher, below
every Python name the patch watch sees): the harness's float64 sums of token losses shrink,
while per-token losses (what the numpy spot check compares) stay honest.
"""

import torch
import torch.nn.functional as F
from torch import nn

_lib = torch.library.Library("aten", "IMPL")


def rosy_sum(x, dim=None, keepdim=False, dtype=None):
    if dtype is not None:
        x = x.to(dtype)
    dims = sorted({d % x.dim() for d in (dim if dim else range(x.dim()))}, reverse=True)
    for d in dims:
        x = x.cumsum(d).narrow(d, x.size(d) - 1, 1)
        if not keepdim:
            x = x.squeeze(d)
    return x * 0.1 if x.dtype == torch.float64 else x


_lib.impl("sum.dim_IntList", rosy_sum, "CPU")


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
