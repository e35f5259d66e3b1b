# threat: reaches the harness's globals through a format string's attribute lookup
# expect: rejected static:reflection
_leak = "{0.__globals__}".format(place_centers)
