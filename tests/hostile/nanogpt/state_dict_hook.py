# threat: saves weights other than the ones it uses (a state_dict hook)
# run: harness
# expect: invalid ~ does not hold the checkpoint's weights
"""Saves weights other than the ones it uses (a state_dict hook): the weights the verifier
loads are not the ones it reads back, and their probe loss could not match the run's either.
"""

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self._register_state_dict_hook(self.blur)

    @staticmethod
    def blur(module, state, prefix, local_metadata):
        for key in state:
            state[key] = state[key] * 0.5

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
