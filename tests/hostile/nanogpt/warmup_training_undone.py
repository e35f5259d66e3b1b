# threat: trains hard during the free warm-up, hoping the work survives
# run: harness
# expect: valid val_loss>1.9
"""Trains hard during the free warm-up; the harness restores weights and optimizer state, as
this program checks (it raises if the warm-up's work survived).
"""

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
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    before = model.table.weight.detach().clone()
    with h.warmup():
        for _ in range(20):
            x, y = h.random_batch(8, 64)
            F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
            opt.step()
            opt.zero_grad()
    if not torch.equal(before, model.table.weight) or opt.state:
        raise AssertionError("the warm-up's training survived")
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
