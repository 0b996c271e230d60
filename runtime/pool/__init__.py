"""The pool of R worker processes, on the server's event loop: starting them (or forking them
from a preloaded zygote), queueing requests, timeouts, health, memory limits, replacing a
worker that died. It speaks to workers only in frames over pipes (runtime/protocol.py)."""
