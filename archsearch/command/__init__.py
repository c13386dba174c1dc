"""A trial that is a command: archsearch runs the user's own training program once per trial.

The runner (``runner.py``) starts the program with the trial's values as arguments and in its
environment, collects its metrics with no change to its code (``metrics.py``: lines on stdout, the
cloud service's hypertune file, TensorBoard event files, or the client) and stops it when a pruner
says so.  ``client.py`` is what the program itself may import (``archsearch.report(...)``); it and
this module load only the standard library, so a PyTorch or JAX script stays light.
"""

from __future__ import annotations

from archsearch.command.client import checkpoint_dir, report, report_infeasible, should_stop, trial_values

# A program that exits with this status says its configuration cannot work (not a failure), as
# calling ``report_infeasible`` does.  77 is "configuration error" in BSD's sysexits.h.
EXIT_INFEASIBLE = 77

__all__ = ["EXIT_INFEASIBLE", "checkpoint_dir", "report", "report_infeasible", "should_stop", "trial_values"]
