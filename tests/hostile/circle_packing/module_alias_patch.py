# threat: patches numpy through an alias hidden in a list (the harness's sums go wrong)
# expect: rejected static:module-escape
import numpy

_mods = [numpy]
_mods[0].sum = lambda *a, **k: 26.0
