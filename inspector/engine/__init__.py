"""The engine: the work that needs torch or NumPy, in the worker process or a command's own.

NumPy's BLAS runs one thread in the processes that import the engine before NumPy (the worker, the
command line's ``stats`` and ``diff``): the statistics' dot products then add up in one order on
every machine, so the numbers shown do not change with its core count, and NumPy starts without a
pool of threads. A value the user set is kept.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
