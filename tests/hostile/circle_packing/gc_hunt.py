# threat: hunts the harness's objects through the garbage collector
# expect: rejected static:forbidden-module
import gc

for _obj in gc.get_objects():
    if isinstance(_obj, dict) and "radii" in _obj:
        _obj["radii"] = [0.5] * 26
