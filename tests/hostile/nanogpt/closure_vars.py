# threat: reaches inspect through torch.serialization.sys and reads the harness's run out of h.elapsed's closure
# run: harness
# expect: invalid ~ reaches the module sys
"""Reaches inspect without importing it (through the sys module another module imported) and
reads the harness's _Run out of h.elapsed's closure with inspect.getclosurevars, to wind its
clock back. The static scan refuses sys reached as an attribute; behind it, the sentinel
refuses the function-code read inspect would make on the program's behalf.
"""

import torch
import torch.nn.functional as F
from torch import nn

inspect = torch.serialization.sys.modules["insp" + "ect"]


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    run = inspect.getclosurevars(h.elapsed).nonlocals["self"]
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        run.clock.charge(-run.clock.elapsed())
