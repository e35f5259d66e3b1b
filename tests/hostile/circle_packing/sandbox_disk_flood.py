# threat: disk flood: fills the disk through many files, each under the file-size cap
# guards: syntax, edit-scope
# static: file-access
# expect: failed output-limit ~ scratch directory
_chunk = b"\0" * (8 << 20)
_i = 0
while True:
    with open(f"flood-{_i}.bin", "wb") as _f:
        for _ in range(16):
            _f.write(_chunk)
    _i += 1
