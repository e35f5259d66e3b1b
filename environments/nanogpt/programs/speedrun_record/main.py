"""nanogpt speedrun: a port of the modded-nanogpt record (KellerJordan/modded-nanogpt, train_gpt.py
at commit 0016a3c4) to this harness. See CHANGES.md beside this file for every departure.

11 layers of width 768 (6 heads of 128), vocabulary padded to 50304; an embedding tied to the
lm_head until 2/3 of training; a smear gate (one token of look-back), hashed bigram embeddings
(with the sign trick), five value embeddings with gates, residual/post/x0 lambdas per sublayer;
sliding-window attention (short/long windows per layer, window warm-up, YaRN on every change of
the long window), half-truncated RoPE, QK-norm, paired-head attention on four layers, partial key
offset on long windows, gated XSA, a sparse attention gate, no attention in layer 6 (a gated skip
from layer 3 instead), attention from layer 7's output in the last layers, a backout of layer 7
before the head; squared-ReLU MLPs; logits 23 * sigmoid((z + 5) / 7.5); multi-token prediction.
NorMuon (Polar Express) on the matrices, Adam on the rest, both with cautious weight decay;
Adam stepped every other step; a three-stage batch-size / sequence-length / window schedule
plus an extension stage; lr cooldown to 0.15; Muon momentum warm-up and cool-down.

The harness calls ``build_model(vocab_size)`` and then ``train(model, h)``; the forward maps
token ids [B, T] to logits [B, T, 50304]; the harness scores them itself.
"""

import math

import optim
import record_kernels as kernels  # not "kernels": a package of that name exists
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

# EVOLVE-BLOCK-START hyperparameters
MODEL_DIM = 768  # knob: [256, 1536] int
N_LAYER = 11  # knob: [2, 16] int
HEAD_DIM = 128  # knob: {64, 128}
MLP_MULT = 4  # knob: [2, 8] int
VOCAB_MULTIPLE = 128  # the vocabulary is padded up to a multiple of this
BIGRAM_VOCAB = 377280  # knob: [1024, 1000000] int
BIGRAM_DIM = 768  # knob: [64, 1536] int
SIGN_TABLE_ROWS = 8192  # knob: [256, 16384] int
SEQ_LEN_FIRST = 896  # knob: [64, 4096] int
SEQ_LEN = 2048  # knob: [64, 4096] int
BATCH_TOKENS_1 = 131072  # knob: [4096, 1048576] int
BATCH_TOKENS_2 = 262144  # knob: [4096, 1048576] int
BATCH_TOKENS_3 = 393216  # knob: [4096, 1048576] int
MICRO_BATCH = 8  # knob: [1, 64] int
TRAIN_STEPS = 1285  # knob: [100, 5000] int
EXTENSION_STEPS = 15  # knob: [0, 200] int
COOLDOWN_FRAC = 0.6  # knob: [0.1, 0.9]
FINAL_LR = 0.15  # knob: [0.0, 1.0]
WINDOW_BLOCK = 128  # knob: {64, 128, 256}
ADAM_LR = 0.008  # knob: [0.001, 0.05] log
ADAM_WD = 0.005  # knob: [0.0, 0.05]
MUON_LR = 0.023  # knob: [0.005, 0.1] log
MUON_WD = 1.2  # knob: [0.0, 3.0]
MUON_BETA2 = 0.9  # knob: [0.5, 0.999]
MUON_WARMUP_STEPS = 300  # knob: [0, 1000] int
MUON_COOLDOWN_STEPS = 50  # knob: [0, 500] int
FP8_HEAD = True  # knob: {True, False}
FUSED_RELU2 = True  # knob: {True, False}
COMPILE = True  # knob: {True, False}
WARMUP_COMPILE_STEPS = 2  # knob: [1, 10] int
# EVOLVE-BLOCK-END

# Stages of the schedule: (share of TRAIN_STEPS, lr multiplier, windows in WINDOW_BLOCK units,
# multi-token-prediction weights at the stage's start and end). The extension stage follows.
STAGES = (
    (1 / 3, 1.0, (1, 3), (1.0, 0.5, 0.25), (1.0, 0.5, 0.0)),
    (1 / 3, 1.52, (3, 7), (1.0, 0.5), (1.0, 0.0)),
    (1 / 3, 1.73, (5, 11), (1.0,), (1.0,)),
)
EXTENSION_WINDOWS = (6, 13)
FINAL_LONG_WINDOW = 20  # the long window for validation, in WINDOW_BLOCK units
SPLIT_EMBED_STAGE = 2  # untie the embedding at this stage's first (odd) step


# EVOLVE-BLOCK-START model
def norm(x):
    return F.rms_norm(x, (x.size(-1),))


def layer_roles(n):
    """The record's per-layer pattern for 11 layers; for other depths the same roles at the
    layers that exist (a role tied to the last layer stays on the last layer)."""
    last = n - 1

    def keep(layers):
        return sorted({i for i in layers if 0 <= i < n})

    ve_slots = {}
    for bank, layer in enumerate((1, 2, n - 3, n - 2, n - 1)):
        if 0 <= layer < n and layer not in ve_slots:
            ve_slots[layer] = bank
    return dict(
        paired=keep([0, 2, 5, 9]) if n >= 11 else keep([0]),
        xsa=keep([1, 3, 4, 7]),
        attn_gate=keep([3, last]),
        long=keep([3, last]),
        skip=6 if n >= 11 else None,  # no attention here: a gated skip from layer 3
        caches=keep([3, 7]) if n >= 11 else [],
        value_embeds=ve_slots,
    )


class Yarn(nn.Module):
    """Half-truncated RoPE (a quarter of the dimensions rotate at frequencies down to 1/1024,
    the other half stay still) with YaRN rescaling when the attention window grows. The tables,
    the frequencies and the attention scale are persistent buffers, so saved weights carry them."""

    def __init__(self, head_dim, max_len, paired):
        super().__init__()
        self.paired, self.max_len = paired, max_len
        freq = (1 / 1024) ** torch.linspace(0, 1, steps=head_dim // 4)
        freq = torch.cat([freq.repeat_interleave(2), freq.new_zeros(head_dim // 2)])
        self.register_buffer("angular_freq", freq)
        self.register_buffer("attn_scale", torch.tensor(0.1))
        width = 2 * head_dim if paired else head_dim
        self.register_buffer("cos", torch.zeros(max_len, width))
        self.register_buffer("sin", torch.zeros(max_len, width))
        self._tables()

    @torch.no_grad()
    def _tables(self):
        t = torch.arange(self.max_len, dtype=torch.float32, device=self.angular_freq.device)
        if self.paired:  # head 2p at position 2t, head 2p+1 at 2t+1
            theta = torch.cat(
                [torch.outer(2 * t, self.angular_freq), torch.outer(2 * t + 1, self.angular_freq)],
                dim=-1,
            )
        else:
            theta = torch.outer(t, self.angular_freq)
        sin = theta.sin()
        sin[..., 1::2] *= -1
        self.cos.copy_(theta.cos())
        self.sin.copy_(sin)

    @torch.no_grad()
    def extend(self, old_window, new_window, alpha=1.0, beta=32.0):
        rotations = old_window * self.angular_freq / (2 * math.pi)
        scale = old_window / new_window
        blend = ((rotations - alpha) / (beta - alpha)).clamp(0, 1)
        self.angular_freq.mul_(scale + blend * (1 - scale))
        self._tables()
        self.attn_scale.mul_(0.2 * math.log(new_window / old_window) + 1)

    def forward(self, x):  # [B, T, H, D]: rotate pairs (x0, x1) -> (x1, x0) mixed in
        t = x.size(1)
        cos, sin = self.cos[None, :t, None, :].type_as(x), self.sin[None, :t, None, :].type_as(x)
        flipped = x.reshape(*x.shape[:-1], -1, 2).flip(-1).reshape(x.shape)
        return cos * x + sin * flipped


class Attention(nn.Module):
    """Q/K/V/O of one layer; Q and K as one [2*dim, dim] matrix whose head pairs NorMuon
    orthogonalises separately (the record's qk_bank), V and O as [dim, dim] (its vo_bank)."""

    def __init__(self, dim, head_dim, paired, xsa, gated):
        super().__init__()
        self.heads, self.head_dim, self.paired = dim // head_dim, head_dim, paired
        bound = 3**0.5 * 0.5 * dim**-0.5
        self.qk = nn.Parameter(torch.empty(2 * dim, dim).uniform_(-bound, bound))
        self.v = nn.Parameter(torch.empty(dim, dim).uniform_(-bound, bound))
        self.o = nn.Parameter(torch.empty(dim, dim).uniform_(-bound, bound))
        self.qk.muon_view = (2 * dim // (2 * head_dim), 2 * head_dim, dim)
        # The record generates these per token (its MUDD gate), from zero-initialised output
        # weights: at init they are its bias values, kept here as learned constants.
        self.xsa_alpha = nn.Parameter(torch.zeros(self.heads)) if xsa else None
        self.gate = nn.Parameter(torch.full((self.heads,), 0.25)) if gated else None

    def forward(self, x, lambdas, rope, window, key_offset, aux_v):
        b, t, dim = x.shape
        h, d = self.heads, self.head_dim
        q, k = F.linear(x, lambdas[0] * self.qk.type_as(x)).view(b, t, 2 * h, d).chunk(2, dim=2)
        v = F.linear(x, lambdas[0] * self.v.type_as(x)).view(b, t, h, d)
        q, k = norm(q), norm(k)
        if not self.paired:
            q, k = rope(q), rope(k)
            if key_offset:  # keys' still half shifted one step forward: one-layer induction
                still = k[:, :, :, d // 2 :]
                still = torch.cat([still[:, :1], still[:, :-1]], dim=1)
                k = torch.cat([k[:, :, :, : d // 2], still], dim=-1)
            if aux_v is not None:
                v = v + aux_v.view_as(v)
            y = kernels.sliding_window_attention(q, k, v, window, rope.attn_scale)
        else:
            # Paired heads: the two heads of a pair become two positions of one stream twice as
            # long, so each query also sees the other head's key of the same token.
            q = rope(q.reshape(b, t, h // 2, 2 * d)).reshape(b, 2 * t, h // 2, d)
            k = rope(k.reshape(b, t, h // 2, 2 * d)).reshape(b, 2 * t, h // 2, d)
            if aux_v is not None:
                v = v + aux_v.view_as(v)
            v = v.reshape(b, 2 * t, h // 2, d)
            y = kernels.sliding_window_attention(q, k, v, window, rope.attn_scale)
            y = y.reshape(b, t, h, d)
        if self.xsa_alpha is not None and not self.paired:  # gated XSA
            vn = F.normalize(v, dim=-1, eps=1e-4)
            along = (y * vn).sum(-1, keepdim=True)
            y = y - torch.tanh(self.xsa_alpha).type_as(y).view(1, 1, h, 1) * along * vn
        if self.gate is not None:
            y = y * self.gate.type_as(y).view(1, 1, h, 1)
        return F.linear(y.reshape(b, t, dim), lambdas[1] * self.o.type_as(y))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        bound = 3**0.5 * 0.5 * dim**-0.5
        # c_fc and c_proj as one [2, hidden, dim] bank; c_proj stored transposed, zero init.
        self.bank = nn.Parameter(torch.zeros(2, MLP_MULT * dim, dim))
        with torch.no_grad():
            self.bank[0].uniform_(-bound, bound)
        self.bank.matrix_lr_mul = [1.0, 2.0]

    def forward(self, x):
        hidden = kernels.relu2(F.linear(x, self.bank[0].type_as(x)), FUSED_RELU2)
        return hidden @ self.bank[1].type_as(x)


class GPT(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        n, dim = N_LAYER, MODEL_DIM
        assert dim % HEAD_DIM == 0 and (dim // HEAD_DIM) % 2 == 0, "paired heads need even heads"
        self.vocab = -(-vocab_size // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
        self.roles = layer_roles(n)
        heads = dim // HEAD_DIM
        # lm_head stored [dim, vocab]; the embedding starts as its transpose (tied).
        self.lm_head = nn.Parameter(torch.randn(dim, self.vocab) * 0.005)
        self.embed = nn.Parameter(self.lm_head.detach().T.clone())
        self.value_embeds = nn.Parameter(0.01 * torch.randn(5, self.vocab, dim))
        self.ve_gates = nn.Parameter(torch.zeros(5, heads, 12))
        self.smear_gate = nn.Parameter(torch.zeros(1, 12))
        self.bigram_embed = nn.Parameter(torch.zeros(BIGRAM_VOCAB, BIGRAM_DIM))
        signs = torch.randn(SIGN_TABLE_ROWS, BIGRAM_DIM).sign()
        self.register_buffer("bigram_signs", signs)
        self.attn = nn.ModuleList(
            [
                Attention(
                    dim,
                    HEAD_DIM,
                    i in self.roles["paired"],
                    i in self.roles["xsa"],
                    i in self.roles["attn_gate"],
                )
                for i in range(n)
            ]
        )
        self.mlp = nn.ModuleList([MLP(dim) for _ in range(n)])
        max_len = 2 * max(SEQ_LEN, SEQ_LEN_FIRST, 1024)
        self.rope = Yarn(HEAD_DIM, max_len, paired=False)
        self.rope_paired = Yarn(HEAD_DIM, max_len, paired=True)
        # Scalars: [sa_q/k/v, sa_o] per layer, then smear and skip lambdas.
        sa = torch.tensor([0.5, 1.0]).repeat(n)
        self.scalars = nn.Parameter(torch.cat([sa, torch.zeros(1), torch.full((1,), -1.5)]))
        self.resid_lambdas = nn.Parameter(torch.full((n, 2), 1.1**0.5))
        self.post_lambdas = nn.Parameter(torch.ones(n, 2))
        # The record's MUDD coefficients at init (their bias terms), as learned constants:
        # per-layer x0 and bigram gates, the skip gate, the last layer's mixes (v sources,
        # residual sources, value-embedding lanes, x0 and bigram lambdas) and the post-loop mix
        # over (x_0, h_7, h_last_in, value embedding 0, h_3), whose -0.5 on h_7 is the backout.
        self.x0_gates = nn.Parameter(torch.zeros(n))
        self.bigram_gates = nn.Parameter(torch.full((n,), 0.05))
        self.skip_gate = nn.Parameter(torch.tensor(0.5))
        self.last_mix = nn.Parameter(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0]))
        self.post_mix = nn.Parameter(torch.tensor([0.0, -0.5, 0.0, 0.0, 0.0]))
        # Windows in tokens (short, long); buffers so that saved weights carry the schedule.
        self.register_buffer("windows", torch.tensor([WINDOW_BLOCK, 3 * WINDOW_BLOCK]))
        self.fp8_head = FP8_HEAD
        self.fp8_grad_s = 0.75 / 448  # the record's gradient scale, times 1 / accumulation

    # -- inputs ---------------------------------------------------------------------------
    def bigram_hash(self, idx):
        """[prev, cur] hashed as the record does (int32 products, xor, mod); the first position
        of each row maps to the reserved last row."""
        mod = BIGRAM_VOCAB - 1

        def int32(v):
            return (v + 2**31) % 2**32 - 2**31

        cur, prev = int32(36313 * idx[:, 1:]), int32(27191 * idx[:, :-1])
        hashed = torch.remainder(torch.bitwise_xor(cur, prev), mod)
        first = torch.full_like(idx[:, :1], mod)
        return torch.cat([first, hashed], dim=1)

    def forward(self, idx):
        with torch.autocast(idx.device.type, dtype=torch.bfloat16, enabled=idx.is_cuda):
            return self._forward(idx)

    def _forward(self, idx):
        n, roles = N_LAYER, self.roles
        b, t = idx.shape
        ws_short, ws_long = self.windows[0], self.windows[1]
        sa = self.scalars[: 2 * n].view(n, 2)
        smear_lambda, skip_lambda = self.scalars[2 * n], self.scalars[2 * n + 1]

        x = F.embedding(idx, self.embed)
        signs_idx = torch.zeros_like(idx)
        signs_idx[:, 1:] = torch.bitwise_xor(idx[:, :-1], idx[:, 1:]) % SIGN_TABLE_ROWS
        bigram = (
            F.embedding(self.bigram_hash(idx), self.bigram_embed) * self.bigram_signs[signs_idx]
        )
        ve_banks = [F.embedding(idx, self.value_embeds[j]) for j in range(5)]
        # smear: each token takes a gated share of the previous token's embedding
        gate = smear_lambda * torch.sigmoid(x[:, 1:, :12] @ self.smear_gate.T.type_as(x))
        x = torch.cat([x[:, :1], x[:, 1:] + gate * x[:, :-1]], dim=1)
        x0 = norm(x)

        def add_bigram(x, weight):
            head = x[..., :BIGRAM_DIM] + weight * bigram.type_as(x)
            return torch.cat([head, x[..., BIGRAM_DIM:]], dim=-1)

        x = add_bigram(x0, self.bigram_gates[0])
        cache = {0: x}
        last_in = x
        for i in range(n):
            paired = i in roles["paired"]
            if i == roles["skip"]:
                x = x + torch.sigmoid(skip_lambda) * self.skip_gate * cache[3]
            else:
                attn_in = norm(cache.get(7, x))
                ve_slot = roles["value_embeds"].get(i)
                aux_v = None
                m = self.last_mix
                if i == n - 1:  # the last layer: the record's first MUDD site
                    last_in = x
                    h7 = cache.get(7, torch.zeros_like(x))
                    v_mix = m[0] * cache[0] + m[1] * h7 + m[2] * x
                    x = (1 + m[5]) * x + m[3] * cache[0] + m[4] * h7
                    if ve_slot is not None:
                        heads = self.attn[i].heads
                        lanes = m[6:8].repeat_interleave(heads // 2).view(1, 1, heads, 1)
                        ve = ve_banks[ve_slot].view(b, t, heads, -1)
                        aux_v = (lanes * ve).view(b, t, -1) + v_mix
                    else:
                        aux_v = v_mix
                elif ve_slot is not None:
                    ve = ve_banks[ve_slot]
                    heads = self.attn[i].heads
                    gate_in = torch.cat([attn_in[..., :6], ve[..., :6].type_as(attn_in)], dim=-1)
                    g = 2 * torch.sigmoid(F.linear(gate_in, self.ve_gates[ve_slot].type_as(x)))
                    aux_v = (g.view(b, t, heads, 1) * ve.view(b, t, heads, -1)).view(b, t, -1)
                long = i in roles["long"]
                window = ws_long if long else ws_short
                rope = self.rope_paired if paired else self.rope
                y = self.attn[i](attn_in, sa[i], rope, window, long and not paired, aux_v)
                x = self.resid_lambdas[i, 0] * x + self.post_lambdas[i, 0] * y
                x = x + x0 * self.x0_gates[i]
                if i != 0:
                    x = add_bigram(x, self.bigram_gates[i])
            x = self.resid_lambdas[i, 1] * x + self.post_lambdas[i, 1] * self.mlp[i](norm(x))
            if i in roles["caches"]:
                cache[i] = x
        zero = torch.zeros_like(x)
        p = self.post_mix
        x = (
            x
            + p[0] * cache[0]
            + p[1] * cache.get(7, zero)
            + p[2] * last_in
            + p[3] * ve_banks[0].type_as(x)
            + p[4] * cache.get(3, zero)
        )
        x = norm(x)
        logits = kernels.linear_t(
            x, self.lm_head, self.fp8_head and self.training, 100 / 448, 1.6 / 448, self.fp8_grad_s
        )
        return 23 * torch.sigmoid((logits.float() + 5) / 7.5)


def build_model(vocab_size):
    return GPT(vocab_size)


# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START optimizer
def make_optimizer(model):
    """The record's param_table: (betas, lr_mul, wd_mul) per labelled parameter."""
    adam_table = {
        "scalars": ((0.9, 0.99), 5.0, 0.0),
        "smear_gate": ((0.9, 0.99), 0.01, 0.0),
        "ve_gates": ((0.9, 0.99), 1.0, 1.0),
        "lm_head": ((0.5, 0.95), 1.0, 150.0),
        "bigram_embed": ((0.75, 0.95), 75.0, 5.0),
        "post_lambdas": ((0.9, 0.95), 1.0, 0.0),
        "resid_lambdas": ((0.9, 0.95), 5.0, 0.0),
        "value_embeds": ((0.75, 0.95), 75.0, 5.0),
        "embed": ((0.5, 0.95), 1.0, 150.0),
        # the MUDD-generated coefficients, held as constants: the record's MUDD bias settings
        "last_mix": ((0.9, 0.99), 0.25, 0.0),
        "post_mix": ((0.9, 0.99), 0.25, 0.0),
        "x0_gates": ((0.9, 0.99), 0.1, 0.0),
        "bigram_gates": ((0.9, 0.99), 0.1, 0.0),
        "skip_gate": ((0.9, 0.99), 0.1, 0.0),
        "xsa_alpha": ((0.9, 0.99), 0.1, 0.0),
        "gate": ((0.9, 0.99), 0.1, 0.0),
    }
    groups = []
    for name, p in model.named_parameters():
        label = name.split(".")[-1]
        if label in ("qk", "v", "o", "bank"):
            groups.append(
                dict(
                    params=[p],
                    kind="normuon",
                    label=name,
                    lr=MUON_LR,
                    weight_decay=MUON_WD,
                    beta2=MUON_BETA2,
                    momentum=0.95,
                    muon_view=getattr(p, "muon_view", None) or tuple(p.shape),
                    matrix_lr_mul=getattr(p, "matrix_lr_mul", None),
                )  # fmt: skip
            )
        else:
            betas, lr_mul, wd_mul = adam_table[label]
            groups.append(
                dict(
                    params=[p],
                    kind="adam",
                    label=name,
                    lr=ADAM_LR,
                    weight_decay=ADAM_WD,
                    betas=betas,
                    lr_mul=lr_mul,
                    wd_mul=wd_mul,
                    eps=1e-10,
                )  # fmt: skip
            )
    return optim.NorMuonAndAdam(groups, embed=model.embed, lm_head=model.lm_head)


class Schedule:
    """Stage boundaries, lr, Muon momentum and MTP weights by step (the record's
    TrainingSchedule), for TRAIN_STEPS scheduled steps plus EXTENSION_STEPS."""

    def __init__(self):
        self.total = TRAIN_STEPS + EXTENSION_STEPS
        ends, acc = [0], 0.0
        for share, *_ in STAGES:
            acc += share
            ends.append(round(acc * TRAIN_STEPS))
        ends[-1] = TRAIN_STEPS
        ends.append(self.total)
        self.bounds = list(zip(ends[:-1], ends[1:], strict=True))
        self.split_step = self.bounds[SPLIT_EMBED_STAGE][0] | 1

    def stage(self, step):
        for i, (start, end) in enumerate(self.bounds):
            if step < end:
                return i, (step - start) / max(end - start, 1)
        return len(self.bounds) - 1, 1.0

    def windows(self, step):
        i, _ = self.stage(step)
        return STAGES[i][2] if i < len(STAGES) else EXTENSION_WINDOWS

    def lr(self, step):
        i, _ = self.stage(step)
        lr = STAGES[i][1] if i < len(STAGES) else 1.0
        cd_start = int(TRAIN_STEPS * (1 - COOLDOWN_FRAC))
        if step >= cd_start:
            frac = min(1.0, (step - cd_start) / max(TRAIN_STEPS - cd_start, 1))
            lr = lr * (1 - frac) + FINAL_LR * frac
        return lr

    def momentum(self, step, low=0.85, high=0.95):
        cd_start = self.total - MUON_COOLDOWN_STEPS
        if step < MUON_WARMUP_STEPS:
            return low + step / MUON_WARMUP_STEPS * (high - low)
        if step > cd_start:
            return high - (step - cd_start) / max(MUON_COOLDOWN_STEPS, 1) * (high - low)
        return high

    def mtp_weights(self, step):
        i, frac = self.stage(step)
        if i >= len(STAGES):
            return (1.0,)
        start, end = STAGES[i][3], STAGES[i][4]
        return tuple(a + (b - a) * frac for a, b in zip(start, end, strict=True))

    def batch(self, step, world):
        """(sequences per fetch, sequence length, fetches per step) for this rank."""
        i, _ = self.stage(step)
        tokens = (BATCH_TOKENS_1, BATCH_TOKENS_2, BATCH_TOKENS_3)[min(i, 2)]
        seq_len = SEQ_LEN_FIRST if i == 0 else SEQ_LEN
        seqs = max(1, round(tokens / (seq_len * world)))
        accum = -(-seqs // MICRO_BATCH)
        return max(1, seqs // accum), seq_len, accum


def mtp_loss(logits, y, weights):
    """Sum over tokens of sum_k w_k * CE(prediction at t, target t + k) (k = 0 is next token);
    the record's loss is a token sum, not a mean."""
    total = 0.0
    t = y.size(1)
    for k, w in enumerate(weights):
        if w == 0.0 or k >= t:
            continue
        pred = logits[:, : t - k].reshape(-1, logits.size(-1))
        total = total + w * F.cross_entropy(pred, y[:, k:].reshape(-1), reduction="sum")
    return total


# EVOLVE-BLOCK-END


# EVOLVE-BLOCK-START training
class Windows:
    """The attention windows (in WINDOW_BLOCK units) the model holds; a new long window
    rescales RoPE (YaRN), as in the record. Tracked here so that no step reads the device."""

    def __init__(self, model):
        self.model, self.current = model, (1, 3)  # the model's initial windows

    def set(self, short_blocks, long_blocks):
        if (short_blocks, long_blocks) == self.current:
            return
        old_long, new_long = self.current[1] * WINDOW_BLOCK, long_blocks * WINDOW_BLOCK
        if new_long != old_long:
            self.model.rope.extend(old_long, new_long)
            self.model.rope_paired.extend(old_long, new_long)
        with torch.no_grad():
            self.model.windows.copy_(torch.tensor([short_blocks * WINDOW_BLOCK, new_long]))
        self.current = (short_blocks, long_blocks)


def train(model, h):
    schedule = Schedule()
    opt = make_optimizer(model)
    if h.world_size > 1:
        with torch.no_grad():
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor, 0)
    net = model
    if COMPILE and h.device.type == "cuda" and not h.smoke:
        net = torch.compile(model, dynamic=False)

    def micro_step(x, y, weights, accum):
        loss = mtp_loss(net(x), y, weights) / accum
        loss.backward()
        return loss

    def optimizer_step(step):
        for group in opt.param_groups:
            group["lr"] = group["initial_lr"] * schedule.lr(step)
            if group["kind"] == "normuon":
                group["momentum"] = schedule.momentum(step)
        opt.step(do_adam=step % 2 == 1)
        if step == schedule.split_step:
            opt.untie()

    # Compile and warm up every batch shape of the schedule on random tokens (the harness
    # restores the weights, the buffers and the optimizer's state afterwards).
    with h.warmup():
        shapes = {schedule.batch(start, h.world_size) for start, _ in schedule.bounds}
        for seqs, seq_len, _ in sorted(shapes):
            for k in range(WARMUP_COMPILE_STEPS):
                micro_step(*h.random_batch(seqs, seq_len), schedule.mtp_weights(0), 1)
                optimizer_step(k)
        model.zero_grad(set_to_none=True)
        opt.tied = True

    step = 0
    windows = Windows(model)
    while step < schedule.total:
        shape = schedule.batch(step, h.world_size)
        seqs, seq_len, accum = shape
        batches = h.batches(seqs, seq_len)
        model.fp8_grad_s = 0.75 / 448 / accum
        ended = False
        while step < schedule.total and schedule.batch(step, h.world_size) == shape:
            windows.set(*schedule.windows(step))
            weights = schedule.mtp_weights(step)
            for _ in range(accum):
                batch = next(batches, None)
                if batch is None:
                    ended = True
                    break
                micro_step(*batch, weights, accum)
            if ended:
                break
            optimizer_step(step)
            step += 1
        if ended:
            break
    # Validation windows: the long window extended once more (with YaRN), as the record does.
    model.zero_grad(set_to_none=True)
    windows.set(schedule.windows(schedule.total)[0], FINAL_LONG_WINDOW)


# EVOLVE-BLOCK-END
