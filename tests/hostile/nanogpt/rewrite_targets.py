# threat: writes into its input during evaluation, where the targets were a view of the same window
# run: harness
# expect: valid val_loss>2.0
"""Writes into its input during evaluation: the harness's inputs and targets were views of one
window, so zeroing the input made every target but the last 0, which the model then predicts
(a validation loss of ~0.08 from a bigram). The model now gets a copy: the loss is honest.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        logits = self.table(idx)
        if not torch.is_grad_enabled():  # the harness's evaluation
            idx.fill_(0)
            logits = torch.zeros_like(logits)
            logits[..., 0] = 20.0
        return logits


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
