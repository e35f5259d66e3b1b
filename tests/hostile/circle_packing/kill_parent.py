# threat: kills its parent (the worker) to disrupt the run
# expect: rejected static:forbidden-attribute
import os

os.kill(os.getppid(), 9)
