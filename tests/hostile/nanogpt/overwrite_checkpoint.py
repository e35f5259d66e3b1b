# threat: overwrites the first checkpoint with later weights so the target looks reached early
# run: harness
# expect: invalid ~ digest mismatch
"""Overwrites the first checkpoint with later weights, so that the target looks reached at
the first checkpoint's time (through an alias the static scan cannot resolve; torch.save
writes from C++, out of the sentinel's sight, so the checkpoint digest is what catches it).
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

lib = torch


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
    for step, (x, y) in enumerate(h.batches(8, 64)):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        if step == 0:
            time.sleep(0.5)  # long enough for the harness to checkpoint at the next batch
    lib.save(model.state_dict(), "nanogpt/ckpt_000.pt")
