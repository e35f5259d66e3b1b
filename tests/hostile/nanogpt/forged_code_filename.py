# threat: renames a code object after torch._inductor's codecache.py (code.replace) and writes a native library into the compiler's cache, from which libraries may be loaded
# run: harness
# expect: invalid ~ wrote into a compiler's cache
"""Only torch.compile's and Triton's own code may write into their caches, because libraries
are loaded from there. That was decided by the writing frame's file name: code compiled from
a string and renamed with ``code.replace(co_filename=...)`` after
``torch/_inductor/codecache.py`` wrote ``libpin.so`` there, and ``torch.ops.load_library``
accepted the path (valid, before: the bytes here are no real library, so the load fails and
the program trains on). Now the frame's code must be one that codecache.py compiles to.
"""

import dis

import torch
import torch._inductor.codecache as codecache
import torch.nn.functional as F
from torch import nn

WRITE = """
import os
from torch._inductor.runtime.cache_dir_utils import cache_dir
path = os.path.join(cache_dir(), "libpin.so")
with open(path, "wb") as f:
    f.write(b"\\x7fELF not really")
"""


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    code = dis._try_compile(WRITE, "<write>").replace(co_filename=codecache.__file__)
    try:
        type(train)(code, {})()
        torch.ops.load_library(torch._inductor.runtime.cache_dir_utils.cache_dir() + "/libpin.so")
    except OSError:  # PermissionError now; the loader's error (not an ELF file) before
        pass
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
