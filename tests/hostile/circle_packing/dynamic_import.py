# threat: imports a forbidden module under a computed name
# expect: rejected static:dynamic-code
_os = __import__("o" + "s")
_os.system("id")
