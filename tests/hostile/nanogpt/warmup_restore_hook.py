# threat: a state_dict hook hands the warm-up's restore copies, so the warm-up's training stays
# run: harness
# expect: valid val_loss>1.9
"""The harness restores the weights after ``h.warmup()`` by writing the saved values into the
model's tensors. This hook gave that restore detached copies (``keep_vars`` calls only, which
is how the restore asked), so the trained tensors kept what the free warm-up taught them. The
harness now finds the tensors in the modules' own dicts, without calling any hook; as this
program checks (it raises if the warm-up's work survived).
"""

import torch
import torch.nn.functional as F
from torch import nn


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self._register_state_dict_hook(self.decoy)

    @staticmethod
    def decoy(module, state, prefix, local_metadata):
        for key in state:
            state[key] = state[key].detach().clone()

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    before = model.table.weight.detach().clone()
    with h.warmup():
        for _ in range(20):
            x, y = h.random_batch(8, 64)
            F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
            opt.step()
            opt.zero_grad()
    if not torch.equal(before, model.table.weight):
        raise AssertionError("the warm-up's training survived")
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
