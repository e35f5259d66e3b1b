# threat: renames its own function's code in place after a torch file (_imp._fix_co_filename, no audit event), which then starts a background thread
# run: harness
# expect: invalid ~ started a thread or process
"""``_imp._fix_co_filename`` (the import system's own helper) rewrites a code object's file
name in place and raises no audit event, so no check where code is made could see it. The
program's own ``start`` then ran under the name of ``torch/nn/functional.py``, and the thread it
started through ``concurrent.futures`` passed as torch's (compile pools may start threads):
valid, before, with work running outside ``train()``. A check of the code object itself,
when it acts, catches every renaming.
"""

import _imp
import concurrent.futures
import dis
import time

import torch
import torch.nn.functional as F
from torch import nn


def start():
    pool = concurrent.futures.ThreadPoolExecutor(1)
    return pool.submit(time.sleep, 0.5)


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    _imp._fix_co_filename(dis.Bytecode(start).codeobj, F.__file__)
    try:
        start()
    except PermissionError:
        pass
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
