"""The best architecture written out: ``best/`` (model, hyperparameters, summary, README) and serving formats.
"""

from archsearch.export.best import export_best, load_model  # noqa: E402  (the README's archsearch.export.export_best)

__all__ = ["export_best", "load_model"]
