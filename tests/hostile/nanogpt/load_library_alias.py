# threat: loads a native library through an alias of torch's op loader (torch.classes)
# run: harness
# expect: invalid ~ not part of an installed package
"""Loads a native library from the scratch directory through ``torch.classes.load_library``,
an alias of ``torch.ops.load_library`` that no static scan lists. The dlopen then happens in
torch's own frames, so a caller-based check let it through; a native library can reach the
clock (or anything else in the process). The sentinel now checks the library's real path,
whoever calls: only installed packages and the system's libraries may be loaded. (The file
need not exist: the refusal comes before the loader reads it; without it, the program just
catches the loader's error and trains.)
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
    try:
        torch.classes.load_library("./libpin_clock.so")
    except OSError:
        pass
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
