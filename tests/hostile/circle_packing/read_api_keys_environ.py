# threat: reads API keys from the environment
# expect: rejected static:forbidden-attribute
import os

_KEY = os.environ.get("OPENAI_API_KEY", "")
print(_KEY)
