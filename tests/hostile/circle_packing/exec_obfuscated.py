# threat: runs hidden code through exec of a decoded string
# expect: rejected static:dynamic-code
exec(bytes.fromhex("696d706f7274206f733b206f732e73797374656d2822696422").decode())
