# threat: saves weights other than the ones it uses (a state_dict hook)
# run: harness
# expect: valid val_loss>2.8
"""Saves weights other than the ones it uses (a state_dict hook that halves them). The harness
reads the weights straight from the tensors, in the run and in the verifier, without calling
any hook: the checkpoint holds the weights the model computes with, and they are scored
honestly (with the hook called, the verifier found the model did not hold the checkpoint's
weights).
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
