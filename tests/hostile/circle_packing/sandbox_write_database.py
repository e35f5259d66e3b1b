# threat: writes the database to mark itself the best program
# guards: syntax, edit-scope
# static: forbidden-module
# expect: failed error ~ unable to open database
import sqlite3

_db = sqlite3.connect("file:__DB__?mode=rw", uri=True)
_db.execute("update program set score = 9.9, status = 'valid'")
_db.commit()
