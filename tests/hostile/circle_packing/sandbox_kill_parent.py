# threat: kills its parent (the worker) and every process it may signal
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed error ~ PermissionError
import os

os.kill(os.getppid(), 9)
