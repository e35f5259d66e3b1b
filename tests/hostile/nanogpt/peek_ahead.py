# threat: a model that looks at the next token and reports a loss near zero it did not earn
# run: harness
# expect: invalid ~ not causal
"""A model that looks at the next token: it learns to copy its target and reports a loss
near zero that it did not earn.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Peek(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        ahead = torch.cat([idx[:, 1:], idx[:, -1:]], dim=1)
        return self.table(ahead)


def build_model(vocab_size):
    return Peek(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
