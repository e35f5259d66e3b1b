# threat: segfault (reads address 0 through ctypes)
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed crashed ~ SIGSEGV
import ctypes

ctypes.string_at(0)
