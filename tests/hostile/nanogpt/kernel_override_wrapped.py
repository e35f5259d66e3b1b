# threat: replaces the CPU kernel of aten::sum through torch.library, creating the library through a wrapper of torch's (torch.no_grad()(...)) so that the call comes from torch's frame
# run: harness
# expect: invalid ~ registered kernels for torch's own operators
"""``kernel_override`` creates its ``torch.library.Library("aten", "IMPL")`` itself and is
refused by its calling frame. Handed to a decorator's wrapper first, the library is created
from the wrapper's frame (torch's ``decorate_context``), and the check of the first frame past
torch.library let it through: the harness's float64 sums of token losses then shrink. Kernels
for torch's own operators are now refused whenever program code is on the stack, outside the
import of a library module and torch's own attention backends.
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn

_lib = torch.no_grad()(functools.partial(torch.library.Library, "aten", "IMPL"))()


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
