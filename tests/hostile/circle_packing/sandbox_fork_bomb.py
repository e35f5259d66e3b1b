# threat: fork bomb
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed timeout | failed error | failed crashed
import os
import time

while True:
    try:
        os.fork()
    except OSError:
        time.sleep(30)
