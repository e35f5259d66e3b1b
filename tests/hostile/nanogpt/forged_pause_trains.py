# threat: reaches the harness's timekeeper through a library's frame and sends it a pause of its own, trains (about 4 CPU-s) while the clock is stopped, then resumes it
# run: harness
# expect: invalid ~ while its clock was paused
"""The timekeeper's event pipe is in the program's process, so a program that reaches it can
send its own events. A forged pause stops the keeper's clock exactly as the harness's do; what
it cannot hide is the training process's CPU time in that window, which the keeper reads from
the kernel: the harness's own pauses are waits, so this one stands out.
"""

import dis
import time

import torch
import torch.nn.functional as F
from torch import nn

KEEPER = """
import logging
f = logging.currentframe()
while f is not None:
    run = f.f_locals.get("self")
    if type(run).__name__ == "_Run":
        found.append(run.keeper)
        break
    f = f.f_back
"""


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def off_the_clock_work(seconds):
    a = torch.randn(256, 256)
    start = torch.randn(1).sum()  # anything: the point is CPU time while paused
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        a = torch.tanh(a @ a) + start
    return a


def train(model, h):
    found = []
    type(train)(dis._try_compile(KEEPER, "<keeper>"), {"found": found})()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for step, (x, y) in enumerate(h.batches(8, 64)):
        if step == 3 and found:
            found[0].call("pause", kind="probe")
            off_the_clock_work(4.0)
            found[0].call("resume")
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
