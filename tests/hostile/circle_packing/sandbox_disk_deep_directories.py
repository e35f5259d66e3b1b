# threat: disk flood in a directory chain deeper than the maximum path length (300 MB), where no walk by path reaches
# guards: syntax, edit-scope
# static: forbidden-attribute
# expect: failed output-limit ~ 64 MB into its scratch directory
import os

for _ in range(300):  # 300 names of 200 characters: far past PATH_MAX (4096)
    os.mkdir("d" * 200)
    os.chdir("d" * 200)
for _i in range(38):
    with open(f"chunk-{_i}", "wb") as _f:
        _f.write(b"\4" * (8 << 20))
