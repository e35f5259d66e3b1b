# threat: redefines torch's cross-entropy, hoping the reported loss uses it
# run: harness
# expect: invalid ~ rebinds torch.nn.functional.cross_entropy
"""Redefines torch's cross-entropy, hoping the reported loss uses it."""

import torch
import torch.nn.functional as F
from torch import nn

F.cross_entropy = lambda logits, targets, **kw: (logits * 0).sum()


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
