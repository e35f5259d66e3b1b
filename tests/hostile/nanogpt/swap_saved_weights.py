# threat: returns a model that is not the trained one: state_dict hands the harness other weights
# block: optimizer
# expect: rejected static:protected-name
_real_state_dict = nn.Module.state_dict
nn.Module.state_dict = lambda self, *a, **k: {k2: v * 0 for k2, v in _real_state_dict(self, *a, **k).items()}
