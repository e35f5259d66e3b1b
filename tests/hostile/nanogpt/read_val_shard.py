# threat: reads the validation shard from disk through codecs (no open() for the static scan)
# run: harness
# variant: speedrun
# expect: invalid ~ opened the harness's data file
"""Reads the validation shard from disk (through codecs, so no open() for the static scan)."""

import codecs
import os

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
    with codecs.open(
        os.environ["NANOGPT_TEST_DATA"] + "/fineweb10B/fineweb_val_000000.bin", "rb"
    ) as f:
        f.read(64)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
