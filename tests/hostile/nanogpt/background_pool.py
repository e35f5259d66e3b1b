# threat: trains in a background thread pool while the harness's clock is paused
# run: harness
# expect: invalid ~ started a thread
"""Trains in a background thread while the harness has its clock paused (through a thread
pool, so no threading import shows).
"""

from concurrent.futures import ThreadPoolExecutor

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
    cache = []

    def more():
        for x, y in cache[-4:]:
            F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()

    pool = ThreadPoolExecutor(1)
    for x, y in h.batches(8, 64):
        cache.append((x, y))
        pool.submit(more)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
