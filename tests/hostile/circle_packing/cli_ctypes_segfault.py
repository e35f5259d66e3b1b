# threat: segfault through ctypes, in a run started from the command line
# run: cli
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed ~ crashed
import ctypes
ctypes.string_at(0)
