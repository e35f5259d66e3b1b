# threat: a torch DataLoader's worker processes (started by torch itself, no wrapper needed) run the program's heavy per-batch work, off the training process's CPU clock
# run: harness
# expect: invalid ~ ran in processes the harness did not start
"""A ``Dataset`` whose ``__getitem__`` does the expensive part (here: matrix products standing
in for precomputed features), served by ``DataLoader(num_workers=1)``: torch forks the worker,
so no check of who starts processes sees the program. On tiny's CPU clock the training
process only waits for the results. The kernel's count of the run's CPU includes the worker.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset


class Features(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        a = torch.randn(512, 512)
        for _ in range(180):
            a = torch.tanh(a @ a)
        return float(a.mean())


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def train(model, h):
    features = iter(DataLoader(Features(), batch_size=1, num_workers=1))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for x, y in h.batches(8, 64):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
    for _ in features:
        pass
