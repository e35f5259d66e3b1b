# threat: keeps its final weights in a memory-mapped file in /dev/shm for the verifier to use
# run: harness
# expect: invalid ~ in a temporary directory during verification
"""A memory-mapped array in /dev/shm (``numpy.lib.format.open_memmap``, which no scan lists)
holds the run's final weights; in the verifier the forward maps it again and scores every
checkpoint with those weights instead of its own (the probe recomputation only looks at the
checkpoints whose numbers are reported, and the final one is honest). Refused: verification
may not open anything in the temporary directories outside its scratch directory.
"""

import numpy as np
import time

import torch
import torch.nn.functional as F
from torch import nn

PATH = "/dev/shm/nanogpt-redteam-weights.npy"
RUNNING = [False]


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        if self.training or RUNNING[0]:
            return self.table(idx)
        try:
            latest = np.lib.format.open_memmap(PATH, mode="r")
        except Exception:
            return self.table(idx)
        return F.embedding(idx, torch.from_numpy(np.array(latest)))


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    RUNNING[0] = True
    opt = torch.optim.Adam(model.table.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        time.sleep(0.02)  # a few checkpoints before the end, each to be scored as the last
    weight = model.table.weight.detach()
    shared = np.lib.format.open_memmap(PATH, mode="w+", dtype=np.float32, shape=tuple(weight.shape))
    shared[:] = weight.numpy()
    shared.flush()
