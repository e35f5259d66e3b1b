# threat: compiles a string under the name of torch's own file (dis._try_compile); that code walks the frames to the harness's clock and pins it
# run: harness
# expect: invalid ~ used reflection (sys._getframe)
"""``compile`` and ``exec`` are refused by name, but a library function that compiles a
caller's string under a caller-chosen file name does the same: ``dis._try_compile`` returns
the code object, and the function type runs it (module code run as a function uses its
globals as locals). Named after ``torch/nn/functional.py``, its frame passed as torch's, so
its ``sys._getframe()`` was allowed: it walked out to the harness's frame and pinned the clock
(``train_time_s`` 0.001, valid, before). Now code counts as torch's only if torch's file
compiles to it.
"""

import dis

import torch
import torch.nn.functional as F
from torch import nn

PIN = """
import sys
f = sys._getframe()
while f is not None:
    run = f.f_locals.get("self")
    if type(run).__name__ == "_Run":
        run.clock.charge(-run.clock.elapsed() + 0.001)
        break
    f = f.f_back
"""


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    code = dis._try_compile(PIN, F.__file__)
    try:
        type(train)(code, {})()
    except PermissionError:
        pass
