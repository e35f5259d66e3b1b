# threat: stashes real batches, trains on them inside the free warm-up and restores the stashed weights
# run: harness
# expect: failed ~ must come before the first batch
"""Keeps real batches, trains hard on them inside the free warm-up, and copies the weights it
stashed back after the harness restored them (the restore only sees the model's tensors).
Warm-up is refused once the stream has been read.
"""

import torch
import torch.nn.functional as F
from torch import nn


def build_model(vocab_size):
    return nn.Embedding(vocab_size, vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    seen = []
    for x, y in h.batches(8, 64):
        seen.append((x, y))
        if len(seen) == 4:
            break
    with h.warmup():
        for _ in range(50):
            for x, y in seen:
                F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
                opt.step()
                opt.zero_grad()
        stash = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.copy_(stash)
