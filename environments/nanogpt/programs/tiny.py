"""nanogpt tiny: the reference training script.

A small GPT in the style of the modded-nanogpt speedrun records: rotary position embeddings,
RMS-normalised queries and keys, a squared-ReLU MLP, zero-initialised output projections,
soft-capped logits; Muon (orthogonalised momentum) on the hidden matrices and Adam on the
embedding, the head and the gains; a step-based schedule with warm-up and linear cool-down.

The harness calls ``build_model(vocab_size)`` and then ``train(model, h)``:
  h.batches(batch_size, seq_len) -> iterator of (x, y) token tensors on h.device
  h.elapsed() -> seconds on the training clock;  h.warmup() / h.random_batch(...) for compiling
The model maps token ids [B, T] to logits [B, T, >= vocab_size] and must be causal. The harness
measures the validation loss itself, from saved weights, in another process.
"""

import torch
import torch.nn.functional as F
from torch import nn

# EVOLVE-BLOCK-START hyperparameters
MODEL_DIM = 128  # knob: [32, 384] int
N_LAYER = 3  # knob: [1, 8] int
HEAD_DIM = 32  # knob: [8, 64] int
MLP_MULT = 4  # knob: [1, 8] int
SEQ_LEN = 256  # knob: [64, 512] int
BATCH_SIZE = 8  # knob: [2, 64] int
TRAIN_STEPS = 600  # knob: [100, 6000] int
WARMUP_STEPS = 30  # knob: [0, 300] int
COOLDOWN_FRAC = 0.45  # knob: [0.0, 0.9]
MATRIX_LR = 0.03  # knob: [0.002, 0.2] log
EMBED_LR = 0.05  # knob: [0.002, 0.5] log
HEAD_LR = 0.008  # knob: [0.0005, 0.05] log
SCALAR_LR = 0.02  # knob: [0.001, 0.2] log
MUON_MOMENTUM = 0.95  # knob: [0.8, 0.99]
NS_STEPS = 5  # knob: [1, 8] int
ADAM_BETA2 = 0.95  # knob: [0.9, 0.999]
LOGIT_CAP = 15.0  # knob: [5.0, 60.0]
ROPE_BASE = 1024.0  # knob: [100.0, 100000.0] log
ACTIVATION = "relu2"  # knob: {"relu2", "gelu", "silu"}
# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START model
def activation(x):
    if ACTIVATION == "relu2":
        return F.relu(x).square()
    return F.gelu(x) if ACTIVATION == "gelu" else F.silu(x)


def rms_norm(x):
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    def __init__(self, head_dim, max_len=4096):
        super().__init__()
        freqs = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), freqs)
        # Derived from the config, so not part of the checkpoint.
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # x: [B, H, T, D]
        t = x.size(-2)
        cos, sin = self.cos[:t].to(x.dtype), self.sin[:t].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.n_head = max(1, dim // HEAD_DIM)
        self.head_dim = dim // self.n_head
        inner = self.n_head * self.head_dim
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.proj = nn.Linear(inner, dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.rotary = Rotary(self.head_dim)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k = self.rotary(rms_norm(q)), self.rotary(rms_norm(k))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.up = nn.Linear(dim, MLP_MULT * dim, bias=False)
        self.down = nn.Linear(MLP_MULT * dim, dim, bias=False)
        nn.init.zeros_(self.down.weight)

    def forward(self, x):
        return self.down(activation(self.up(x)))


class Block(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.attn = Attention(dim)
        self.mlp = MLP(dim)
        self.attn_gain = nn.Parameter(torch.ones(()))
        self.mlp_gain = nn.Parameter(torch.ones(()))

    def forward(self, x):
        x = x + self.attn_gain * self.attn(rms_norm(x))
        return x + self.mlp_gain * self.mlp(rms_norm(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, dim, n_layer):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList([Block(dim) for _ in range(n_layer)])
        self.head = nn.Linear(dim, vocab_size, bias=False)
        nn.init.zeros_(self.head.weight)

    def forward(self, idx):
        x = rms_norm(self.embed(idx))
        for block in self.blocks:
            x = block(x)
        logits = self.head(rms_norm(x)).float()
        return LOGIT_CAP * torch.tanh(logits / LOGIT_CAP)


def build_model(vocab_size):
    return GPT(vocab_size, MODEL_DIM, N_LAYER)


# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START optimizer
def orthogonalize(g, steps):
    """Approximately the nearest semi-orthogonal matrix to g (Newton-Schulz iteration with a
    quintic whose coefficients favour speed over exact convergence)."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (g.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Momentum SGD whose update for each matrix is orthogonalised: every direction of the
    update moves at the same rate, whatever the scale of its gradient."""

    def __init__(self, params, lr, momentum):
        super().__init__(params, dict(lr=lr, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(p.grad)
                update = orthogonalize(p.grad + group["momentum"] * buf, NS_STEPS)
                scale = max(1.0, p.size(0) / p.size(1)) ** 0.5
                p.add_(update, alpha=-group["lr"] * scale)


def make_optimizers(model):
    matrices = [p for n, p in model.blocks.named_parameters() if p.ndim == 2]
    gains = [p for n, p in model.blocks.named_parameters() if p.ndim < 2]
    adam = torch.optim.Adam(
        [
            dict(params=[model.embed.weight], lr=EMBED_LR),
            dict(params=[model.head.weight], lr=HEAD_LR),
            dict(params=gains, lr=SCALAR_LR),
        ],
        betas=(0.9, ADAM_BETA2),
        eps=1e-10,
    )
    optimizers = [adam, Muon(matrices, lr=MATRIX_LR, momentum=MUON_MOMENTUM)]
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


def lr_scale(step):
    """Linear warm-up, constant, then linear cool-down to zero over the last COOLDOWN_FRAC."""
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    cooldown_start = TRAIN_STEPS * (1 - COOLDOWN_FRAC)
    if step < cooldown_start:
        return 1.0
    return max(0.0, (TRAIN_STEPS - step) / (TRAIN_STEPS - cooldown_start))


def train(model, h):
    optimizers = make_optimizers(model)
    for step, (x, y) in enumerate(h.batches(BATCH_SIZE, SEQ_LEN)):
        scale = lr_scale(step)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * scale
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
        loss.backward()
        for opt in optimizers:
            opt.step()
        model.zero_grad(set_to_none=True)
        if step + 1 >= TRAIN_STEPS:
            break


# EVOLVE-BLOCK-END
