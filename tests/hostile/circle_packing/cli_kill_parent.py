# threat: kills its parent (the worker), in a run started from the command line: either the kill is refused (unprivileged uid) or the worker dies and is replaced
# run: cli
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed ~ worker-lost | failed ~ Operation not permitted
import os
os.kill(os.getppid(), 9)
