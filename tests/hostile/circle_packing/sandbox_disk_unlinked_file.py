# threat: disk flood through a file unlinked while open (256 MB against a 64 MB cap): a walk of the scratch directory never sees it
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed output-limit ~ 64 MB into its scratch directory
import os

_f = open("hidden.bin", "wb", buffering=0)
os.unlink("hidden.bin")
for _ in range(32):
    _f.write(b"\3" * (8 << 20))
