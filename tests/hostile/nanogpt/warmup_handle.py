# threat: reaches the harness's run state through the handle h.warmup() returns, to wind its clock back
# run: harness
# expect: valid train_time_s>0
"""Reaches the harness's run state without any reflection: a generator context manager keeps
its arguments in plain attributes, and h.warmup() was ``self.warmup()`` on the harness's _Run,
so ``h.warmup().args[0].clock`` could be wound back (a training time of 0.0). The handle's
warm-up no longer carries it: the program trains honestly and its time is measured.
"""

import torch
import torch.nn.functional as F
from torch import nn


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    leaked = h.warmup().args
    run = leaked[0] if leaked else None
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        if run is not None:
            run.clock.charge(-run.clock.elapsed())
