"""The record's combined NorMuon + Adam optimizer, as one torch.optim.Optimizer.

One param group per labelled parameter (the record's param_table), each carrying its kind
("adam" or "normuon"), lr_mul, wd_mul and betas; all state lives in ``self.state`` so that
``state_dict``/``load_state_dict`` (and the harness's warm-up restore) see every buffer.

- Adam: bias-corrected, with cautious weight decay (decay only where the update and the weight
  agree in sign), decay scaled by lr^2 as in the record; stepped only when ``do_adam`` (the
  record steps Adam on odd steps; gradients of Adam parameters accumulate in between).
- NorMuon: Nesterov momentum (lerp form), Polar Express orthogonalisation per matrix of the
  parameter's ``muon_view``, a low-rank second-moment normalisation (NorMuon), a shape-based lr
  multiplier max(1, rows/cols)^0.5, cautious weight decay; per-matrix lr multipliers (the MLP's
  output projections get 2x).
- Tied embedding: until ``untie()``, the embedding's gradient (transposed) is added to the
  lm_head's, the embedding itself is not stepped, and after the lm_head's update it is set to
  lm_head^T. ``untie()`` copies the lm_head's Adam moments (transposed) into the embedding's.
"""

import record_kernels as kernels  # not "kernels": a package of that name exists
import torch
import torch.distributed as dist


class NorMuonAndAdam(torch.optim.Optimizer):
    def __init__(self, groups, embed=None, lm_head=None):
        defaults = dict(
            kind="adam", lr=0.0, lr_mul=1.0, wd_mul=1.0, weight_decay=0.0, betas=(0.9, 0.99),
            eps=1e-10, momentum=0.95, beta2=0.9, muon_view=None, matrix_lr_mul=None, label="",
        )  # fmt: skip
        super().__init__(groups, defaults)
        for group in self.param_groups:
            group["initial_lr"] = group["lr"]
        self.embed, self.lm_head = embed, lm_head
        self.tied = embed is not None and lm_head is not None

    # -- the tie between the embedding and the head -----------------------------------------
    @torch.no_grad()
    def untie(self):
        if not self.tied:
            return
        head_state, embed_state = self.state[self.lm_head], self.state[self.embed]
        if head_state:
            embed_state["step"] = head_state["step"]
            embed_state["exp_avg"] = head_state["exp_avg"].T.clone()
            embed_state["exp_avg_sq"] = head_state["exp_avg_sq"].T.clone()
        self.tied = False

    # -- the step -------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, do_adam=True):
        world = dist.get_world_size() if dist.is_initialized() else 1
        if self.tied and do_adam and self.embed.grad is not None and self.lm_head.grad is not None:
            self.lm_head.grad.add_(self.embed.grad.T)
        for group in self.param_groups:
            adam = group["kind"] == "adam"
            if adam and not do_adam:
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.tied and p is self.embed:
                    p.grad = None
                    continue
                if world > 1:  # replicated: every rank computes the full update
                    dist.all_reduce(p.grad)
                    p.grad.div_(world)
                if adam:
                    self._adam(p, group)
                else:
                    self._normuon(p, group)
                p.grad = None
        if self.tied and do_adam:
            self.embed.copy_(self.lm_head.T)

    def _adam(self, p, group):
        beta1, beta2 = group["betas"]
        lr = group["lr"] * group["lr_mul"]
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, dtype=torch.float32)
            state["exp_avg_sq"] = torch.zeros_like(p, dtype=torch.float32)
        state["step"] += 1
        t = state["step"]
        step_size = lr * (1 - beta2**t) ** 0.5 / (1 - beta1**t)
        decay = lr * lr * group["weight_decay"] * group["wd_mul"]
        g = p.grad.float()
        state["exp_avg"].mul_(beta1).add_(g, alpha=1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1 - beta2)
        update = state["exp_avg"] / (state["exp_avg_sq"].sqrt() + group["eps"]) * step_size
        update.addcmul_(p.float(), (update * p) > 0, value=decay)
        p.sub_(update.to(p.dtype))

    def _normuon(self, p, group):
        view = group["muon_view"] or tuple(p.shape)
        state = self.state[p]
        rows, cols = view[-2], view[-1]
        if not state:
            state["momentum_buffer"] = torch.zeros(view, device=p.device, dtype=torch.float32)
            moment_shape = (*view[:-1], 1) if rows >= cols else (*view[:-2], 1, cols)
            state["second_momentum_buffer"] = torch.zeros(
                moment_shape, device=p.device, dtype=torch.float32
            )
        mom = group["momentum"]
        g = p.grad.float().reshape(view)
        buf = state["momentum_buffer"]
        buf.lerp_(g, 1 - mom)
        g = g.lerp(buf, mom)  # Nesterov
        v = kernels.polar_express(g).float()
        # NorMuon: normalise by a running second moment along the longer side, keep the norm.
        red = -1 if rows >= cols else -2
        v_mean = v.square().mean(dim=red, keepdim=True)
        size = v.size(red)
        v_norm = (v_mean.sum(dim=(-2, -1), keepdim=True) * size).sqrt()
        second = state["second_momentum_buffer"]
        second.lerp_(v_mean, 1 - group["beta2"])
        step = second.clamp_min(1e-10).rsqrt()
        new_norm = ((v_mean * size) * step.square()).sum(dim=(-2, -1), keepdim=True).sqrt()
        v = v * (step * (v_norm / new_norm.clamp_min(1e-10)))
        lr = group["lr"] * group["lr_mul"] * max(1.0, rows / cols) ** 0.5
        lr_per = torch.full((view[0],) + (1,) * (len(view) - 1), lr, device=p.device)
        if group["matrix_lr_mul"] is not None and len(view) == 3:
            lr_per = lr_per * torch.tensor(group["matrix_lr_mul"], device=p.device).view(-1, 1, 1)
        decay = group["wd_mul"] * group["weight_decay"] * group["lr"]
        w = p.float().reshape(view)
        agree = (v * w) >= 0  # cautious weight decay
        w = w - w * agree * decay * lr_per - v * lr_per
        p.copy_(w.reshape(p.shape).to(p.dtype))
