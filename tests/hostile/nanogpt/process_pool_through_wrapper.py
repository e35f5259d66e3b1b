# threat: does its heavy work in a process pool started through a torch wrapper (the sentinel judges the wrapper's frame), so the CPU clock of the training process never sees it
# run: harness
# expect: invalid ~ ran in processes the harness did not start
"""``torch.no_grad()(pool.submit)`` starts the pool's worker process from torch's frame, which
the sentinel's check of who starts a process accepts (a compile pool may). The work submitted
there (here matrix powers standing in for gradients computed off the clock) costs the training
process nothing on tiny's CPU clock: before, valid with a clock that saw none of it. The
kernel counts every process of the run; the harness only its own.
"""

from concurrent.futures import ProcessPoolExecutor

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    pool = ProcessPoolExecutor(1)
    submit = torch.no_grad()(pool.submit)
    work = torch.randn(768, 768)
    pending = [submit(torch.linalg.matrix_power, work, 2**50) for _ in range(6)]
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    for done in pending:
        done.result()
