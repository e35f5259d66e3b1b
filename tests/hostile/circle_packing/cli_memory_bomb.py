# threat: memory bomb, in a run started from the command line
# run: cli
# guards: syntax, edit-scope
# static: passes
# expect: failed ~ memory
_hog = bytearray(64 * 1024**3)
