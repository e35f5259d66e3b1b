# threat: infinite loop, in a run started from the command line
# run: cli
# guards: syntax, edit-scope
# static: passes
# expect: failed ~ timeout
while True:
    pass
