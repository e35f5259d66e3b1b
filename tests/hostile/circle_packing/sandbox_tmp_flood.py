# threat: disk flood through /tmp and /dev/shm instead of the scratch directory
# guards: syntax, edit-scope
# static: file-access
# expect: failed error ~ No space left on device
_chunk = b"\1" * (8 << 20)
for _where in ("/tmp", "/dev/shm"):
    for _i in range(10_000):
        with open(f"{_where}/flood-{_i}.bin", "wb") as _f:
            _f.write(_chunk)
