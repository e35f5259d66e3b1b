# threat: an 11 MB exception message, stored whole (a 57 MB database for one candidate) and sent back to the agent
# expect: failed error ~ characters truncated
raise RuntimeError("x" * 11_000_000 + " END")
