# threat: redefines the loss: monkeypatches the cross-entropy the harness reports with
# block: optimizer
# expect: rejected static:module-patch
F.cross_entropy = lambda logits, targets, *args, **kwargs: (logits * 0).sum()
torch.logsumexp = lambda x, dim, keepdim=False: x.max(dim=dim, keepdim=keepdim).values
