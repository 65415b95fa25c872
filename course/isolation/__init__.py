"""Running learner code apart from the grader.

``runner`` (the grader's side: one isolated child per submission, limits, budgets, restarts)
and ``inprocess`` (the same interface in the grader's own process, for ``check()`` in a
notebook); ``forkserver`` and ``zygote`` (children forked from a server that imported torch
once); ``child`` (the process that loads learner cells and answers probes); ``sandbox``
(bubblewrap where the machine has it: file system, network, process tree); ``confine``
(rlimits and seccomp-free confinement inside the child); ``integrity`` (detects learner code
that tampers with the grader's modules in its process); ``lifetime`` (every process dies with
its parent). This package imports nothing at import time, so the child loads only what it needs.
"""
