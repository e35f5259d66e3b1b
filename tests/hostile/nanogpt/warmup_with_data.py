# threat: asks for training data inside the warm-up (whose time is free)
# run: harness
# expect: failed ~ inside h.warmup()
"""Asks for training data inside the warm-up (whose time is free)."""

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
    with h.warmup():
        for x, y in h.batches(8, 64):
            F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
            opt.step()
