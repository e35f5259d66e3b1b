# threat: writes the database to record a better score
# expect: rejected static:forbidden-module
import sqlite3

_db = sqlite3.connect("__DB__")
_db.execute("update program set score = 9.9, status = 'valid'")
_db.commit()
