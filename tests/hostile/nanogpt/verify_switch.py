# threat: behaves differently when the verifier runs it
# run: harness
# expect: invalid ~ recomputed in a fresh process
"""Behaves differently when the verifier runs it (train() was never called there): the
recomputed probe loss differs from what the run measured.
"""

import torch
import torch.nn.functional as F
from torch import nn

TRAINED = [False]


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        logits = self.table(idx)
        return logits if TRAINED[0] else 3.0 * logits


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    TRAINED[0] = True
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
