"""A small honest program for harness tests: one attention layer, Adam, a warm-up block."""

import torch
import torch.nn.functional as F
from torch import nn

# EVOLVE-BLOCK-START
DIM = 32  # knob: [16, 64] int
SEQ_LEN = 64  # knob: [32, 128] int
BATCH_SIZE = 8  # knob: [2, 16] int
LR = 0.003  # knob: [0.0003, 0.03] log


class SmallGPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, DIM)
        self.pos = nn.Embedding(512, DIM)
        self.qkv = nn.Linear(DIM, 3 * DIM, bias=False)
        self.mlp = nn.Sequential(nn.Linear(DIM, 4 * DIM), nn.GELU(), nn.Linear(4 * DIM, DIM))
        self.head = nn.Linear(DIM, vocab_size, bias=False)

    def forward(self, idx):
        x = self.embed(idx) + self.pos(torch.arange(idx.size(1), device=idx.device))
        q, k, v = self.qkv(x).unsqueeze(1).chunk(3, dim=-1)
        x = x + F.scaled_dot_product_attention(q, k, v, is_causal=True).squeeze(1)
        x = x + self.mlp(x)
        return self.head(x)


def build_model(vocab_size):
    return SmallGPT(vocab_size)


def train(model, h):
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    with h.warmup():  # exercised by the tests: weights and optimizer state are restored after
        x, y = h.random_batch(BATCH_SIZE, SEQ_LEN)
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    for x, y in h.batches(BATCH_SIZE, SEQ_LEN):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


# EVOLVE-BLOCK-END
