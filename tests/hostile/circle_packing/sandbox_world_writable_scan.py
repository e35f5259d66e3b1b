# threat: looks for any place on the host's file system it can write, outside its scratch directory and private /tmp
# guards: syntax, edit-scope
# static: file-access
# expect: failed error ~ contained: nothing writable outside scratch
import os

_own = [os.getcwd(), "/tmp", "/var/tmp", "/dev/shm"]  # scratch and the private, fresh tmpfs
_written = []
with open("/proc/self/mountinfo") as _f:
    _points = [_line.split()[4].replace("\\040", " ") for _line in _f]
_dirs = set()
for _point in _points:  # every mount point and what lies right below it
    try:
        _dirs.update([_point] + [os.path.join(_point, _n) for _n in os.listdir(_point)[:300]])
    except OSError:
        pass
for _dir in sorted(_dirs):
    _real = os.path.realpath(_dir)
    if any(_real == _o or _real.startswith(_o + "/") for _o in _own) or not os.path.isdir(_real):
        continue
    _probe = os.path.join(_real, ".pb-redteam-probe")
    try:
        os.close(os.open(_probe, os.O_CREAT | os.O_WRONLY, 0o600))
    except OSError:
        continue
    os.unlink(_probe)
    _written.append(_real)
if _written:
    raise RuntimeError("escaped: wrote into " + ", ".join(_written))
raise RuntimeError("contained: nothing writable outside scratch")
