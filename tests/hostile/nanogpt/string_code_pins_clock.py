# threat: runs code compiled from a string (timeit), which finds the harness's clock through gc
# run: harness
# expect: invalid ~ used reflection (gc.get_objects)
"""``timeit`` compiles its statement under the file name ``<timeit-src>``: code that is neither
the program's file nor any library's. The sentinel used to attribute only the program's own
file to the program, so this code could call ``gc.get_objects()``, find the harness's clock and
pin it. Every frame that is not the harness's, the standard library's or an installed
package's is now the program's.
"""

import timeit

import torch
import torch.nn.functional as F
from torch import nn

PIN = """
import gc
for o in gc.get_objects():
    if type(o).__name__ == "Clock":
        o.charge(-o.elapsed() + 0.001)
"""


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

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
    try:
        timeit.timeit(PIN, number=1)
    except PermissionError:
        pass
