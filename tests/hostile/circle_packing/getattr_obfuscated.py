# threat: reaches a forbidden function through getattr with a computed name
# expect: rejected static:dynamic-attribute
import os

_run = getattr(os, "sys" + "tem")
_run("id")
