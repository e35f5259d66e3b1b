# threat: imports the corpus generator by name through a library helper (pydoc.locate)
# run: harness
# expect: invalid ~ imported the harness module
"""Imports the corpus generator by name through a library helper (no import statement for
the static scan to see; the sentinel refuses the import).
"""

import pydoc

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
    corpus = pydoc.locate("progressbench_environments.nanogpt.corpus")
    val = torch.from_numpy(corpus.split_tokens("val", 8193).astype("int64"))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in h.batches(8, 64):
        F.cross_entropy(model(val[:-1].view(-1, 64)).flatten(0, 1), val[1:]).backward()
        opt.step()
        opt.zero_grad()
