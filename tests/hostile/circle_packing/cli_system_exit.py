# threat: exits the interpreter, in a run started from the command line
# run: cli
# guards: syntax, edit-scope
# static: passes
# expect: failed ~ SystemExit | failed ~ exit
raise SystemExit(3)
