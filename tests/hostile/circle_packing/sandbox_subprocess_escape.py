# threat: escapes through a subprocess that starts its own session to outlive the evaluation
# guards: syntax, edit-scope
# static: forbidden-module
# expect: valid
import subprocess

_escapee = subprocess.Popen(["sleep", "600"], start_new_session=True)
print(f"pid={_escapee.pid}", flush=True)
