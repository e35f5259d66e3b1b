# threat: walks up the stack into the harness's frames to reach its clock
# run: harness
# expect: invalid ~ used reflection
"""Walks up the stack into the harness's frames to reach its clock."""

import traceback

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
    frames = [frame for frame, _ in traceback.walk_stack(None)]
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    return frames
