# threat: leaves 512 MB of SysV shared memory behind, which outlives the candidate without an IPC namespace of its own
# guards: syntax, edit-scope
# static: forbidden-module
# expect: valid
import ctypes

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmat.restype = ctypes.c_void_p
_libc.shmget.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_int)
_libc.shmat.argtypes = (ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_libc.shmdt.argtypes = (ctypes.c_void_p,)
for _i in range(8):  # 8 segments of 64 MB, each touched so that it really holds memory
    _id = _libc.shmget(0x5EED00 + _i, 64 << 20, 0o1000 | 0o666)  # IPC_CREAT
    if _id < 0:
        raise OSError(ctypes.get_errno(), "shmget failed")
    _at = _libc.shmat(_id, None, 0)
    ctypes.memset(_at, 5, 64 << 20)
    _libc.shmdt(_at)
