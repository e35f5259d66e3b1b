# threat: stops the clock by rebinding time.perf_counter, in plain sight
# run: harness
# expect: invalid ~ rebinds time.perf_counter
"""Stops the clock by rebinding time.perf_counter, in plain sight."""

import time

import torch
import torch.nn.functional as F
from torch import nn

time.perf_counter = lambda: 0.0


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
