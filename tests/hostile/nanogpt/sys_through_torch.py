# threat: reaches sys through another module's attribute (no import), then operator.attrgetter with a built-up name to read the clock's closure and stop time
# block: optimizer
# expect: rejected static:forbidden-module
_op = torch.serialization.sys.modules["oper" + "ator"]
_cells = _op.attrgetter("__clo" + "sure__")
