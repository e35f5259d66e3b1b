# threat: infinite loop
# guards: syntax, edit-scope
# static: passes
# expect: failed timeout
while True:
    pass
