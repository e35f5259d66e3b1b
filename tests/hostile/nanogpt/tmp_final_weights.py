# threat: leaves its final weights and the probe windows' fingerprints in /tmp for the verifier
# run: harness
# expect: invalid ~ in a temporary directory during verification
"""During the run, every probe pass (eval mode) saves the current weights and the fingerprints
of the probe windows into /tmp, outside the scratch directory that verification quarantines.
In the verifier (its ``train`` never ran) the forward loads them and answers every window that
is not a probe window with the final weights: each early checkpoint then scores the final
model's validation loss, while its probe recomputation still matches the run's. The sandbox
gives verification a fresh /tmp; behind it, the verifier refuses any open in the temporary
directories outside the scratch directory.
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

PATH = "/tmp/nanogpt-redteam-final-weights.pt"
RUNNING = [False]


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.seen = []

    def forward(self, idx):
        if self.training:
            return self.table(idx)
        prints = [tuple(row[:16].tolist()) for row in idx]
        if RUNNING[0]:  # a probe pass of the run
            self.seen += prints
            state = {"weight": self.table.weight.detach().clone(), "probe": self.seen}
            torch.serialization.save(state, PATH)
            return self.table(idx)
        try:
            final = torch.serialization.load(PATH, weights_only=False)
        except Exception:
            return self.table(idx)
        probe = set(final["probe"])
        rows = [
            self.table(row) if p in probe else F.embedding(row, final["weight"])
            for row, p in zip(idx, prints)
        ]
        return torch.stack(rows)


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
