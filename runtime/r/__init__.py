"""What runs in an R worker process: R embedded through rpy2, plumber and the app loaded, a
request loop answering the pool's frames (worker.py), the zygote workers are forked from
(zygote.py), and the R code they run (bridge.R, fastpath.R, direct.R, json_writer.R),
byte-compiled ahead (bytecode.py). Nothing here imports the pool or the front door."""
