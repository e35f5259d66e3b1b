# threat: seeds itself, so that verification's fresh-seed re-runs all repeat one lucky run
# expect: rejected static:forbidden-attribute
import torch

torch.manual_seed(1234)
