# threat: patches the harness's hooks: backward and optimizer steps bypass its sections
# block: optimizer
# expect: rejected static:module-patch
torch.autograd.backward = lambda *args, **kwargs: None
torch.optim.Optimizer.step = lambda self, *args, **kwargs: None
