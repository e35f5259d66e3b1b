# threat: reads API keys from its environment and every readable /proc/PID/environ
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed error ~ found no key
import glob
import os

_seen = [v for k, v in os.environ.items() if "KEY" in k or "TOKEN" in k]
for _path in glob.glob("/proc/*/environ"):
    try:
        _text = open(_path, "rb").read().decode(errors="replace")
    except OSError:
        continue
    _seen += [part for part in _text.split("\0") if "KEY=" in part]
if _seen:
    raise RuntimeError(f"stolen: {_seen}")
raise RuntimeError("found no key")
