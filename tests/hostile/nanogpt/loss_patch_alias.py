# threat: rebinds the functions a cross-entropy is made of, through an alias
# run: harness
# expect: invalid ~ torch.logsumexp
"""Rebinds the functions a cross-entropy is made of, through an alias (runtime watch)."""

import torch
import torch.nn.functional as F
from torch import nn

lib = torch
lib.logsumexp = lambda x, dim, keepdim=False: x.amax(dim=dim, keepdim=keepdim) * 0
lib.gather = lambda x, dim, index: x.amax(dim=dim, keepdim=True) * 0


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
