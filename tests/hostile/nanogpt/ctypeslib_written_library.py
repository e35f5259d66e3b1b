# threat: writes a file into scratch and loads it as a native library through numpy.ctypeslib
# run: harness
# expect: invalid ~ not part of an installed package
"""Writes bytes into ``libpin.so`` in the scratch directory (``numpy.savetxt`` with a
relative path passes the static scan) and loads it with ``numpy.ctypeslib.load_library``:
the dlopen comes from numpy's and ctypes' frames, not the program's. Refused by the library's
path (a file the program could have written), whoever calls.
"""

import numpy as np
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
    np.savetxt("libpin.so", [], header="not really ELF", comments="")
    try:
        np.ctypeslib.load_library("libpin", ".")
    except OSError:
        pass
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
