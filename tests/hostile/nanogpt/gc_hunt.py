# threat: searches the garbage collector's objects for the harness's state (gc reached through a torch module)
# run: harness
# expect: invalid ~ used reflection
"""Searches the garbage collector's objects for the harness's state (gc reached through a
torch module, so no import statement shows it).
"""

import torch
import torch._dynamo.utils as dynamo_utils
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
    found = [o for o in dynamo_utils.gc.get_objects() if type(o).__name__ == "_Run"]
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    return found
