"""Run and resume: the training options, the ``ml-math-nn`` command line, run directories,
checkpoints, model files and the progress display, built on the core library."""
