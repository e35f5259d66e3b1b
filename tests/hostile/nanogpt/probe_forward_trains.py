# threat: the model's forward trains whenever the harness scores the probe set, clock paused
# run: harness
# expect: valid val_loss>2.8
"""The probe pass at a checkpoint runs the program's forward while the clock is paused; this
forward notices it (eval mode, during the run), computes its logits with the weights it was
given (so the probe loss stays the checkpoint's own) and then trains 400 steps on stashed
batches, which the next checkpoint keeps. On CPU the probe is now scored in a forked child, so
the hidden training dies with it and only the 30 honest batches count. With CUDA, where no
child can be forked, the probe's time is charged to the clock instead.
"""

import time

import torch
import torch.nn.functional as F
from torch import nn

STASH = []
RUNNING = [False]


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.opt = None

    def forward(self, idx):
        logits = self.table(idx)
        if RUNNING[0] and not self.training and STASH:
            logits = logits.clone()
            with torch.enable_grad():
                for step in range(400):
                    x, y = STASH[step % len(STASH)]
                    F.cross_entropy(self.table(x).flatten(0, 1), y.flatten()).backward()
                    self.opt.step()
                    self.opt.zero_grad()
        return logits


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    RUNNING[0] = True
    model.opt = torch.optim.Adam(model.table.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        STASH.append((x, y))
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        model.opt.step()
        model.opt.zero_grad()
        time.sleep(0.02)  # slow enough for checkpoints before the end
