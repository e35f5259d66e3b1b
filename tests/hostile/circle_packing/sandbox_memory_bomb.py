# threat: memory bomb
# guards: syntax, edit-scope
# static: passes
# expect: failed memory
_hog = []
while True:
    _hog.append(bytearray(64 << 20))
