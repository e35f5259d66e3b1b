# threat: escapes through ctypes (raw libc calls, no Python audit hook sees them)
# expect: rejected static:forbidden-module
import ctypes

_libc = ctypes.CDLL(None)
_libc.kill(-1, 9)
