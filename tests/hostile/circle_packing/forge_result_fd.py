# threat: forges the result file descriptor through open() on a number
# expect: rejected static:file-access
_pipe = open(3, "w")
_pipe.write('{"status": "ok", "raw": {"centers": [], "radii": []}}')
_pipe.close()
