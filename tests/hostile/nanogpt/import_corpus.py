# threat: imports the harness's corpus generator to train on the validation split
# run: harness
# expect: invalid ~ imports progressbench_environments.nanogpt.corpus
"""Imports the harness's corpus generator to train on the validation split."""

import torch
import torch.nn.functional as F
from torch import nn

from progressbench_environments.nanogpt import corpus


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    val = torch.from_numpy(corpus.split_tokens("val", 8193).astype("int64"))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in h.batches(8, 64):
        F.cross_entropy(model(val[:-1].view(-1, 64)).flatten(0, 1), val[1:]).backward()
        opt.step()
        opt.zero_grad()
