# threat: reaches os.system through the class hierarchy, with no import at all
# expect: rejected static:reflection
for _cls in ().__class__.__bases__[0].__subclasses__():
    if _cls.__name__ == "_wrap_close":
        _cls.__init__.__globals__["system"]("id")
