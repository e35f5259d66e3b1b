# threat: code compiled from a string under a name of its own takes its frame from a library function that returns its caller's (logging.currentframe), walks out to the harness and rewrites the checkpoint records' times and costs
# run: harness
# expect: invalid ~ differ from its timekeeper's
"""``sys._getframe`` is refused to the program's frames, but ``logging.currentframe()`` is a
standard-library function that calls it and hands back its caller's frame; ``f_back`` and
``f_locals`` raise no audit event, so the frames lead to the harness's run object. The
records there (``train_time_s``, ``cost_s`` of every checkpoint) were the ones scored: with
the timekeeper's check switched off this run is valid, its rewritten records scored. Now the
records are the keeper's, in another process, and the harness's copy must match them.
"""

import dis

import torch
import torch.nn.functional as F
from torch import nn

REWRITE = """
import logging
f = logging.currentframe()
while f is not None:
    run = f.f_locals.get("self")
    if type(run).__name__ == "_Run":
        for record in run.checkpoints:
            record["train_time_s"] = record["cost_s"] = 0.001
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
    type(train)(dis._try_compile(REWRITE, "<records>"), {})()
