# threat: mixes information across the sequences of a batch (the windows of one stream are neighbours)
# run: harness
# expect: invalid ~ other sequences of the batch
"""Mixes information across the sequences of a batch (windows of one stream are neighbours)."""

import torch
import torch.nn.functional as F
from torch import nn


class Mixer(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        logits = self.table(idx)
        return logits + 0.1 * logits.mean(dim=0, keepdim=True)


def build_model(vocab_size):
    return Mixer(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
