# threat: none: a valid program with deeply nested blocks, which two static scans parsing at once rejected at random (AST constructor recursion depth mismatch)
# expect: valid
def _nested(x):
    if x > 0:
        if x > 1:
            if x > 2:
                if x > 3:
                    if x > 4:
                        if x > 5:
                            if x > 6:
                                if x > 7:
                                    if x > 8:
                                        if x > 9:
                                            if x > 10:
                                                if x > 11:
                                                    if x > 12:
                                                        if x > 13:
                                                            if x > 14:
                                                                if x > 15:
                                                                    if x > 16:
                                                                        if x > 17:
                                                                            if x > 18:
                                                                                if x > 19:
                                                                                    if x > 20:
                                                                                        if x > 21:
                                                                                            if x > 22:
                                                                                                if x > 23:
                                                                                                    if x > 24:
                                                                                                        if x > 25:
                                                                                                            if x > 26:
                                                                                                                if x > 27:
                                                                                                                    if x > 28:
                                                                                                                        if x > 29:
                                                                                                                            if x > 30:
                                                                                                                                if x > 31:
                                                                                                                                    if x > 32:
                                                                                                                                        if x > 33:
                                                                                                                                            if x > 34:
                                                                                                                                                if x > 35:
                                                                                                                                                    if x > 36:
                                                                                                                                                        if x > 37:
                                                                                                                                                            if x > 38:
                                                                                                                                                                if x > 39:
                                                                                                                                                                    if x > 40:
                                                                                                                                                                        if x > 41:
                                                                                                                                                                            if x > 42:
                                                                                                                                                                                if x > 43:
                                                                                                                                                                                    if x > 44:
                                                                                                                                                                                        if x > 45:
                                                                                                                                                                                            if x > 46:
                                                                                                                                                                                                if x > 47:
                                                                                                                                                                                                    if x > 48:
                                                                                                                                                                                                        if x > 49:
                                                                                                                                                                                                            if x > 50:
                                                                                                                                                                                                                if x > 51:
                                                                                                                                                                                                                    if x > 52:
                                                                                                                                                                                                                        if x > 53:
                                                                                                                                                                                                                            if x > 54:
                                                                                                                                                                                                                                if x > 55:
                                                                                                                                                                                                                                    if x > 56:
                                                                                                                                                                                                                                        if x > 57:
                                                                                                                                                                                                                                            if x > 58:
                                                                                                                                                                                                                                                if x > 59:
                                                                                                                                                                                                                                                    return x
    return 0


_NESTED = _nested(3)
