# threat: reads the platform user's home directory (credentials, the API keys of CLIs)
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed error ~ home hidden
import os

_found = []
for _top, _dirs, _files in os.walk("__HOME__"):
    _found += [os.path.join(_top, f) for f in _files if not _top.startswith("__HOME__/.pyenv")]
    if len(_found) > 20:
        break
if _found:
    raise RuntimeError(f"read the home directory: {_found[:5]}")
raise RuntimeError("home hidden")
