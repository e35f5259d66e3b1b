# threat: a state_dict pre-hook trains while the harness checkpoints, with the clock paused
# run: harness
# expect: valid val_loss>2.8
"""A state_dict pre-hook that trains on stashed batches: saving a checkpoint used to call it,
so every checkpoint (the final one included) trained for free, off the clock. The harness now
reads the weights straight from the tensors and never calls the hook, so only the 30 batches of
honest training count (a bigram after 30 Adam steps: ~2.9; with the hook's 400 extra steps it
reached ~2.5).
"""

import torch
import torch.nn.functional as F
from torch import nn

STASH = []


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.register_state_dict_pre_hook(self.train_off_the_clock)
        self.opt = None

    @staticmethod
    def train_off_the_clock(module, prefix, keep_vars):
        if module.opt is None or not STASH:
            return
        with torch.enable_grad():
            for step in range(400):
                x, y = STASH[step % len(STASH)]
                F.cross_entropy(module(x).flatten(0, 1), y.flatten()).backward()
                module.opt.step()
                module.opt.zero_grad()

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
