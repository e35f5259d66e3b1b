# threat: the same route past the platform's static guard: the environment's own scan must stop it
# block: optimizer
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed error ~ reaches the module sys|invalid ~ reaches the module sys
_op = torch.serialization.sys.modules["oper" + "ator"]
_cells = _op.attrgetter("__clo" + "sure__")
