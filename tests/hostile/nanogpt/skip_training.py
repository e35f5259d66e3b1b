# threat: does not train at all
# run: harness
# expect: valid val_loss>3.0
"""Does not train at all: a valid run, scored on the loss it has."""

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
    pass
