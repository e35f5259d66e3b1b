# threat: an exception message with a lone surrogate and a NUL, which no UTF-8 column can store: the run and its --resume failed
# expect: failed error ~ lone surrogate � and NUL �
raise ValueError("lone surrogate \udc80 and NUL \x00")
