# threat: patches builtins so the harness's float() lies
# expect: rejected static:forbidden-module
import builtins

builtins.float = lambda x=0.0: 0.2
