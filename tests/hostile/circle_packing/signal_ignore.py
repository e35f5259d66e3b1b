# threat: ignores the harness's time-limit signals to outlive its limits
# expect: rejected static:forbidden-module
import signal

signal.signal(signal.SIGXCPU, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
