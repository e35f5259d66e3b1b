# threat: monkeypatches math.fsum, which the harness sums radii with
# expect: rejected static:module-patch
import math

math.fsum = lambda values: 3.0
