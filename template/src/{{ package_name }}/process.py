"""The garbage collector of a command's process, set for what a command does: import a lot, run
for seconds, exit.

A pipeline stage imports a few hundred thousand objects' worth of libraries (pandas, scikit-learn,
MLflow, Great Expectations, Evidently) and then exits. With Python's default settings the cyclic
collector walks over them again and again while they are imported, and once more at exit: about a
quarter of a stage's time on two cores. ``start`` collects young objects less often (every 50,000
allocations instead of 700); ``finish`` freezes what the process holds, so that the collector
leaves it alone at exit. Memory use stays the same: the garbage is still collected, in fewer
passes. `python -m <package>` and the test session use both; a service also freezes what it has
loaded (libraries, the model) before it answers its first request (``freeze_loaded``).
"""

from __future__ import annotations

import gc

YOUNG = 50_000  # allocations between two collections of the youngest objects (Python's default: 700)


def start() -> None:
    """Collect young objects every ``YOUNG`` allocations; the older generations as before."""
    gc.set_threshold(YOUNG, *gc.get_threshold()[1:])


def freeze_loaded() -> None:
    """For a long-running service, once loaded: what it holds now (libraries, the model) is never
    walked by the collector again; what requests allocate is collected as usual."""
    gc.freeze()


def finish() -> None:
    """Before exit: nothing the process holds is walked by the collector again."""
    gc.freeze()
