# threat: fork bomb
# expect: rejected static:forbidden-attribute
import os

while True:
    os.fork()
