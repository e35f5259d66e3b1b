# threat: reads API keys from the parent processes' /proc/PID/environ
# expect: rejected static:file-access
_stolen = open("/proc/1/environ", "rb").read()
