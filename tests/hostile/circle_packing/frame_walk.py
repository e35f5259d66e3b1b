# threat: walks the call stack into the harness's frames to rewrite its variables
# expect: rejected static:forbidden-attribute
import sys

_frame = sys._getframe(1)
_frame.f_globals["N_CIRCLES"] = 1
