# threat: takes operator out of a torch module's __dict__ and reads h.elapsed's closure with attrgetter to wind the clock back
# run: harness
# expect: invalid ~ reads .__dict__
"""Takes the operator module out of a torch module's namespace by a computed key and uses
attrgetter with computed names to read h.elapsed's closure cell (no audit event exists for either)
and wind the harness's clock back to 0. The static scan refuses a namespace other than self's.
"""

import torch
import torch.nn.functional as F
from torch import nn

_node = torch.fx.node
_op = _node.__dict__["oper" + "ator"]


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    cells = _op.attrgetter("__clo" + "sure__")(h.elapsed)
    run = _op.attrgetter("cell_con" + "tents")(cells[0])
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        run.clock.charge(-run.clock.elapsed())
