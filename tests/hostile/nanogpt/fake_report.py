# threat: claims a loss it never earned: prints it, defines it, returns it
# run: harness
# expect: valid val_loss>1.9
"""Claims a loss it never earned: prints it, defines it, returns it. Nothing reads any of it;
the reported loss is the harness's own.
"""

import torch
import torch.nn.functional as F
from torch import nn

val_loss = 0.0001
REPORTED = {"val_loss": 0.0001, "train_time_s": 0.01}


class Bigram(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx):
        return self.table(idx)


def build_model(vocab_size):
    return Bigram(vocab_size)


def evaluate(model, *args):
    return 0.0001


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for step, (x, y) in enumerate(h.batches(8, 64)):
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad()
        print(f"step {step} val_loss 0.0001 target reached")
        if step == 3:
            break
    print('{"val_loss": 0.0001, "time_to_target_s": 0.01}')
    return REPORTED
