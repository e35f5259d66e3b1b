# threat: runs os.system through an unpickling gadget
# expect: rejected static:forbidden-module
import pickle

pickle.loads(b"cos\nsystem\n(S'id'\ntR.")
