"""What a search shows afterwards (or while it runs): ``report.html`` and its data, plots, PNGs,
importance and pictures, read from ``trials.db`` through the store's read-only API.

``python -m archsearch.report <run folder>`` writes the report again; ``python -m archsearch.report.sweep
<sweep dir>`` writes the table that compares the searches of a Hydra multirun (``sweep.py``, ``sweep_jobs.py``).

The package is also callable: ``archsearch.report(step=3, val_loss=0.25)`` is the command trial's client,
:func:`archsearch.command.client.report` (one public name for "report a metric", as the cloud service's
``report_hyperparameter_tuning_metric``).  Importing the package stays light: the report's modules (plotly,
matplotlib, the store) load only when imported themselves, the client only when called.
"""

from __future__ import annotations

import sys
import types


class _CallableReport(types.ModuleType):
    """This package's module class: calling it reports a command trial's metrics."""

    def __call__(self, step: int | None = None, **metrics: float) -> None:
        """``archsearch.report(step=3, val_loss=0.25)``: see :func:`archsearch.command.client.report`."""
        from archsearch.command.client import report

        report(step, **metrics)


sys.modules[__name__].__class__ = _CallableReport
