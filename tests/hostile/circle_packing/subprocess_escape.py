# threat: escapes through a subprocess shell
# expect: rejected static:forbidden-module
import subprocess

subprocess.run(["sh", "-c", "cat ~/.netrc > /tmp/loot"], check=False)
