"""What a search shows afterwards (or while it runs): ``report.html`` and its data, plots, PNGs,
importance and pictures, read from ``trials.db`` through the store's read-only API.

``python -m archsearch.report <run folder>`` writes the report again; ``python -m archsearch.report.sweep
<sweep dir>`` writes the table that compares the searches of a Hydra multirun (``sweep.py``, ``sweep_jobs.py``).
"""
