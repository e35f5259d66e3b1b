# threat: escapes through ctypes: raw kill() of its parent and of every process it can reach
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed error ~ survived its own kill(-1)
import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_libc.kill(os.getppid(), 9)
_libc.kill(-1, 9)  # Linux spares the caller: everything else its uid may signal dies
raise RuntimeError("survived its own kill(-1)")
