# threat: memorises the validation windows one verifier pass shows it to answer the next
# run: harness
# expect: valid val_loss>2.8
"""In the verifier (its ``train`` never ran) the model remembers every window it is shown and,
on seeing one again, predicts its next tokens from memory. With one model for the whole
verification, the screened quarter of the validation set came back in the full pass almost
free (full validation ~2.2 instead of ~2.9 for these weights), and the fresh-sample limit
(four standard errors of the now bimodal validation losses) grew enough to let it pass. Every
pass now runs in its own child with a fresh model: each window is seen once, and the
validation loss is the weights' own.
"""

import torch
import torch.nn.functional as F
from torch import nn

RUNNING = [False]


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)
        self.memory = {}

    def forward(self, idx):
        logits = self.table(idx)
        # Not on the causality check's two-row batches (a changed tail must not move anything).
        if self.training or RUNNING[0] or len(idx) <= 4:
            return logits
        rows = []
        for row, out in zip(idx, logits):
            key = tuple(row.tolist())
            if key in self.memory:
                boost = torch.zeros_like(out)
                boost[torch.arange(len(row) - 1), row[1:]] = 30.0
                out = out + boost
            self.memory[key] = True
            rows.append(out)
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
