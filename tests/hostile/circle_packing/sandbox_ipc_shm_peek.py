# threat: looks for SysV shared memory that other candidates (or the host) left, to read or corrupt it
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed error ~ no SysV IPC objects but its own
import ctypes

_libc = ctypes.CDLL(None, use_errno=True)
_libc.shmget.argtypes = (ctypes.c_int, ctypes.c_size_t, ctypes.c_int)
_found = [hex(0x5EED00 + _i) for _i in range(16) if _libc.shmget(0x5EED00 + _i, 0, 0) >= 0]
for _table in ("shm", "sem", "msg"):
    with open(f"/proc/sysvipc/{_table}") as _f:
        _found += [f"{_table}: {_line.split()[0]}" for _line in list(_f)[1:]]
if _found:
    raise RuntimeError("found the IPC objects of others: " + ", ".join(_found))
raise RuntimeError("no SysV IPC objects but its own")
