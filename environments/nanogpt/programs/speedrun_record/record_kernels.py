"""Kernels of the speedrun record, each with a plain PyTorch path that computes the same thing.

- relu2: squared ReLU, a Triton kernel each way where Triton runs (the record fuses the whole
  linear -> relu^2 -> linear MLP into one Triton kernel; this fuses the activation only);
- polar_express: the record's Polar Express orthogonalisation (five tuned quintic steps, batched
  over leading dimensions), bf16 on GPU, float32 on CPU;
- fp8_head: the lm_head matmul in FP8 (e4m3 forward, e5m2 gradients, fixed scales) on H100-class
  GPUs, with a plain matmul everywhere else;
- sliding_window_attention: causal attention whose keys lie at most `window` positions back, by
  SDPA with an explicit boolean mask (the record calls FlashAttention-3's varlen kernel).
"""

import torch
import torch.nn.functional as F

try:
    import triton
    import triton.language as tl
    from torch.library import triton_op, wrap_triton

    HAVE_TRITON = True
except ImportError:  # CPU-only machines without triton: the plain PyTorch path is used
    HAVE_TRITON = False


# -----------------------------------------------------------------------------
# Squared ReLU

if HAVE_TRITON:

    @triton.jit
    def _relu2_fwd(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = offs < n
        x = tl.load(x_ptr + offs, mask=live).to(tl.float32)
        r = tl.maximum(x, 0.0)
        tl.store(y_ptr + offs, (r * r).to(y_ptr.dtype.element_ty), mask=live)

    @triton.jit
    def _relu2_bwd(x_ptr, g_ptr, dx_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        live = offs < n
        x = tl.load(x_ptr + offs, mask=live).to(tl.float32)
        g = tl.load(g_ptr + offs, mask=live).to(tl.float32)
        dx = 2.0 * tl.maximum(x, 0.0) * g
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=live)

    @triton_op("speedrun_record::relu2", mutates_args=())
    def relu2_triton(x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        wrap_triton(_relu2_fwd)[(triton.cdiv(n, 1024),)](x, y, n, BLOCK=1024)
        return y

    @triton_op("speedrun_record::relu2_backward", mutates_args=())
    def relu2_triton_backward(x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        x, grad = x.contiguous(), grad.contiguous()
        dx = torch.empty_like(x)
        n = x.numel()
        wrap_triton(_relu2_bwd)[(triton.cdiv(n, 1024),)](x, grad, dx, n, BLOCK=1024)
        return dx

    def _relu2_setup(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    def _relu2_grad(ctx, grad):
        (x,) = ctx.saved_tensors
        return relu2_triton_backward(x, grad)

    relu2_triton.register_autograd(_relu2_grad, setup_context=_relu2_setup)


def relu2(x, fused=True):
    """relu(x)^2: the Triton kernel on CUDA tensors, PyTorch elsewhere."""
    if fused and HAVE_TRITON and x.is_cuda:
        return relu2_triton(x)
    return F.relu(x).square()


# -----------------------------------------------------------------------------
# Polar Express (https://arxiv.org/abs/2505.16932): coefficients for five iterations with
# safety factor 2e-2 and cushion 2, as the record uses them.

POLAR_EXPRESS_COEFFS = (
    (8.156554524902461, -22.48329292557795, 15.878769915207462),
    (4.042929935166739, -2.808917465908714, 0.5000178451051316),
    (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
    (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
    (2.3465413258596377, -1.7097828382687081, 0.42323551169305323),
)


def polar_express(g):
    """An approximation of U V^T for g = U S V^T, per matrix of a [..., rows, cols] tensor.
    The small Gram matrix is formed on the short side (X^T X for tall, X X^T for wide)."""
    x = g.bfloat16() if g.is_cuda else g.float()
    x = x / (x.norm(dim=(-2, -1), keepdim=True) * (1 + 2e-2) + 1e-6)
    tall = x.size(-2) > x.size(-1)
    for a, b, c in POLAR_EXPRESS_COEFFS:
        if tall:
            gram = x.mT @ x
            x = a * x + x @ (b * gram + c * gram @ gram)
        else:
            gram = x @ x.mT
            x = a * x + (b * gram + c * gram @ gram) @ x
    return x


# -----------------------------------------------------------------------------
# FP8 lm_head (H100-class GPUs only). The weight is stored transposed, [in, out].


def fp8_available(device):
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (9, 0)


class _FP8MatmulT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, x_s, w_s, grad_s):
        x_f8 = x.div(x_s).to(torch.float8_e4m3fn)
        w_f8 = w.div(w_s).to(torch.float8_e4m3fn)
        one = torch.ones((), device=x.device, dtype=torch.float32)
        out = torch._scaled_mm(
            x_f8,
            w_f8.T.contiguous().T,
            out_dtype=torch.bfloat16,
            scale_a=one * x_s,
            scale_b=one * w_s,
            use_fast_accum=True,
        )
        ctx.save_for_backward(x_f8, w_f8)
        ctx.scales = (x_s, w_s, grad_s)
        return out

    @staticmethod
    def backward(ctx, grad):
        x_f8, w_f8 = ctx.saved_tensors
        x_s, w_s, grad_s = ctx.scales
        one = torch.ones((), device=grad.device, dtype=torch.float32)
        g_f8 = grad.contiguous().div(grad_s).to(torch.float8_e5m2)
        grad_x = torch._scaled_mm(
            g_f8, w_f8.T, out_dtype=torch.bfloat16, scale_a=one * grad_s, scale_b=one * w_s
        )
        grad_w = torch._scaled_mm(
            x_f8.T.contiguous(),
            g_f8.T.contiguous().T,
            out_dtype=torch.float32,
            scale_a=one * x_s,
            scale_b=one * grad_s,
        )
        return grad_x, grad_w, None, None, None


def linear_t(x, w, fp8, x_s=1.0, w_s=1.0, grad_s=1.0):
    """x @ w for a weight stored [in, out]; FP8 when asked for and the GPU has it."""
    if fp8 and fp8_available(x.device):
        flat = x.reshape(-1, x.size(-1)).contiguous()
        out = _FP8MatmulT.apply(flat, w.contiguous(), x_s, w_s, grad_s)
        return out.view(*x.shape[:-1], -1)
    return x @ w.type_as(x)


# -----------------------------------------------------------------------------
# Sliding-window causal attention


def window_mask(t, window, device):
    """[t, t] boolean: query i sees key j when 0 <= i - j <= window (``window`` a tensor)."""
    pos = torch.arange(t, device=device)
    lag = pos[:, None] - pos[None, :]
    return (lag >= 0) & (lag <= window)


def sliding_window_attention(q, k, v, window, scale):
    """q, k, v: [B, T, H, D]; returns [B, T, H, D]."""
    mask = window_mask(q.size(1), window, q.device)
    q = q * scale.type_as(q)  # the scale is a buffer (YaRN changes it): folded into q
    y = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask, scale=1.0
    )
    return y.transpose(1, 2)
