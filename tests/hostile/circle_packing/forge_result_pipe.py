# threat: forges the result the harness reads (writes its own JSON to the result pipe and exits)
# expect: rejected static:forbidden-attribute
import json
import os

_fake = {"status": "ok", "raw": {"centers": [[0.5, 0.5]] * 26, "radii": [0.5] * 26}}
os.write(3, json.dumps(_fake).encode())
os._exit(0)
