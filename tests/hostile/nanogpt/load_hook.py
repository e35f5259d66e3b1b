# threat: changes the weights as the verifier loads them (a load_state_dict pre-hook)
# run: harness
# expect: invalid ~ does not hold the checkpoint's weights
"""Changes the weights as the verifier loads them (a load_state_dict pre-hook)."""

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self._register_load_state_dict_pre_hook(self.sharpen)

    @staticmethod
    def sharpen(state, prefix, *args):
        for tensor in state.values():
            tensor.mul_(2.0)

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
