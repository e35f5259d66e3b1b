"""nanogpt speedrun: the reference training script (GPT-2-124M class, FineWeb10B).

12 layers of width 768 with rotary position embeddings, RMS-normalised queries and keys, a
squared-ReLU MLP (optionally a fused Triton kernel), zero-initialised output projections, an
untied head with soft-capped logits; bf16 autocast; Muon on the hidden matrices and Adam on
the embedding, the head and the gains; gradient accumulation to a fixed global batch;
DistributedDataParallel across the processes torchrun starts; torch.compile, warmed up inside
h.warmup() so that compilation stays off the clock.

The harness calls ``build_model(vocab_size)`` and then ``train(model, h)``:
  h.batches(batch_size, seq_len) -> iterator of (x, y) token tensors on h.device (per rank)
  h.elapsed(), h.warmup(), h.random_batch(...), h.rank, h.world_size
The model maps token ids [B, T] to logits [B, T, >= vocab_size] and must be causal. The harness
measures the validation loss itself, from saved weights, in another process.
"""

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

try:
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    HAVE_TRITON = True
except ImportError:  # CPU-only machines without triton: the plain PyTorch path is used
    HAVE_TRITON = False

# EVOLVE-BLOCK-START hyperparameters
MODEL_DIM = 768  # knob: [256, 1536] int
N_LAYER = 12  # knob: [4, 24] int
HEAD_DIM = 128  # knob: {64, 128}
MLP_MULT = 4  # knob: [2, 8] int
VOCAB_PAD = 50304  # the GPT-2 vocabulary rounded up to a multiple of 128
SEQ_LEN = 1024  # knob: [256, 4096] int
MICRO_BATCH = 32  # knob: [4, 64] int
GLOBAL_BATCH_SEQS = 512  # knob: [64, 1024] int
TRAIN_STEPS = 3000  # knob: [500, 10000] int
WARMUP_STEPS = 0  # knob: [0, 500] int
COOLDOWN_FRAC = 0.4  # knob: [0.0, 0.9]
MATRIX_LR = 0.05  # knob: [0.005, 0.2] log
EMBED_LR = 0.3  # knob: [0.01, 1.0] log
HEAD_LR = 0.004  # knob: [0.0005, 0.05] log
SCALAR_LR = 0.02  # knob: [0.001, 0.2] log
MUON_MOMENTUM = 0.95  # knob: [0.8, 0.99]
NS_STEPS = 5  # knob: [1, 8] int
ADAM_BETA2 = 0.95  # knob: [0.9, 0.999]
LOGIT_CAP = 30.0  # knob: [5.0, 60.0]
ROPE_BASE = 10000.0  # knob: [1000.0, 1000000.0] log
COMPILE = True  # knob: {True, False}
FUSED_RELU2 = True  # knob: {True, False}
WARMUP_COMPILE_STEPS = 3  # knob: [1, 10] int
# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START kernels
if HAVE_TRITON:

    @triton.jit
    def _relu2_forward(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
        r = tl.maximum(x, 0.0)
        tl.store(y_ptr + offsets, (r * r).to(y_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _relu2_backward(x_ptr, g_ptr, dx_ptr, n, BLOCK: tl.constexpr):
        offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        mask = offsets < n
        x = tl.load(x_ptr + offsets, mask=mask).to(tl.float32)
        g = tl.load(g_ptr + offsets, mask=mask).to(tl.float32)
        tl.store(
            dx_ptr + offsets, (2.0 * tl.maximum(x, 0.0) * g).to(dx_ptr.dtype.element_ty), mask=mask
        )

    @triton_op("speedrun::relu2", mutates_args=())
    def relu2_fused(x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        wrap_triton(_relu2_forward)[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y

    @triton_op("speedrun::relu2_backward", mutates_args=())
    def relu2_fused_backward(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        x, grad = x.contiguous(), grad.contiguous()
        dx = torch.empty_like(x)
        n = x.numel()
        wrap_triton(_relu2_backward)[(triton.cdiv(n, 1024),)](x, grad, dx, n, BLOCK=1024)
        return dx

    def _relu2_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def _relu2_grad(ctx, grad):
        (x,) = ctx.saved_tensors
        return relu2_fused_backward(x, grad)

    relu2_fused.register_autograd(_relu2_grad, setup_context=_relu2_setup)


# Under TRITON_INTERPRET=1 Triton runs kernels on CPU tensors (slowly): the tests use it.
INTERPRETED = HAVE_TRITON and type(_relu2_forward).__name__ == "InterpretedFunction"


def relu2(x):
    """Squared ReLU: one fused kernel each way on GPU (or in Triton's CPU interpreter)."""
    if FUSED_RELU2 and HAVE_TRITON and (x.is_cuda or INTERPRETED):
        return relu2_fused(x)
    return F.relu(x).square()


# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START model
def rms_norm(x):
    return F.rms_norm(x, (x.size(-1),))


class Rotary(nn.Module):
    def __init__(self, head_dim, max_len=8192):
        super().__init__()
        freqs = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), freqs)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x):  # [B, H, T, D]
        t = x.size(-2)
        cos, sin = self.cos[:t].to(x.dtype), self.sin[:t].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.n_head = dim // HEAD_DIM
        self.qkv = nn.Linear(dim, 3 * self.n_head * HEAD_DIM, bias=False)
        self.proj = nn.Linear(self.n_head * HEAD_DIM, dim, bias=False)
        nn.init.zeros_(self.proj.weight)
        self.rotary = Rotary(HEAD_DIM)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.n_head, HEAD_DIM).permute(2, 0, 3, 1, 4)
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
        return self.down(relu2(self.up(x)))


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
        with torch.autocast(device_type=idx.device.type, dtype=torch.bfloat16, enabled=idx.is_cuda):
            x = rms_norm(self.embed(idx))
            for block in self.blocks:
                x = block(x)
            logits = self.head(rms_norm(x)).float()
        return LOGIT_CAP * torch.tanh(logits / LOGIT_CAP)


def build_model(vocab_size):
    return GPT(max(vocab_size, VOCAB_PAD), MODEL_DIM, N_LAYER)


# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START optimizer
def orthogonalize(g, steps):
    """Approximately the nearest semi-orthogonal matrix to g: a Newton-Schulz iteration in
    bf16 with a quintic tuned for speed over exact convergence."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g.bfloat16() if g.is_cuda else g
    x = x / (x.norm() + 1e-7)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return (x.T if tall else x).to(g.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum whose update for each matrix is orthogonalised."""

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
                p.add_(update, alpha=-group["lr"] * max(1.0, p.size(0) / p.size(1)) ** 0.5)


def make_optimizers(model):
    matrices = [p for p in model.blocks.parameters() if p.ndim == 2]
    gains = [p for p in model.blocks.parameters() if p.ndim < 2]
    adam = torch.optim.Adam(
        [
            dict(params=[model.embed.weight], lr=EMBED_LR),
            dict(params=[model.head.weight], lr=HEAD_LR),
            dict(params=gains, lr=SCALAR_LR),
        ],
        betas=(0.8, ADAM_BETA2),
        eps=1e-10,
        fused=model.head.weight.is_cuda,
    )
    optimizers = [adam, Muon(matrices, lr=MATRIX_LR, momentum=MUON_MOMENTUM)]
    for opt in optimizers:
        for group in opt.param_groups:
            group["initial_lr"] = group["lr"]
    return optimizers


def lr_scale(step):
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    cooldown_start = TRAIN_STEPS * (1 - COOLDOWN_FRAC)
    if step < cooldown_start:
        return 1.0
    return max(0.0, (TRAIN_STEPS - step) / (TRAIN_STEPS - cooldown_start))


def train(model, h):
    optimizers = make_optimizers(model)
    net = model
    if h.world_size > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[h.device.index] if h.device.type == "cuda" else None
        )
    if COMPILE and h.device.type == "cuda" and not h.smoke:
        net = torch.compile(net)
    accum = max(1, GLOBAL_BATCH_SEQS // (MICRO_BATCH * h.world_size))

    def micro_step(x, y, sync):
        context = (
            net.no_sync()
            if (h.world_size > 1 and not sync and hasattr(net, "no_sync"))
            else nullcontext()
        )
        with context:
            logits = net(x)
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
            (loss / accum).backward()

    with h.warmup():  # compile (and tune) on random tokens; the weights are restored after
        for _ in range(WARMUP_COMPILE_STEPS):
            micro_step(*h.random_batch(MICRO_BATCH, SEQ_LEN), sync=True)
            for opt in optimizers:
                opt.step()
            model.zero_grad(set_to_none=True)

    step, micro = 0, 0
    for x, y in h.batches(MICRO_BATCH, SEQ_LEN):
        micro += 1
        micro_step(x, y, sync=micro == accum)
        if micro < accum:
            continue
        micro = 0
        scale = lr_scale(step)
        for opt in optimizers:
            for group in opt.param_groups:
                group["lr"] = group["initial_lr"] * scale
            opt.step()
        model.zero_grad(set_to_none=True)
        step += 1
        if step >= TRAIN_STEPS:
            break


# EVOLVE-BLOCK-END
