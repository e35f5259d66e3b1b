# threat: overrides _save_to_state_dict to train whenever the harness saves the weights
# run: harness
# expect: valid val_loss>2.8
"""The module's own ``_save_to_state_dict`` (what ``state_dict()`` calls on every submodule)
trains on stashed batches before handing its tensors over: a checkpoint taken while the clock
is paused would train for free. The harness reads the parameters from the modules' own dicts
without calling any method of theirs, so the override never runs.
"""

import torch
import torch.nn.functional as F
from torch import nn

STASH = []


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.opt = None

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        if self.opt is not None and STASH:
            with torch.enable_grad():
                for step in range(400):
                    x, y = STASH[step % len(STASH)]
                    F.cross_entropy(self(x).flatten(0, 1), y.flatten()).backward()
                    self.opt.step()
                    self.opt.zero_grad()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    model.opt = torch.optim.Adam(model.table.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        STASH.append((x, y))
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        model.opt.step()
        model.opt.zero_grad()
