# threat: turns on Inductor's autotuning by a route the static scan does not read (a computed name through the config module's own __setattr__), so that a free, off-the-clock search picks faster kernels
# run: harness
# expect: invalid ~ autotuning is not allowed
"""The speedrun's rules keep autotuning off: compiling is not charged, so a search over kernel
configurations would buy speed for free. The scan refuses the switches spelled out; the harness
reads them after the warm-up and at the end, whatever route set them."""

import torch
import torch._inductor.config
from torch import nn

SWITCH = "_".join(["max", "autotune"])


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    torch._inductor.config.__setattr__(SWITCH, True)
    with h.warmup():
        pass
    for _ in h.batches(4, 32):
        pass
