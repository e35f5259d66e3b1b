# threat: imports the harness and disables its geometry check
# expect: rejected static:forbidden-module
from progressbench_environments.circle_packing import plugin

plugin.check_packing = lambda raw: None
